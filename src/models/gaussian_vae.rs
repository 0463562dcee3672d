//! The Gaussian VAE: a diagonal-Gaussian posterior head, a Bernoulli MLP decoder and a
//! standard-normal prior (Kingma & Welling 2014).

use burn::config::Config;
use burn::tensor::Device;

use crate::distributions::StdNormal;
use crate::models::Vae;
use crate::models::checks::check_mlp_sizes;
use crate::models::decoders::BernoulliMlpDecoder;
use crate::models::heads::GaussianHead;
use crate::models::trunks::{MlpEncoder, mlp_trunk};
use crate::nn::Activation;
use crate::traits::PosteriorHead;

/// The Gaussian VAE on flat binary data.
pub type GaussianVae = Vae<MlpEncoder<GaussianHead>, BernoulliMlpDecoder, StdNormal>;

/// Configuration of a [`GaussianVae`]: encoder `d_in → hidden… → (μ, log σ²)`, decoder
/// `d_latent → …hidden → d_in` Bernoulli logits.
///
/// ```
/// use elbo::models::GaussianVaeConfig;
///
/// let config = GaussianVaeConfig::mnist_mlp(); // the classic 784-400-20
/// let vae = config.init(&elbo::device::default_device())?;
/// assert_eq!(vae.prior.latent_dim(), 20);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Config, Debug)]
pub struct GaussianVaeConfig {
    /// Data dimension (784 for 28×28 images).
    pub input_dim: usize,
    /// Latent dimension.
    pub latent_dim: usize,
    /// Hidden widths of the encoder; the decoder uses them in reverse.
    #[config(default = "vec![400]")]
    pub hidden: Vec<usize>,
    /// Activation between layers.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
}

impl GaussianVaeConfig {
    /// The classic MNIST VAE: 784-400-20, ReLU, Bernoulli logits (the PyTorch examples'
    /// model, and the one our reference figures use).
    pub fn mnist_mlp() -> Self {
        Self::new(784, 20)
    }

    /// Checks that every size is at least 1.
    pub fn validate(&self) -> crate::Result<()> {
        check_mlp_sizes(self.input_dim, self.latent_dim, &self.hidden)
    }

    /// Builds the model.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) as [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> crate::Result<GaussianVae> {
        self.validate()?;
        let n = self.latent_dim;
        bernoulli_mlp_vae(
            self.input_dim,
            &self.hidden,
            self.activation,
            n,
            |width| GaussianHead::new(width, n, device),
            StdNormal::new(n)?,
            device,
        )
    }
}

/// An MLP VAE for binary data: the trunk `input_dim → hidden…`, the head that
/// `make_head(trunk width)` builds, and the Bernoulli decoder
/// `latent_dim → hidden (reversed)… → input_dim`.
pub(crate) fn bernoulli_mlp_vae<H: PosteriorHead, P>(
    input_dim: usize,
    hidden: &[usize],
    activation: Activation,
    latent_dim: usize,
    make_head: impl FnOnce(usize) -> crate::Result<H>,
    prior: P,
    device: &Device,
) -> crate::Result<Vae<MlpEncoder<H>, BernoulliMlpDecoder, P>> {
    let (trunk, width) = mlp_trunk(input_dim, hidden, activation, device)?;
    let encoder = MlpEncoder::new(trunk, make_head(width)?)?;
    let decoder = BernoulliMlpDecoder::new(latent_dim, hidden, input_dim, activation, device)?;
    Ok(Vae::new(encoder, decoder, prior))
}

impl crate::train::ModelConfig for GaussianVaeConfig {
    type Model = GaussianVae;

    fn init_model(&self, device: &Device) -> crate::Result<GaussianVae> {
        self.init(device)
    }
}
