//! The standard Normal prior `N(0, I)` over `[batch, latent_dim]` latents.

use burn::tensor::{Device, Distribution as TensorDistribution, Tensor};

use super::sum_event_dims;
use crate::Result;
use crate::error::ensure_nonzero;
use crate::math::LN_2PI;
use crate::traits::Prior;

/// The standard Normal prior `p(z) = N(0, I)` on `R^latent_dim`.
///
/// # Density
/// ```text
/// log p(z) = −½ Σ_i (z_i² + ln 2π)
/// ```
///
/// It has no parameters; it is a (parameter-free) module so that it can sit inside a
/// [`Vae`](crate::models::Vae).
///
/// # Example
///
/// ```
/// use elbo::Prior;
/// use elbo::distributions::StdNormal;
///
/// let device = elbo::device::default_device();
/// let prior = StdNormal::new(20)?;
/// let z = prior.sample(8, &device);
/// assert_eq!(z.dims(), [8, 20]);
/// assert_eq!(prior.log_prob(&z).dims(), [8]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(burn::module::Module, Debug)]
pub struct StdNormal {
    latent_dim: usize,
}

impl StdNormal {
    /// `N(0, I)` on `R^latent_dim`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) if `latent_dim == 0`.
    pub fn new(latent_dim: usize) -> Result<Self> {
        ensure_nonzero("latent_dim", latent_dim)?;
        Ok(Self { latent_dim })
    }

    /// The dimension of the latent space.
    pub fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}

impl Prior for StdNormal {
    type Value = Tensor<2>;

    fn log_prob(&self, z: &Tensor<2>) -> Tensor<1> {
        sum_event_dims(z.clone().powi_scalar(2).add_scalar(LN_2PI).mul_scalar(-0.5))
    }

    fn sample(&self, n: usize, device: &Device) -> Tensor<2> {
        Tensor::random(
            [n, self.latent_dim],
            TensorDistribution::Normal(0.0, 1.0),
            device,
        )
    }
}
