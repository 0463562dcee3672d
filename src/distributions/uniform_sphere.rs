//! The uniform distribution on the unit sphere `S^{d−1}`: the vMF-VAE's prior.

use burn::tensor::{Device, Distribution as TensorDistribution, Tensor};

use super::von_mises_fisher::normalize;
use crate::error::Error;
use crate::math::lgamma;
use crate::traits::Prior;

/// The uniform distribution on `S^{d−1} ⊂ R^d`.
///
/// # Density
/// ```text
/// p(z) = 1 / |S^{d−1}|,     |S^{d−1}| = 2 π^{d/2} / Γ(d/2)
/// ```
///
/// ```
/// use elbo::Prior;
/// use elbo::distributions::UniformSphere;
///
/// let prior = UniformSphere::new(3)?;
/// assert!((prior.log_surface_area() - (4.0 * std::f64::consts::PI).ln()).abs() < 1e-12);
/// assert_eq!(prior.sample(5, &elbo::device::default_device()).dims(), [5, 3]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(burn::module::Module, Debug)]
pub struct UniformSphere {
    dim: usize,
}

impl UniformSphere {
    /// The uniform distribution on the unit sphere of `R^dim`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `dim < 2`.
    pub fn new(dim: usize) -> crate::Result<Self> {
        if dim < 2 {
            return Err(Error::config(
                "dim",
                dim,
                "at least 2 (the sphere S^{d-1} in R^d)",
            ));
        }
        Ok(Self { dim })
    }

    /// The ambient dimension `d`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `ln |S^{d−1}| = ln 2 + (d/2) ln π − ln Γ(d/2)`.
    pub fn log_surface_area(&self) -> f64 {
        let half = self.dim as f64 / 2.0;
        std::f64::consts::LN_2 + half * std::f64::consts::PI.ln() - lgamma(half)
    }
}

impl Prior for UniformSphere {
    type Value = Tensor<2>;

    fn log_prob(&self, z: &Tensor<2>) -> Tensor<1> {
        let batch = z.dims()[0];
        Tensor::full([batch], -self.log_surface_area(), &z.device())
    }

    fn sample(&self, n: usize, device: &Device) -> Tensor<2> {
        normalize(Tensor::random(
            [n, self.dim],
            TensorDistribution::Normal(0.0, 1.0),
            device,
        ))
    }
}
