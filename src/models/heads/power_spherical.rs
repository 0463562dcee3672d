//! A Power Spherical posterior head: the vMF head's direction and fixed concentration,
//! with the Bessel-free Power Spherical family (De Cao & Aziz 2020).

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::distributions::PowerSpherical;
use crate::models::heads::{VmfHead, VmfKappa};
use crate::traits::PosteriorHead;

/// A linear map to a mean direction on `S^{d−1}` and one fixed concentration κ, giving
/// [`PowerSpherical`] posteriors. With the uniform prior the KL is a constant, as with the
/// fixed-κ [`VmfHead`], so it cannot vanish.
///
/// κ is fixed because Power Spherical samples here carry no gradient in κ (the Beta draw
/// is made on the host): a learned κ would only feel the KL, which pushes it to 0.
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::{Distribution, PosteriorHead};
/// use elbo::models::PowerSphericalHead;
///
/// let device = elbo::device::default_device();
/// let head = PowerSphericalHead::new(8, 3, 20.0, &device)?;
/// let q = head.posterior(Tensor::ones([2, 8], &device));
/// assert_eq!(q.sample().dims(), [2, 3]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct PowerSphericalHead {
    /// The direction map and the fixed κ.
    pub inner: VmfHead,
}

impl PowerSphericalHead {
    /// A head reading `d_features` and giving posteriors on `S^{latent_dim − 1}` with
    /// concentration `kappa`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for `latent_dim < 2`, a zero
    /// width, or κ ≤ 0 or not finite.
    pub fn new(
        d_features: usize,
        latent_dim: usize,
        kappa: f64,
        device: &Device,
    ) -> crate::Result<Self> {
        Ok(Self {
            inner: VmfHead::new(d_features, latent_dim, VmfKappa::Fixed(kappa), device)?,
        })
    }
}

impl PosteriorHead for PowerSphericalHead {
    type Posterior = PowerSpherical;

    fn d_input(&self) -> usize {
        self.inner.d_input()
    }

    /// # Shapes
    /// - `features`: `[batch, d_input]`
    /// - output: `[batch, latent_dim]` (unit mean directions)
    fn posterior(&self, features: Tensor<2>) -> PowerSpherical {
        let vmf = self.inner.posterior(features);
        PowerSpherical::from_unit_unchecked(vmf.mean_direction(), vmf.kappa())
    }
}
