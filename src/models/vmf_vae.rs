//! vMF-VAE: a von Mises–Fisher posterior on the unit sphere with a uniform prior
//! (Davidson et al. 2018 "Hyperspherical Variational Auto-Encoders"; Xu & Durrett 2018
//! "Spherical Latent Spaces for Stable Variational Autoencoders").

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, activation};

use super::mlp_encoder::{bernoulli_mlp_vae, check_mlp_sizes};
use super::{BernoulliMlpDecoder, MlpEncoder, Vae};
use crate::distributions::{UniformSphere, VonMisesFisher};
use crate::error::{ensure_nonzero, ensure_positive};
use crate::kernels::Run;
use crate::nn::Activation;
use crate::traits::PosteriorHead;

/// A VAE with latents on `S^{d−1}`: vMF posterior, uniform prior, Bernoulli decoder.
pub type VmfVae = Vae<MlpEncoder<VmfHead>, BernoulliMlpDecoder, UniformSphere>;

/// How the posterior concentration κ is set.
#[derive(Config, Debug, Copy, PartialEq)]
pub enum VmfKappa {
    /// One fixed κ for every example (Xu & Durrett; Su): the KL to the uniform prior is a
    /// constant, `KL = κ A_d(κ) + ln C_d(κ) + ln |S^{d−1}|`, so it cannot vanish, and
    /// the sampled `w` needs no gradient. The encoder only outputs a direction.
    Fixed(f64),
    /// κ per example from the encoder, `κ = softplus(·) + 1` (Davidson et al. 2018);
    /// gradients reach κ through the sample and the KL.
    Learned,
}

impl VmfKappa {
    /// Checks that a fixed κ is positive and finite (NaN-proof).
    pub fn validate(&self) -> crate::Result<()> {
        match *self {
            VmfKappa::Fixed(k) => ensure_positive("kappa", k),
            VmfKappa::Learned => Ok(()),
        }
    }
}

/// Checks that a latent of width `latent_dim` can live on a sphere: `S^{d−1}` needs `d ≥ 2`.
pub(crate) fn check_sphere_dim(latent_dim: usize) -> crate::Result<()> {
    if latent_dim < 2 {
        return Err(crate::Error::config(
            "latent_dim",
            latent_dim,
            "at least 2 (the sphere S^{d-1} in R^d)",
        ));
    }
    Ok(())
}

/// Configuration of a [`VmfVae`].
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::LatentVariableModel;
/// use elbo::models::{VmfKappa, VmfVaeConfig};
///
/// let device = elbo::device::default_device();
/// let vae = VmfVaeConfig::new(6, 3).with_hidden(vec![8]).with_kappa(VmfKappa::Fixed(10.0)).init(&device)?;
/// let terms = vae.elbo(&Tensor::<2>::ones([4, 6], &device))?;
/// assert_eq!(terms.kl[0].dims(), [4]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Config, Debug)]
pub struct VmfVaeConfig {
    /// Data dimension.
    pub input_dim: usize,
    /// Ambient latent dimension `d` (the sphere is `S^{d−1}`), at least 2.
    pub latent_dim: usize,
    /// Hidden widths of the encoder; the decoder uses them in reverse.
    #[config(default = "vec![400]")]
    pub hidden: Vec<usize>,
    /// Activation between layers.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// Fixed or learned concentration.
    #[config(default = "VmfKappa::Learned")]
    pub kappa: VmfKappa,
}

impl VmfVaeConfig {
    /// Checks sizes (`latent_dim ≥ 2`) and a fixed κ > 0 (NaN-proof).
    pub fn validate(&self) -> crate::Result<()> {
        check_mlp_sizes(self.input_dim, self.latent_dim, &self.hidden)?;
        check_sphere_dim(self.latent_dim)?;
        self.kappa.validate()
    }

    /// Builds the model.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) as [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> crate::Result<VmfVae> {
        self.validate()?;
        let d = self.latent_dim;
        bernoulli_mlp_vae(
            self.input_dim,
            &self.hidden,
            self.activation,
            d,
            |width| VmfHead::new(width, d, self.kappa, device),
            UniformSphere::new(d)?,
            device,
        )
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
                VmfKappa::Fixed(_) => None,
            },
            fixed_kappa: match kappa {
                VmfKappa::Fixed(k) => Some(k),
                VmfKappa::Learned => None,
            },
        })
    }
}

impl PosteriorHead for VmfHead {
    type Posterior = VonMisesFisher;

    fn d_input(&self) -> usize {
        self.direction.weight.dims()[0]
    }

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
