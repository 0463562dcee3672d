//! The diagonal Normal distribution `N(μ, diag(σ²))`, parameterised by mean and log-variance.

use burn::tensor::{Distribution as TensorDistribution, Tensor};

use super::{StdNormal, sum_event_dims};
use crate::math::LN_2PI;
use crate::traits::{Batch, Distribution, KlDivergence, Posterior};
use crate::{Error, Result};

/// A batch of diagonal Normal distributions over tensors of rank `D` (row = example).
///
/// # Density
///
/// ```text
/// log N(x; μ, σ²) = −½ Σ_i [ ln 2π + log_var_i + (x_i − μ_i)² / σ_i² ],   σ² = exp(log_var)
/// ```
///
/// Used as the Gaussian VAE's posterior (reparameterised: `z = μ + σ·ε`, `ε ~ N(0, I)`) and
/// as a likelihood for continuous data.
///
/// # Example
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::distributions::{DiagNormal, StdNormal};
/// use elbo::{Distribution, KlDivergence};
///
/// let device = elbo::device::default_device();
/// let mean = Tensor::<2>::zeros([4, 3], &device);
/// let log_var = Tensor::<2>::zeros([4, 3], &device);
/// let q = DiagNormal::new(mean, log_var)?;
/// let kl: Vec<f32> = q.kl(&StdNormal::new(3)?).try_into_vec_as::<f32>().unwrap();
/// assert_eq!(kl, vec![0.0; 4]); // N(0, I) against itself
/// let z = q.sample();
/// assert_eq!(q.log_prob(&z).dims(), [4]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct DiagNormal<const D: usize = 2> {
    mean: Tensor<D>,
    log_var: Tensor<D>,
}

impl<const D: usize> DiagNormal<D> {
    /// A batch of diagonal Normals with the given mean and log-variance (same shape,
    /// batch first).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the shapes differ.
    pub fn new(mean: Tensor<D>, log_var: Tensor<D>) -> Result<Self> {
        if mean.dims() != log_var.dims() {
            return Err(Error::shape(
                "DiagNormal::new (log_var)",
                format!("the mean's shape {:?}", mean.dims()),
                log_var.dims(),
            ));
        }
        Ok(Self { mean, log_var })
    }

    /// The mean `μ`.
    pub fn loc(&self) -> Tensor<D> {
        self.mean.clone()
    }

    /// The log-variance `ln σ²`.
    pub fn log_var(&self) -> Tensor<D> {
        self.log_var.clone()
    }

    /// The standard deviation `σ = exp(½ log_var)`.
    pub fn std(&self) -> Tensor<D> {
        self.log_var.clone().mul_scalar(0.5).exp()
    }

    /// The shape of one batch of values.
    pub fn dims(&self) -> [usize; D] {
        self.mean.dims()
    }

    /// The reparameterised draw `z = μ + σ·ε` for given standard-normal noise `ε`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `noise` does not have the distribution's shape.
    pub fn sample_with_noise(&self, noise: Tensor<D>) -> Result<Tensor<D>> {
        if noise.dims() != self.mean.dims() {
            return Err(Error::shape(
                "DiagNormal::sample_with_noise",
                format!("{:?}", self.mean.dims()),
                noise.dims(),
            ));
        }
        Ok(self.reparameterise(noise))
    }

    fn reparameterise(&self, noise: Tensor<D>) -> Tensor<D> {
        self.mean.clone() + self.std() * noise
    }

    /// Differential entropy per row.
    ///
    /// # Formula
    /// ```text
    /// H = ½ Σ_i (1 + ln 2π + log_var_i)
    /// ```
    pub fn entropy(&self) -> Tensor<1> {
        sum_event_dims(
            self.log_var
                .clone()
                .add_scalar(1.0 + LN_2PI)
                .mul_scalar(0.5),
        )
    }
}

impl<const D: usize> Distribution for DiagNormal<D> {
    type Value = Tensor<D>;

    fn log_prob(&self, value: &Tensor<D>) -> Tensor<1> {
        let diff = value.clone() - self.mean.clone();
        let scaled = diff.powi_scalar(2) * self.log_var.clone().neg().exp();
        sum_event_dims(
            (scaled + self.log_var.clone())
                .add_scalar(LN_2PI)
                .mul_scalar(-0.5),
        )
    }

    fn sample(&self) -> Tensor<D> {
        let noise = Tensor::random(
            self.mean.shape(),
            TensorDistribution::Normal(0.0, 1.0),
            &self.mean.device(),
        );
        self.reparameterise(noise)
    }

    fn mean(&self) -> Tensor<D> {
        self.mean.clone()
    }

    fn batch_size(&self) -> usize {
        self.mean.dims()[0]
    }

    fn repeat_rows(&self, k: usize) -> Self {
        Self {
            mean: self.mean.repeat_rows(k),
            log_var: self.log_var.repeat_rows(k),
        }
    }
}

impl<const D: usize> Posterior for DiagNormal<D> {
    fn mode(&self) -> Tensor<D> {
        self.mean.clone()
    }

    fn detach(&self) -> Self {
        Self {
            mean: self.mean.clone().detach(),
            log_var: self.log_var.clone().detach(),
        }
    }
}

/// # Formula
/// ```text
/// KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_i (μ_i² + σ_i² − 1 − log_var_i)
/// ```
/// (Kingma & Welling 2014, appendix B.)
impl<const D: usize> KlDivergence<StdNormal> for DiagNormal<D> {
    fn kl(&self, prior: &StdNormal) -> Tensor<1> {
        sum_event_dims(self.kl_per_dim(prior))
    }
}

impl<const D: usize> DiagNormal<D> {
    /// `KL(N(μ_i, σ_i²) ‖ N(0, 1))` for every latent dimension `i` (the diagnostic "KL per
    /// dimension"), same shape as the mean; it sums to [`KlDivergence::kl`].
    pub fn kl_per_dim(&self, _prior: &StdNormal) -> Tensor<D> {
        let terms =
            self.mean.clone().powi_scalar(2) + self.log_var.clone().exp() - self.log_var.clone();
        terms.sub_scalar(1.0).mul_scalar(0.5)
    }
}

/// # Formula
/// ```text
/// KL(N(μ₁, σ₁²) ‖ N(μ₂, σ₂²)) = ½ Σ_i [ log_var₂ − log_var₁ + (σ₁² + (μ₁ − μ₂)²) / σ₂² − 1 ]
///                          = ½ Σ_i [ e^δ − δ − 1 + (μ₁ − μ₂)² e^{−log_var₂} ],   δ = log_var₁ − log_var₂
/// ```
/// The second form is the one computed: `σ₁²/σ₂²` as one `e^δ` keeps equal variances at a KL
/// of exactly 0 on every backend (`e^{lv₁}·e^{−lv₂}` is off by a few ulp where `exp` is not
/// correctly rounded, as on GPUs) and cannot overflow for large log-variances.
impl<const D: usize> KlDivergence<DiagNormal<D>> for DiagNormal<D> {
    fn kl(&self, other: &DiagNormal<D>) -> Tensor<1> {
        let diff2 = (self.mean.clone() - other.mean.clone()).powi_scalar(2);
        let delta = self.log_var.clone() - other.log_var.clone();
        let terms = delta.clone().exp() - delta + diff2 * other.log_var.clone().neg().exp();
        sum_event_dims(terms.sub_scalar(1.0).mul_scalar(0.5))
    }
}
