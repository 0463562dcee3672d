//! The BN-VAE head (Zhu et al. 2020; Su 2020): the Gaussian head with its posterior
//! means batch-normalised, which keeps a floor under the KL term.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor, activation};

use crate::Error;
use crate::distributions::DiagNormal;
use crate::error::ensure_nonzero;
use crate::kernels::Run;
use crate::traits::PosteriorHead;

/// Smallest `σ²` the learned-split head emits (keeps `log σ²` finite when the normalised
/// standard deviation passes through 0).
const MIN_VARIANCE: f64 = 1e-6;

/// How the batch-normalised posterior parameters are scaled.
#[derive(Config, Debug, Copy, PartialEq)]
pub enum BnScale {
    /// Zhu et al.: `μ = γ · BN(μ̃) + β` with a fixed `γ > 0` and a learned shift `β`;
    /// `log σ²` comes from the network unchanged.
    ///
    /// # Formula
    /// ```text
    /// E_batch[KL] = ½ Σ_d (E[μ_d²] + E[σ_d²] − E[log σ_d²] − 1) ≥ ½ Σ_d E[μ_d²] ≥ n γ² / 2
    /// ```
    /// since `σ² − log σ² − 1 ≥ 0` and BN gives `E[μ_d²] = γ² + β_d² ≥ γ²`.
    Fixed(f64),
    /// Su (2020): `μ = γ_μ · BN(μ̃)`, `σ = γ_σ · BN(σ̃)` (no shifts), with a learned `θ` per
    /// dimension and a fixed `τ ∈ (0, 1)`:
    ///
    /// # Formula
    /// ```text
    /// γ_μ = √(τ + (1 − τ)·sigmoid(θ)),   γ_σ = √((1 − τ)·sigmoid(−θ)),   γ_μ² + γ_σ² = 1
    /// E_batch[KL] ≥ ½ Σ_d (γ_μ² + γ_σ² − log E[σ_d²] − 1) = −½ Σ_d log γ_σ,d² ≥ −(n/2) log(1 − τ)
    /// ```
    /// (Jensen on `−log`). The aggregated posterior then has unit variance per dimension,
    /// matching the prior, and `γ_μ² ≥ τ` bounds the mean's share from below.
    ///
    /// Centring `σ̃` forces the standard deviations of the examples below the batch mean
    /// through 0, where `−½ log σ²` is unbounded: the KL then swings with the batch (see
    /// docs/results.md, "BN-VAE's learned split, line by line with Su"); [`BnScale::LearnedSplitRms`] avoids it.
    LearnedSplit(f64),
    /// Su's learned split with the standard deviation kept positive and scaled by its
    /// batch root mean square instead of centred (this crate's variant):
    ///
    /// # Formula
    /// ```text
    /// μ = γ_μ · BN(μ̃),   σ = γ_σ · s₊ / √(E_batch[s₊²]),   s₊ = softplus(s̃)
    /// ```
    /// with `γ_μ, γ_σ` as in [`BnScale::LearnedSplit`]. `E_batch[σ²] = γ_σ²` still holds, so
    /// the prior-matching identity `E[μ²] + E[σ²] = 1` and the floor
    /// `−½ Σ_d log γ_σ,d²` are Su's, but no example's `σ` is pushed to 0 by the
    /// normalisation. The root mean square is BN's scale of the symmetrised batch
    /// `[s₊; −s₊]` (mean exactly 0, variance `E[s₊²]`), so training uses the batch's and
    /// inference the running value, like every BN here.
    LearnedSplitRms(f64),
}

impl BnScale {
    /// Checks `γ > 0` (fixed) or `τ ∈ (0, 1)` (learned split), NaN-proof.
    pub fn validate(&self) -> crate::Result<()> {
        match *self {
            BnScale::Fixed(gamma) => crate::error::ensure_positive("gamma", gamma),
            BnScale::LearnedSplit(tau) | BnScale::LearnedSplitRms(tau)
                if !(tau > 0.0 && tau < 1.0) =>
            {
                Err(Error::config(
                    "tau",
                    tau,
                    "a number strictly between 0 and 1",
                ))
            }
            BnScale::LearnedSplit(_) | BnScale::LearnedSplitRms(_) => Ok(()),
        }
    }
}

/// Checks BN's running-statistics momentum (in [0, 1]) and ε (> 0).
pub(crate) fn check_batch_statistics(momentum: f64, epsilon: f64) -> crate::Result<()> {
    if !(0.0..=1.0).contains(&momentum) {
        return Err(Error::config("momentum", momentum, "a number in [0, 1]"));
    }
    crate::error::ensure_positive("epsilon", epsilon)
}

/// The BN-VAE posterior head: linear maps to the raw `(μ̃, s̃)` per latent dimension, then
/// the batch normalisation and scaling of [`BnScale`]. In training mode (autodiff device,
/// module not `valid()`), BN uses the batch's statistics and updates running ones; in
/// inference mode it uses the running statistics, as burn's `BatchNorm` does.
#[derive(Module, Debug)]
pub struct BnGaussianHead {
    /// Features → raw mean `μ̃`.
    pub mean: Linear,
    /// Features → raw log-variance (fixed γ) or raw standard deviation (learned splits).
    pub second: Linear,
    /// Normalises the raw mean (affine parameters frozen at 1 and 0).
    pub mean_norm: BatchNorm,
    /// Normalises the raw standard deviation (Su's learned split only).
    pub std_norm: Option<BatchNorm>,
    /// Holds the root mean square of the positive standard deviation as the scale of the
    /// symmetrised batch (the RMS variant of the learned split only).
    pub rms_norm: Option<BatchNorm>,
    /// Learned shift `β` of the mean (fixed γ only).
    pub shift: Option<Param<Tensor<1>>>,
    /// Learned `θ` per dimension (learned split only).
    pub theta: Option<Param<Tensor<1>>>,
    /// Latent dimension `n`.
    pub latent_dim: usize,
    /// The fixed `γ` (fixed variant).
    pub gamma: f64,
    /// The fixed `τ` (learned split).
    pub tau: f64,
}

impl BnGaussianHead {
    /// A head reading `d_features` with `latent_dim` dimensions, scaled as `scale` says,
    /// with BN's running-statistics `momentum` and `epsilon`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero size, γ ≤ 0, τ outside (0, 1), a momentum
    /// outside [0, 1] or ε ≤ 0.
    pub fn new(
        d_features: usize,
        latent_dim: usize,
        scale: BnScale,
        momentum: f64,
        epsilon: f64,
        device: &Device,
    ) -> crate::Result<Self> {
        ensure_nonzero("d_features", d_features)?;
        ensure_nonzero("latent_dim", latent_dim)?;
        scale.validate()?;
        check_batch_statistics(momentum, epsilon)?;
        let n = latent_dim;
        let norm = || {
            let mut bn = BatchNormConfig::new(n)
                .with_momentum(momentum)
                .with_epsilon(epsilon)
                .init(device);
            // Pure normalisation: BN's own affine parameters stay at (1, 0), untrained.
            bn.gamma = Param::from_tensor(Tensor::ones([n], device)).set_require_grad(false);
            bn.beta = Param::from_tensor(Tensor::zeros([n], device)).set_require_grad(false);
            bn
        };
        let learned = |value: f64| Param::from_tensor(Tensor::full([n], value, device));
        let (std_norm, rms_norm, shift, theta, gamma, tau) = match scale {
            BnScale::Fixed(gamma) => (None, None, Some(learned(0.0)), None, gamma, 0.0),
            BnScale::LearnedSplit(tau) => (Some(norm()), None, None, Some(learned(0.0)), 0.0, tau),
            BnScale::LearnedSplitRms(tau) => {
                (None, Some(norm()), None, Some(learned(0.0)), 0.0, tau)
            }
        };
        Ok(Self {
            mean: LinearConfig::new(d_features, n).init(device),
            second: LinearConfig::new(d_features, n).init(device),
            mean_norm: norm(),
            std_norm,
            rms_norm,
            shift,
            theta,
            latent_dim: n,
            gamma,
            tau,
        })
    }

    /// The raw, un-normalised `(μ̃, s̃)` of the features (what BN normalises).
    pub fn raw(&self, features: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        (self.mean.run(features.clone()), self.second.run(features))
    }

    /// The scales `(γ_μ, γ_σ)` per dimension, each `[n]`. For the fixed variant `γ_σ` is
    /// meaningless and returned as zeros.
    pub fn scales(&self) -> (Tensor<1>, Tensor<1>) {
        match &self.theta {
            Some(theta) => {
                let t = theta.val();
                let mu = activation::sigmoid(t.clone())
                    .mul_scalar(1.0 - self.tau)
                    .add_scalar(self.tau)
                    .sqrt();
                let sigma = activation::sigmoid(t.neg())
                    .mul_scalar(1.0 - self.tau)
                    .sqrt();
                (mu, sigma)
            }
            None => {
                let device = self.mean_norm.running_mean.value().device();
                (
                    Tensor::full([self.latent_dim], self.gamma, &device),
                    Tensor::zeros([self.latent_dim], &device),
                )
            }
        }
    }

    /// The analytic floor of the batch-mean KL in training mode, in nats, for the current
    /// scales: `n γ² / 2` (fixed) or `−½ Σ_d log γ_σ,d²` (learned split). See [`BnScale`].
    /// BN's `ε` makes the batch variance `v / (v + ε)` rather than 1, so the realised KL can
    /// sit below the floor by a relative `ε / v`.
    pub fn kl_floor(&self) -> f64 {
        match &self.theta {
            None => self.latent_dim as f64 * self.gamma * self.gamma / 2.0,
            Some(_) => {
                let (_, gamma_sigma) = self.scales();
                let g: Vec<f32> = gamma_sigma
                    .detach()
                    .try_into_vec_as::<f32>()
                    .unwrap_or_default();
                g.iter().map(|&s| -0.5 * (s as f64 * s as f64).ln()).sum()
            }
        }
    }
}

impl PosteriorHead for BnGaussianHead {
    type Posterior = DiagNormal<2>;

    fn d_input(&self) -> usize {
        self.mean.weight.dims()[0]
    }

    /// # Shapes
    /// - `features`: `[batch, d_input]`
    /// - output: `[batch, latent_dim]`
    fn posterior(&self, features: Tensor<2>) -> DiagNormal<2> {
        let (mean_raw, second) = self.raw(features);
        let n = self.latent_dim;
        let normalised_mean = self.mean_norm.run(mean_raw);
        match (&self.std_norm, &self.rms_norm, &self.shift) {
            (Some(std_norm), _, _) => {
                let (gamma_mu, gamma_sigma) = self.scales();
                let mean = normalised_mean * gamma_mu.reshape([1, n]);
                let sigma = std_norm.run(second) * gamma_sigma.reshape([1, n]);
                let log_var = sigma.powi_scalar(2).add_scalar(MIN_VARIANCE).log();
                DiagNormal::new(mean, log_var).expect("halves share a shape")
            }
            (None, Some(rms_norm), _) => {
                let (gamma_mu, gamma_sigma) = self.scales();
                let mean = normalised_mean * gamma_mu.reshape([1, n]);
                let batch = second.dims()[0];
                let positive = activation::softplus(second, 1.0);
                // BN of [s₊; −s₊]: mean 0, variance E[s₊²], so its first half is s₊ / RMS.
                let symmetric = Tensor::cat(vec![positive.clone(), positive.neg()], 0);
                let scaled = rms_norm.run(symmetric).narrow(0, 0, batch);
                let sigma = scaled * gamma_sigma.reshape([1, n]);
                let log_var = sigma.powi_scalar(2).add_scalar(MIN_VARIANCE).log();
                DiagNormal::new(mean, log_var).expect("halves share a shape")
            }
            (None, None, shift) => {
                let mut mean = normalised_mean.mul_scalar(self.gamma);
                if let Some(beta) = shift {
                    mean = mean + beta.val().reshape([1, n]);
                }
                DiagNormal::new(mean, second).expect("halves share a shape")
            }
        }
    }
}
