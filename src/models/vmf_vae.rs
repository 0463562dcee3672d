//! vMF-VAE: a von Mises–Fisher posterior on the unit sphere with a uniform prior
//! (Davidson et al. 2018 "Hyperspherical Variational Auto-Encoders"; Xu & Durrett 2018
//! "Spherical Latent Spaces for Stable Variational Autoencoders").

use burn::config::Config;
use burn::tensor::Device;

use crate::distributions::UniformSphere;
use crate::models::Vae;
use crate::models::checks::{check_mlp_sizes, check_sphere_dim};
use crate::models::decoders::BernoulliMlpDecoder;
use crate::models::gaussian_vae::bernoulli_mlp_vae;
use crate::models::heads::{VmfHead, VmfKappa};
use crate::models::trunks::MlpEncoder;
use crate::nn::Activation;

/// A VAE with latents on `S^{d−1}`: vMF posterior, uniform prior, Bernoulli decoder.
pub type VmfVae = Vae<MlpEncoder<VmfHead>, BernoulliMlpDecoder, UniformSphere>;

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

impl crate::train::ModelConfig for VmfVaeConfig {
    type Model = VmfVae;

    fn init_model(&self, device: &Device) -> crate::Result<VmfVae> {
        self.init(device)
    }
}
