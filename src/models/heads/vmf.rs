//! The von Mises–Fisher posterior head (Davidson et al. 2018): a mean direction on the
//! unit sphere and a fixed or learned concentration κ.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, activation};

use crate::distributions::VonMisesFisher;
use crate::error::{ensure_nonzero, ensure_positive};
use crate::kernels::Run;
use crate::models::checks::check_sphere_dim;
use crate::traits::PosteriorHead;

/// How the posterior concentration κ is set.
#[derive(Config, Debug, Copy, PartialEq)]
pub enum VmfKappa {
    /// One fixed κ for every example (Xu & Durrett; Su): the KL to the uniform prior is a
    /// constant, `KL = κ A_d(κ) + ln C_d(κ) + ln |S^{d−1}|`, so it cannot vanish, and
    /// the sampled `w` needs no gradient. The encoder only outputs a direction.
    Fixed(f64),
    /// κ per example from the encoder, `κ = softplus(·) + 1` (Davidson et al. 2018);
    /// gradients reach κ through the sample (with the rejection sampler's correction
    /// term) and the KL. The κ layer has burn's default initialisation, so κ starts near
    /// `softplus(0) + 1 ≈ 1.7`, an almost uniform posterior for most `d`.
    Learned,
    /// κ learned as for [`VmfKappa::Learned`], starting at the given `κ₀ > 1` for every
    /// example: the κ layer starts with zero weights and the bias `softplus⁻¹(κ₀ − 1)`.
    LearnedFrom(f64),
}

impl VmfKappa {
    /// Checks that a fixed κ is positive and finite (NaN-proof).
    pub fn validate(&self) -> crate::Result<()> {
        match *self {
            VmfKappa::Fixed(k) => ensure_positive("kappa", k),
            VmfKappa::Learned => Ok(()),
            VmfKappa::LearnedFrom(k) if k > 1.0 && k.is_finite() => Ok(()),
            VmfKappa::LearnedFrom(k) => Err(crate::Error::config(
                "kappa (the initial value of a learned κ)",
                k,
                "a finite κ₀ > 1 (κ = softplus(·) + 1 cannot go below 1)",
            )),
        }
    }
}

/// The vMF posterior head: a linear map to a direction, normalised onto `S^{d−1}`, and
/// (for learned κ) one more linear output mapped to `κ = softplus(·) + 1`.
#[derive(Module, Debug)]
pub struct VmfHead {
    /// Features → unnormalised direction, `[batch, d]`.
    pub direction: Linear,
    /// Features → raw concentration, `[batch, 1]` (learned κ only).
    pub kappa: Option<Linear>,
    /// The fixed κ, if κ is not learned.
    pub fixed_kappa: Option<f64>,
}

impl VmfHead {
    /// A head reading `d_features` and giving vMF posteriors on `S^{latent_dim − 1}`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for `latent_dim < 2`, a zero
    /// width or a fixed κ ≤ 0.
    pub fn new(
        d_features: usize,
        latent_dim: usize,
        kappa: VmfKappa,
        device: &Device,
    ) -> crate::Result<Self> {
        ensure_nonzero("d_features", d_features)?;
        check_sphere_dim(latent_dim)?;
        kappa.validate()?;
        Ok(Self {
            direction: LinearConfig::new(d_features, latent_dim).init(device),
            kappa: match kappa {
                VmfKappa::Learned => Some(LinearConfig::new(d_features, 1).init(device)),
                VmfKappa::LearnedFrom(k0) => Some(kappa_layer_from(d_features, k0, device)),
                VmfKappa::Fixed(_) => None,
            },
            fixed_kappa: match kappa {
                VmfKappa::Fixed(k) => Some(k),
                VmfKappa::Learned | VmfKappa::LearnedFrom(_) => None,
            },
        })
    }
}

/// The κ layer of [`VmfKappa::LearnedFrom`]: zero weights and the bias
/// `softplus⁻¹(κ₀ − 1) = ln(e^{κ₀ − 1} − 1)` (`≈ κ₀ − 1` once that is large), so
/// `softplus(·) + 1 = κ₀` for every input.
fn kappa_layer_from(d_features: usize, k0: f64, device: &Device) -> Linear {
    let x = k0 - 1.0;
    let bias = if x > 30.0 { x } else { x.exp_m1().ln() };
    let mut layer = LinearConfig::new(d_features, 1).init(device);
    layer.weight = Param::from_tensor(Tensor::zeros([d_features, 1], device));
    layer.bias = Some(Param::from_tensor(Tensor::full([1], bias, device)));
    layer
}

impl PosteriorHead for VmfHead {
    type Posterior = VonMisesFisher;

    fn d_input(&self) -> usize {
        self.direction.weight.dims()[0]
    }

    /// # Shapes
    /// - `features`: `[batch, d_input]`
    /// - output: `[batch, latent_dim]` (unit mean directions)
    fn posterior(&self, features: Tensor<2>) -> VonMisesFisher {
        let [batch, _] = features.dims();
        let raw = self.direction.run(features.clone());
        let norm = raw
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12);
        let direction = raw / norm;
        let kappa = match (&self.kappa, self.fixed_kappa) {
            (Some(layer), _) => {
                activation::softplus(layer.run(features).reshape([batch]), 1.0).add_scalar(1.0)
            }
            (None, k) => Tensor::full([batch], k.unwrap_or(1.0), &direction.device()),
        };
        VonMisesFisher::from_unit_unchecked(direction, kappa)
    }
}
