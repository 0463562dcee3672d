//! [`Vdm`]: the Gaussian noising encoder with schedule `γ(t)`, the denoiser, the three
//! terms of the variational bound, and ancestral sampling.

use burn::module::Module;
use burn::tensor::{Device, Distribution as TensorDistribution, Int, Tensor, activation};

use super::config::{DiffusionTime, ScheduleGradient, VdmConfig, VdmData};
use super::gradient_scale::GradientScale;
use super::schedule::GammaSchedule;
use crate::error::Error;
use crate::models::ddpm::Denoiser;
use crate::nn::UNet;
use crate::objective::ElboTerms;
use crate::traits::LatentVariableModel;

/// The settings of a [`Vdm`] besides its modules (plain data).
#[derive(Clone, Debug)]
pub struct VdmSettings {
    /// `[C, H, W]` of the images.
    pub image: [usize; 3],
    /// What the data are.
    pub data: VdmData,
    /// Continuous or discrete time.
    pub time: DiffusionTime,
    /// The low-discrepancy time sampler.
    pub low_discrepancy: bool,
    /// What a learned schedule is trained on.
    pub schedule_gradient: ScheduleGradient,
}

/// A Variational Diffusion Model (Kingma et al. 2021) on flat images `[batch, C·H·W]`: a
/// VAE whose encoder is the Gaussian noising process `q(z_t | x) = N(α_t x, σ_t² I)` with
/// `α_t² = sigmoid(−γ(t))`, `σ_t² = sigmoid(γ(t))`, and whose decoder is the reverse
/// process built from a denoiser `ε̂(z_t; t)`.
///
/// # Formula
/// ```text
/// −ELBO = KL(q(z_1 | x) ‖ N(0, I))            prior loss
///       + E_q[−log p(x | z_0)]                 reconstruction loss
///       + L_∞ or L_T                           diffusion loss (see DiffusionTime)
/// KL(q(z_1 | x) ‖ N(0, I)) = ½ Σ_d (σ_1² + α_1² x_d² − log σ_1² − 1)
/// ```
/// [`elbo`](LatentVariableModel::elbo) returns `reconstruction = log p(x | z_0)` and
/// `kl = [prior loss, diffusion loss]`, each from one draw (one `t` per example), so
/// `bits_per_dim`, `elbo_estimate` and the fit loop apply unchanged. The denoiser is
/// called with `1000 (γ(t) − γ_min)/(γ_max − γ_min)` as its time input (the configured
/// endpoints), so it is conditioned on `γ_t`, as VDM's score network is.
#[derive(Module, Debug)]
pub struct Vdm<N> {
    /// The denoising network `ε̂(z_t; γ_t)`.
    pub denoiser: N,
    /// The noise schedule.
    pub schedule: GammaSchedule,
    /// Everything else.
    #[module(skip)]
    pub settings: VdmSettings,
}

/// `(α, σ)` of `γ`: `α² = sigmoid(−γ)`, `σ² = sigmoid(γ)`.
fn alpha_sigma(gamma: Tensor<1>) -> (Tensor<1>, Tensor<1>) {
    let alpha = activation::sigmoid(gamma.clone().neg()).sqrt();
    let sigma = activation::sigmoid(gamma).sqrt();
    (alpha, sigma)
}

/// `[b]` → `[b, 1]`, to scale the rows of a `[b, d]` tensor.
fn column(v: Tensor<1>) -> Tensor<2> {
    let [b] = v.dims();
    v.reshape([b, 1])
}

impl<N: Denoiser> Vdm<N> {
    /// Wraps `denoiser` with the schedule and settings of `config` (its `unet` field is
    /// ignored).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid schedule or time steps.
    pub fn new(denoiser: N, config: &VdmConfig, device: &Device) -> crate::Result<Self> {
        if let DiffusionTime::Discrete { steps } = config.time {
            crate::error::ensure_nonzero("time.steps", steps)?;
        }
        Ok(Self {
            denoiser,
            schedule: config.schedule.init(device)?,
            settings: VdmSettings {
                image: [config.channels, config.height, config.width],
                data: config.data,
                time: config.time,
                low_discrepancy: config.low_discrepancy,
                schedule_gradient: config.schedule_gradient,
            },
        })
    }

    /// `C·H·W`.
    pub fn dim(&self) -> usize {
        self.settings.image.iter().product()
    }

    /// Checks that `x` is `[batch ≥ 1, C·H·W]`, finite, and for 8-bit data within `[0, 1]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`], or [`Error::NonFinite`] naming what is wrong with the values.
    pub fn check_input(&self, x: &Tensor<2>) -> crate::Result<()> {
        let [b, d] = x.dims();
        if b == 0 || d != self.dim() {
            let [c, h, w] = self.settings.image;
            return Err(Error::shape(
                "VDM input",
                format!("[batch ≥ 1, {}] (flat {c}×{h}×{w} images)", self.dim()),
                [b, d],
            ));
        }
        let range: Vec<f64> = Tensor::cat(vec![x.clone().min(), x.clone().max()], 0)
            .try_into_vec_as::<f64>()
            .map_err(|e| Error::NonFinite {
                context: "reading the input's range back from the device".into(),
                hint: format!("{e:?}"),
            })?;
        let (low, high) = (range[0], range[1]);
        if !(low.is_finite() && high.is_finite()) {
            return Err(Error::NonFinite {
                context: format!("the VDM input (values from {low} to {high})"),
                hint: "remove NaN and infinite values from the data".into(),
            });
        }
        if self.settings.data == VdmData::EightBit && (low < 0.0 || high > 1.0) {
            return Err(Error::NonFinite {
                context: format!("8-bit VDM input with values from {low} to {high}"),
                hint: "give 8-bit images as levels k/255 in [0, 1] (Images::unit), or use \
                       VdmData::Continuous"
                    .into(),
            });
        }
        Ok(())
    }

    /// The data in the model's space: 8-bit level `k` (`x = k/255`) as the bin centre
    /// `2(k + ½)/256 − 1`; continuous data as they are.
    pub fn to_model_space(&self, x: &Tensor<2>) -> Tensor<2> {
        match self.settings.data {
            VdmData::EightBit => x
                .clone()
                .mul_scalar(255.0)
                .round()
                .add_scalar(0.5)
                .mul_scalar(2.0 / 256.0)
                .sub_scalar(1.0),
            VdmData::Continuous => x.clone(),
        }
    }

    /// The prior loss `KL(q(z_1 | x) ‖ N(0, I))` per example (`x` in model space).
    pub fn prior_loss(&self, x: &Tensor<2>) -> Tensor<1> {
        let [b, _] = x.dims();
        let gamma_1 = self.schedule.gamma(Tensor::<1>::ones([b], &x.device()));
        let var_1 = column(activation::sigmoid(gamma_1.clone()));
        let log_var_1 = column(activation::log_sigmoid(gamma_1));
        // ½ (α_1² x² + σ_1² − log σ_1² − 1), with α_1² = 1 − σ_1²
        let mean_sq = x.clone().powi_scalar(2) * var_1.clone().neg().add_scalar(1.0);
        (mean_sq + var_1 - log_var_1)
            .sub_scalar(1.0)
            .mul_scalar(0.5)
            .sum_dim(1)
            .reshape([b])
    }

    /// The reconstruction term `log p(x | z_0)` per example, one draw of `z_0 ~ q(z_0 | x)`
    /// (`x` as given, `x_model` in model space).
    ///
    /// # Formula
    /// ```text
    /// z_0 / α_0 = x + e^{γ_0/2} ε,   ε ~ N(0, I)
    /// 8-bit:       log p(k | z_0) = log softmax_j(−½ (z_0/α_0 − x_j)² e^{−γ_0})[k]
    /// continuous:  log p(x | z_0) = −½ (log 2π + γ_0 + ε²)
    /// ```
    pub fn reconstruction(&self, x: &Tensor<2>, x_model: &Tensor<2>) -> Tensor<1> {
        let [b, d] = x.dims();
        let device = x.device();
        let gamma_0 = column(self.schedule.gamma(Tensor::<1>::zeros([b], &device)));
        let eps = Tensor::<2>::random([b, d], TensorDistribution::Normal(0.0, 1.0), &device);
        match self.settings.data {
            VdmData::Continuous => (eps.powi_scalar(2) + gamma_0)
                .add_scalar((2.0 * std::f64::consts::PI).ln())
                .mul_scalar(-0.5)
                .sum_dim(1)
                .reshape([b]),
            VdmData::EightBit => {
                let rescaled = x_model.clone() + eps * gamma_0.clone().mul_scalar(0.5).exp();
                let levels = Tensor::<1, Int>::arange(0..256, &device)
                    .float()
                    .add_scalar(0.5)
                    .mul_scalar(2.0 / 256.0)
                    .sub_scalar(1.0)
                    .reshape([1, 1, 256]);
                let inv_var = gamma_0.neg().exp().reshape([b, 1, 1]);
                let logits = (rescaled.reshape([b, d, 1]) - levels)
                    .powi_scalar(2)
                    .mul(inv_var)
                    .mul_scalar(-0.5);
                let log_probs = activation::log_softmax(logits, 2);
                let k = x.clone().mul_scalar(255.0).round().int().reshape([b, d, 1]);
                log_probs.gather(2, k).sum_dim(1).reshape([b])
            }
        }
    }

    /// `n` times in `[0, 1)`: one uniform offset plus `i/n` (mod 1) with the low-discrepancy
    /// sampler, else independent uniforms.
    fn times(&self, n: usize, device: &Device) -> Tensor<1> {
        if self.settings.low_discrepancy {
            let u0 = Tensor::<1>::random([1], TensorDistribution::Uniform(0.0, 1.0), device);
            let steps = Tensor::<1, Int>::arange(0..n as i64, device)
                .float()
                .div_scalar(n as f64);
            let t = steps + u0.expand([n]);
            // mod 1 without a remainder op: subtract 1 where t ≥ 1.
            t.clone() - t.greater_equal_elem(1.0).float()
        } else {
            Tensor::<1>::random([n], TensorDistribution::Uniform(0.0, 1.0), device)
        }
    }

    /// The denoiser's time input for `γ_t`: `1000 (γ_t − γ_min)/(γ_max − γ_min)`.
    fn time_input(&self, gamma: Tensor<1>) -> Tensor<1> {
        let (low, high) = (self.schedule.gamma_min, self.schedule.gamma_max);
        gamma.sub_scalar(low).mul_scalar(1000.0 / (high - low))
    }

    /// `ε̂(z_t; γ_t)` for flat `z_t` `[b, d]`.
    fn predict_noise(&self, z: Tensor<2>, gamma: Tensor<1>) -> crate::Result<Tensor<2>> {
        let [b, d] = z.dims();
        let [c, h, w] = self.settings.image;
        Ok(self
            .denoiser
            .predict(z.reshape([b, c, h, w]), self.time_input(gamma))?
            .reshape([b, d]))
    }

    /// The diffusion loss per example for one draw of `(t, ε)` per example (`x` in model
    /// space): `t` from the configured sampler, `ε ~ N(0, I)`; see
    /// [`diffusion_loss_at`](Self::diffusion_loss_at).
    ///
    /// # Errors
    /// The denoiser's.
    pub fn diffusion_loss(&self, x: &Tensor<2>) -> crate::Result<Tensor<1>> {
        let [b, d] = x.dims();
        let device = x.device();
        let t = self.times(b, &device);
        let eps = Tensor::<2>::random([b, d], TensorDistribution::Normal(0.0, 1.0), &device);
        self.diffusion_loss_at(x, t, eps)
    }

    /// The diffusion loss per example at given uniforms `u` (`[b]`, in `[0, 1)`) and noise
    /// `ε` (`[b, d]`), `x` in model space:
    ///
    /// ```text
    /// continuous:  t = u,           ½ γ'(t) ‖ε − ε̂(z_t; t)‖²
    /// T steps:     t = ⌈uT⌉/T,      ½ T (e^{γ(t) − γ(t − 1/T)} − 1) ‖ε − ε̂(z_t; t)‖²
    /// z_t = α_t x + σ_t ε
    /// ```
    /// With a learned schedule and [`ScheduleGradient::Variance`], the schedule's shape
    /// `ĝ` (of `γ = γ_0 + |r| ĝ`) reaches the loss through a [`GradientScale`] of factors
    /// `2 L_i`, so that the shape's parameters get the gradient of `Σ_i L_i²` while the
    /// endpoints `γ_0`, `|r|` and the denoiser get that of `Σ_i L_i`; the value is the
    /// same.
    ///
    /// # Errors
    /// The denoiser's; [`Error::NonFinite`] if the loss is (with the variance gradient).
    pub fn diffusion_loss_at(
        &self,
        x: &Tensor<2>,
        u: Tensor<1>,
        eps: Tensor<2>,
    ) -> crate::Result<Tensor<1>> {
        let [b, _] = x.dims();
        let mut t = u;
        if let DiffusionTime::Discrete { steps } = self.settings.time {
            // ⌈uT⌉/T ∈ {1/T, …, 1} (u = 0 has probability 0; clamp it to the first step).
            t = t
                .mul_scalar(steps as f64)
                .ceil()
                .clamp_min(1.0)
                .div_scalar(steps as f64);
        }
        let variance = self.schedule.is_learned()
            && self.settings.schedule_gradient == ScheduleGradient::Variance
            && x.device().is_autodiff();
        let scale = GradientScale::new();
        let through = |g: Tensor<1>| if variance { scale.apply(g) } else { g };
        // γ = γ_0 + |r| ĝ: the shape ĝ passes the variance gradient, the endpoints the
        // bound's.
        let (shape, shape_slope) = self.schedule.shape_and_slope(t.clone());
        let (gamma_t, slope) = self
            .schedule
            .gamma_from_shape(through(shape), through(shape_slope));
        let (alpha, sigma) = alpha_sigma(gamma_t.clone());
        let z = x.clone() * column(alpha) + eps.clone() * column(sigma);
        let eps_hat = self.predict_noise(z, gamma_t.clone())?;
        let mse = (eps - eps_hat).powi_scalar(2).sum_dim(1).reshape([b]);
        let weight = match self.settings.time {
            DiffusionTime::Continuous => slope,
            DiffusionTime::Discrete { steps } => {
                let (shape_s, slope_s) = self
                    .schedule
                    .shape_and_slope(t.sub_scalar(1.0 / steps as f64));
                let (gamma_s, _) = self.schedule.gamma_from_shape(through(shape_s), slope_s);
                (gamma_t - gamma_s)
                    .exp()
                    .sub_scalar(1.0)
                    .mul_scalar(steps as f64)
            }
        };
        let loss = weight * mse.mul_scalar(0.5);
        if variance {
            scale.set(&loss.clone().mul_scalar(2.0))?;
        }
        Ok(loss)
    }

    /// One ancestral step from `z_t` to `z_s` (`s < t`, flat `[b, d]`) with given noise:
    ///
    /// ```text
    /// c = 1 − e^{γ_s − γ_t},   z_s = (α_s/α_t) (z_t − σ_t c ε̂) + √((1 − α_s²) c) ε
    /// ```
    ///
    /// # Errors
    /// The denoiser's.
    pub fn ancestral_step_with_noise(
        &self,
        z_t: Tensor<2>,
        gamma_t: f64,
        gamma_s: f64,
        noise: Tensor<2>,
    ) -> crate::Result<Tensor<2>> {
        let [b, _] = z_t.dims();
        let device = z_t.device();
        let sig = |g: f64| 1.0 / (1.0 + (-g).exp());
        let (alpha_t2, alpha_s2) = (sig(-gamma_t), sig(-gamma_s));
        let sigma_t = sig(gamma_t).sqrt();
        let c = -(gamma_s - gamma_t).exp_m1();
        let gamma = Tensor::<1>::full([b], gamma_t, &device);
        let eps_hat = self.predict_noise(z_t.clone(), gamma)?;
        let mean = (z_t - eps_hat.mul_scalar(sigma_t * c)).mul_scalar((alpha_s2 / alpha_t2).sqrt());
        Ok(mean + noise.mul_scalar(((1.0 - alpha_s2) * c).sqrt()))
    }

    /// `n` samples by `steps` ancestral steps from `z_1 ~ N(0, I)` on the grid
    /// `t_i = i/steps`, then `x` from `z_0`: the most probable 8-bit level (as `k/255`) or
    /// the continuous mean `z_0/α_0`.
    ///
    /// # Errors
    /// `n = 0` or `steps = 0`; the denoiser's errors; a non-finite schedule.
    pub fn sample(
        &self,
        n: usize,
        steps: usize,
        progress: bool,
        device: &Device,
    ) -> crate::Result<Tensor<2>> {
        crate::error::ensure_nonzero("n", n)?;
        crate::error::ensure_nonzero("steps", steps)?;
        let d = self.dim();
        let times: Vec<f64> = (0..=steps).map(|i| i as f64 / steps as f64).collect();
        let gammas = self.schedule.gamma_on_host(&times, device)?;
        let bar =
            crate::progress::progress_bar(progress, steps, "sampling (VDM, ancestral)".into());
        let mut z = Tensor::<2>::random([n, d], TensorDistribution::Normal(0.0, 1.0), device);
        for i in (1..=steps).rev() {
            let noise = Tensor::<2>::random([n, d], TensorDistribution::Normal(0.0, 1.0), device);
            z = self.ancestral_step_with_noise(z, gammas[i], gammas[i - 1], noise)?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        let alpha_0 = (1.0 / (1.0 + gammas[0].exp())).sqrt();
        let mean = z.div_scalar(alpha_0);
        Ok(match self.settings.data {
            VdmData::Continuous => mean,
            VdmData::EightBit => mean
                .add_scalar(1.0)
                .mul_scalar(128.0)
                .sub_scalar(0.5)
                .round()
                .clamp(0.0, 255.0)
                .div_scalar(255.0),
        })
    }
}

impl<N: Denoiser> LatentVariableModel for Vdm<N> {
    type Input = Tensor<2>;

    fn elbo(&self, x: &Tensor<2>) -> crate::Result<ElboTerms> {
        self.check_input(x)?;
        let d = self.dim();
        let x_model = self.to_model_space(x);
        let reconstruction = self.reconstruction(x, &x_model);
        let prior = self.prior_loss(&x_model);
        let diffusion = self.diffusion_loss(&x_model)?;
        let mut terms = ElboTerms::new(reconstruction, vec![prior, diffusion]);
        terms.group_dims = vec![d, d];
        Ok(terms)
    }

    /// A VDM's bound is an expectation over time as well as over the noise, not the log
    /// ratio of one draw of a latent trajectory, so it has no importance weights: report
    /// the bound with [`elbo_estimate`](crate::objective::elbo_estimate) and
    /// [`bits_per_dim`](crate::objective::bits_per_dim).
    ///
    /// # Errors
    /// Always [`Error::InvalidConfig`].
    fn log_importance_weights(&self, _x: &Tensor<2>, _k: usize) -> crate::Result<Tensor<2>> {
        Err(Error::config(
            "model",
            "a VDM",
            "a model with importance weights: a VDM's likelihood is reported as its bound \
             (elbo_estimate, then bits_per_dim)",
        ))
    }
}

impl VdmConfig {
    /// Builds the model with a fresh U-Net and schedule.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> crate::Result<Vdm<UNet>> {
        self.validate()?;
        let unet = self.unet.init(device)?;
        Vdm::new(unet, self, device)
    }
}

impl crate::train::ModelConfig for VdmConfig {
    type Model = Vdm<UNet>;

    fn init_model(&self, device: &Device) -> crate::Result<Vdm<UNet>> {
        self.init(device)
    }
}
