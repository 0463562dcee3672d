//! [`Ddpm`]: the learned reverse chain around a [`Denoiser`], its training losses, and the
//! variational bound read as a T-group ELBO.

use burn::module::Module;
use burn::tensor::{Device, Distribution as TensorDistribution, Tensor};

use super::config::{DataDecoder, DdpmConfig, DdpmLoss, Prediction, ReverseVariance};
use super::forward::{
    eps_from_v, eps_from_x0, per_row, q_posterior, q_sample, v_from, x0_from_eps, x0_from_v,
};
use super::schedule::NoiseSchedule;
use crate::distributions::{DiagNormal, DiscretizedNormal};
use crate::error::Error;
use crate::nn::UNet;
use crate::objective::ElboTerms;
use crate::traits::{Distribution, KlDivergence, LatentVariableModel};

/// A network `(x_t, t) ↦` a tensor of `x_t`'s shape: the reverse model's prediction of `ε`,
/// `x_0` or `v` (see [`Prediction`]). The U-Net implements it; bring your own network by
/// implementing it for any [`Module`].
pub trait Denoiser {
    /// `x_t`: `[batch, C, H, W]` in the model's `[−1, 1]` data space; `t`: `[batch]` time
    /// steps `1..=T` as floats.
    ///
    /// # Errors
    /// Whatever the network reports for shapes it cannot take.
    fn predict(&self, x_t: Tensor<4>, t: Tensor<1>) -> crate::Result<Tensor<4>>;
}

impl Denoiser for UNet {
    fn predict(&self, x_t: Tensor<4>, t: Tensor<1>) -> crate::Result<Tensor<4>> {
        self.forward(x_t, t)
    }
}

/// The settings of a [`Ddpm`] besides its network (plain data).
#[derive(Clone, Debug)]
pub struct DdpmSettings {
    /// `[C, H, W]` of the images.
    pub image: [usize; 3],
    /// What the denoiser predicts.
    pub prediction: Prediction,
    /// The reverse variances.
    pub variance: ReverseVariance,
    /// Clip `x̂_0` to `[−1, 1]`.
    pub clip_x0: bool,
    /// The last step's likelihood.
    pub decoder: DataDecoder,
    /// The training loss.
    pub loss: DdpmLoss,
}

/// DDPM as a latent-variable model on flat images `[batch, C·H·W]` with values in `[0, 1]`
/// (grey levels `k/255` for the discretised decoder), mapped to `[−1, 1]` inside.
///
/// # Formula
/// ```text
/// −ELBO = L_T + Σ_{t=2}^{T} L_{t−1} + L_0                               (Ho et al. eq. 5)
/// L_T     = KL(q(x_T | x_0) ‖ N(0, I))
/// L_{t−1} = E_q KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t))
/// L_0     = −E_q log p_θ(x_0 | x_1)
/// p_θ(x_{t−1} | x_t) = N(μ̃_t(x_t, x̂_0(x_t, t)), σ_t² I)
/// ```
/// [`elbo`](LatentVariableModel::elbo) returns `reconstruction = −L_0` and
/// `kl = [L_T, L_{T−1}, …, L_1]` (`T` groups), each from one draw of `x_t ~ q(x_t | x_0)`.
///
/// ```
/// use burn::tensor::{Tensor, Distribution};
/// use elbo::LatentVariableModel;
/// use elbo::models::ddpm::DdpmConfig;
/// use elbo::nn::UNetConfig;
/// let device = elbo::device::default_device();
/// let config = DdpmConfig::new(1, 8, 8)
///     .with_steps(10)
///     .with_unet(UNetConfig::new(1).with_base_channels(8));
/// let model = config.init(&device)?;
/// let x = Tensor::<2>::random([2, 64], Distribution::Uniform(0.0, 1.0), &device);
/// let terms = model.elbo(&x)?;
/// assert_eq!(terms.kl.len(), 10);
/// let samples = model.sample_ddim(3, 5, 0.0, false, &device)?;
/// assert_eq!(samples.dims(), [3, 64]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Ddpm<N> {
    /// The denoising network.
    pub denoiser: N,
    /// `β_t`, `ᾱ_t` and the posterior coefficients.
    #[module(skip)]
    pub schedule: NoiseSchedule,
    /// Everything else.
    #[module(skip)]
    pub settings: DdpmSettings,
}

impl<N> Ddpm<N> {
    /// `T`.
    pub fn steps(&self) -> usize {
        self.schedule.steps()
    }

    /// `C·H·W`.
    pub fn dim(&self) -> usize {
        self.settings.image.iter().product()
    }

    /// Checks that `x` is `[batch ≥ 1, C·H·W]`.
    pub fn check_input(&self, x: &Tensor<2>) -> crate::Result<()> {
        let [b, d] = x.dims();
        if b == 0 || d != self.dim() {
            let [c, h, w] = self.settings.image;
            return Err(Error::shape(
                "DDPM input",
                format!("[batch ≥ 1, {}] (flat {c}×{h}×{w} images)", self.dim()),
                [b, d],
            ));
        }
        Ok(())
    }
}

impl<N: Denoiser> Ddpm<N> {
    /// Wraps `denoiser` with the schedule and settings of `config` (its `unet` field is
    /// ignored).
    ///
    /// # Errors
    /// An invalid schedule.
    pub fn new(denoiser: N, config: &DdpmConfig) -> crate::Result<Self> {
        Ok(Self {
            denoiser,
            schedule: config.noise_schedule()?,
            settings: DdpmSettings {
                image: [config.channels, config.height, config.width],
                prediction: config.prediction,
                variance: config.variance,
                clip_x0: config.clip_x0,
                decoder: config.decoder,
                loss: config.loss,
            },
        })
    }

    /// `[0, 1]` data → the model's `[−1, 1]` space.
    pub fn to_model_space(x: &Tensor<2>) -> Tensor<2> {
        x.clone().mul_scalar(2.0).sub_scalar(1.0)
    }

    /// The model's `[−1, 1]` space → `[0, 1]`.
    pub fn to_data_space(x: Tensor<2>) -> Tensor<2> {
        x.add_scalar(1.0).mul_scalar(0.5)
    }

    /// `(x̂_0, ε̂)` at `x_t` (`[batch, d]`, model space) for one step per row: the network's
    /// prediction converted exactly; with `clip_x0`, `x̂_0` is clipped to `[−1, 1]` and `ε̂`
    /// recomputed from it.
    pub fn predict_x0_eps(
        &self,
        x_t: Tensor<2>,
        t: &[usize],
    ) -> crate::Result<(Tensor<2>, Tensor<2>)> {
        let [b, d] = x_t.dims();
        let [c, h, w] = self.settings.image;
        let device = x_t.device();
        let steps: Vec<f32> = t.iter().map(|&s| s as f32).collect();
        let t_tensor = Tensor::<1>::from_floats(steps.as_slice(), &device);
        let out = self
            .denoiser
            .predict(x_t.clone().reshape([b, c, h, w]), t_tensor)?
            .reshape([b, d]);
        let s = &self.schedule;
        let (x0, eps) = match self.settings.prediction {
            Prediction::Epsilon => (x0_from_eps(s, x_t.clone(), out.clone(), t)?, out),
            Prediction::X0 => (out.clone(), eps_from_x0(s, x_t.clone(), out, t)?),
            Prediction::V => (
                x0_from_v(s, x_t.clone(), out.clone(), t)?,
                eps_from_v(s, x_t.clone(), out, t)?,
            ),
        };
        if self.settings.clip_x0 {
            let x0 = x0.clamp(-1.0, 1.0);
            let eps = eps_from_x0(s, x_t, x0.clone(), t)?;
            Ok((x0, eps))
        } else {
            Ok((x0, eps))
        }
    }

    /// `log σ_t²` of the reverse step at `t`.
    pub fn reverse_log_variance(&self, t: usize) -> f64 {
        match self.settings.variance {
            ReverseVariance::FixedSmall => self.schedule.posterior_log_variance_clipped(t),
            ReverseVariance::FixedLarge if t == 1 => {
                self.schedule.posterior_log_variance_clipped(1)
            }
            ReverseVariance::FixedLarge => self.schedule.beta(t).ln(),
        }
    }

    /// `p_θ(x_{t−1} | x_t)` per row: mean `μ̃_t(x_t, x̂_0)` and `log σ_t²`, both `[batch, d]`.
    pub fn reverse_step_distribution(
        &self,
        x_t: Tensor<2>,
        t: &[usize],
    ) -> crate::Result<DiagNormal<2>> {
        let (x0, _) = self.predict_x0_eps(x_t.clone(), t)?;
        let (mean, _) = q_posterior(&self.schedule, x0, x_t, t)?;
        let device = mean.device();
        let log_var: Vec<f64> = t.iter().map(|&s| self.reverse_log_variance(s)).collect();
        let log_var = per_row(&log_var, &device).expand(mean.dims());
        DiagNormal::new(mean, log_var)
    }

    /// `L_T = KL(q(x_T | x_0) ‖ N(0, I))` per row, `x_0` in model space.
    pub fn prior_term(&self, x0: &Tensor<2>) -> crate::Result<Tensor<1>> {
        let [b, d] = x0.dims();
        let t = self.steps();
        let a = self.schedule.alpha_bar(t);
        let q = DiagNormal::new(
            x0.clone().mul_scalar(a.sqrt()),
            Tensor::<2>::zeros([b, d], &x0.device()).add_scalar((1.0 - a).ln()),
        )?;
        Ok(q.kl(&crate::distributions::StdNormal::new(d)?))
    }

    /// The bound's term for each row's own step (model space): `L_{t−1}` (a KL) for
    /// `t ≥ 2`, `L_0 = −log p(x_0 | x_1)` for `t = 1`, from `x_t = q_sample(x_0, t, noise)`.
    pub fn step_terms(
        &self,
        x0: &Tensor<2>,
        t: &[usize],
        noise: Tensor<2>,
    ) -> crate::Result<Tensor<1>> {
        let x_t = q_sample(&self.schedule, x0.clone(), t, noise)?;
        let p = self.reverse_step_distribution(x_t.clone(), t)?;
        let at_first = t.iter().filter(|&&s| s == 1).count();
        // Each term is computed only when some row needs it: whole batches at one step
        // (the bound's `elbo`) need just one of them.
        let nll = if at_first > 0 {
            Some(self.decoder_nll(&p, x0)?)
        } else {
            None
        };
        let kl = if at_first < t.len() {
            let (q_mean, _) = q_posterior(&self.schedule, x0.clone(), x_t, t)?;
            let q_log_var: Vec<f64> = t
                .iter()
                .map(|&s| self.schedule.posterior_log_variance_clipped(s))
                .collect();
            let q_log_var = per_row(&q_log_var, &x0.device()).expand(q_mean.dims());
            Some(DiagNormal::new(q_mean, q_log_var)?.kl(&p))
        } else {
            None
        };
        Ok(match (kl, nll) {
            (Some(kl), None) => kl,
            (None, Some(nll)) => nll,
            (Some(kl), Some(nll)) => {
                // Rows at t = 1 take the decoder term, the others the KL.
                let first: Vec<f32> = t.iter().map(|&s| f32::from(u8::from(s == 1))).collect();
                let first = Tensor::<1>::from_floats(first.as_slice(), &x0.device());
                kl * first.clone().neg().add_scalar(1.0) + nll * first
            }
            (None, None) => unreachable!("t is non-empty: q_sample checked its length"),
        })
    }

    /// `−log p(x_0 | x_1)` per row under `p` (the reverse step at `t = 1`).
    fn decoder_nll(&self, p: &DiagNormal<2>, x0: &Tensor<2>) -> crate::Result<Tensor<1>> {
        Ok(match self.settings.decoder {
            DataDecoder::Discretized => DiscretizedNormal::from_log_variance(p.loc(), p.log_var())?
                .log_prob(x0)
                .neg(),
            DataDecoder::Continuous => p.log_prob(x0).neg(),
        })
    }

    /// The training loss of one batch (`[1]`) per [`DdpmLoss`], with one uniform step and
    /// fresh noise per row drawn on the batch's device.
    pub fn loss(&self, x: &Tensor<2>) -> crate::Result<Tensor<1>> {
        self.check_input(x)?;
        let [b, d] = x.dims();
        let device = x.device();
        let x0 = Self::to_model_space(x);
        let t = self.uniform_steps(b, &device)?;
        let noise = Tensor::<2>::random([b, d], TensorDistribution::Normal(0.0, 1.0), &device);
        let simple = || -> crate::Result<Tensor<1>> {
            let x_t = q_sample(&self.schedule, x0.clone(), &t, noise.clone())?;
            let target = match self.settings.prediction {
                Prediction::Epsilon => noise.clone(),
                Prediction::X0 => x0.clone(),
                Prediction::V => v_from(&self.schedule, x0.clone(), noise.clone(), &t)?,
            };
            let [c, h, w] = self.settings.image;
            let steps: Vec<f32> = t.iter().map(|&s| s as f32).collect();
            let out = self
                .denoiser
                .predict(
                    x_t.reshape([b, c, h, w]),
                    Tensor::<1>::from_floats(steps.as_slice(), &device),
                )?
                .reshape([b, d]);
            Ok((out - target).powi_scalar(2).mean())
        };
        let vlb = || -> crate::Result<Tensor<1>> {
            let terms = self.step_terms(&x0, &t, noise.clone())?;
            Ok(terms.mul_scalar(self.steps() as f64).mean())
        };
        match self.settings.loss {
            DdpmLoss::Simple => simple(),
            DdpmLoss::Vlb => vlb(),
            DdpmLoss::Hybrid { lambda } => Ok(simple()? + vlb()?.mul_scalar(lambda / d as f64)),
        }
    }

    /// One uniform step in `1..=T` per row, from the device's random stream.
    fn uniform_steps(&self, n: usize, device: &Device) -> crate::Result<Vec<usize>> {
        self.uniform_steps_from(1, n, device)
    }

    /// One uniform step in `first..=T` per row, from the device's random stream.
    fn uniform_steps_from(
        &self,
        first: usize,
        n: usize,
        device: &Device,
    ) -> crate::Result<Vec<usize>> {
        let count = self.steps() + 1 - first;
        Ok(host_uniforms(n, device)?
            .into_iter()
            .map(|v| ((v * count as f64) as usize).min(count - 1) + first)
            .collect())
    }
}

/// `n` uniforms in `[0, 1)` from the device's random stream, on the host (what random time
/// steps are drawn from).
pub(super) fn host_uniforms(n: usize, device: &Device) -> crate::Result<Vec<f64>> {
    let u = Tensor::<1>::random([n], TensorDistribution::Uniform(0.0, 1.0), device);
    let u: Vec<f32> = u.try_into_vec_as::<f32>().map_err(|e| Error::NonFinite {
        context: "reading random time steps back from the device".into(),
        hint: format!("{e:?}"),
    })?;
    Ok(u.into_iter().map(f64::from).collect())
}

impl<N: Denoiser> LatentVariableModel for Ddpm<N> {
    type Input = Tensor<2>;

    fn elbo(&self, x: &Tensor<2>) -> crate::Result<ElboTerms> {
        self.check_input(x)?;
        let [b, d] = x.dims();
        let device = x.device();
        let x0 = Self::to_model_space(x);
        let mut kl = vec![self.prior_term(&x0)?];
        let mut reconstruction = None;
        for t in (1..=self.steps()).rev() {
            let noise = Tensor::random([b, d], TensorDistribution::Normal(0.0, 1.0), &device);
            let term = self.step_terms(&x0, &vec![t; b], noise)?;
            if t == 1 {
                reconstruction = Some(term.neg());
            } else {
                kl.push(term);
            }
        }
        let reconstruction = reconstruction.expect("T ≥ 1");
        let mut terms = ElboTerms::new(reconstruction, kl);
        terms.group_dims = vec![d; terms.kl.len()];
        Ok(terms)
    }

    /// `log w = log p(x_{0:T}) − log q(x_{1:T} | x_0)` with the forward chain as the
    /// proposal: `T` denoiser passes per draw.
    fn log_importance_weights(&self, x: &Tensor<2>, k: usize) -> crate::Result<Tensor<2>> {
        self.check_input(x)?;
        crate::error::ensure_samples(k)?;
        let [b, d] = x.dims();
        let device = x.device();
        let x0 = Self::to_model_space(&x.clone().repeat_dim(0, k));
        let rows = b * k;
        // Walk the forward chain x_1 … x_T once, scoring each reverse step as soon as both
        // of its ends are known, so memory stays at two states.
        let mut log_w = Tensor::<1>::zeros([rows], &device);
        let mut previous = x0.clone();
        for t in 1..=self.steps() {
            let beta = self.schedule.beta(t);
            let q = DiagNormal::new(
                previous.clone().mul_scalar((1.0 - beta).sqrt()),
                Tensor::<2>::zeros([rows, d], &device).add_scalar(beta.ln()),
            )?;
            let x_t = q.sample();
            log_w = log_w - q.log_prob(&x_t);
            let p = self.reverse_step_distribution(x_t.clone(), &vec![t; rows])?;
            log_w = if t == 1 {
                log_w - self.decoder_nll(&p, &x0)?
            } else {
                log_w + p.log_prob(&previous)
            };
            previous = x_t;
        }
        log_w = log_w
            + DiagNormal::new(previous.zeros_like(), previous.zeros_like())?.log_prob(&previous);
        Ok(log_w.reshape([k, b]).transpose())
    }

    fn training_loss(&self, x: &Tensor<2>) -> Option<crate::Result<Tensor<1>>> {
        Some(self.loss(x))
    }
}

impl DdpmConfig {
    /// Builds the model with a fresh U-Net.
    pub fn init(&self, device: &Device) -> crate::Result<Ddpm<UNet>> {
        self.validate()?;
        let unet = self.unet.init(device)?;
        Ddpm::new(unet, self)
    }
}

impl crate::train::ModelConfig for DdpmConfig {
    type Model = Ddpm<UNet>;

    fn init_model(&self, device: &Device) -> crate::Result<Ddpm<UNet>> {
        self.init(device)
    }
}
