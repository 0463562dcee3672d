//! The Gaussian VAE: a diagonal-Gaussian posterior head, a Bernoulli MLP decoder and a
//! standard-normal prior (Kingma & Welling 2014).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::mlp_encoder::{bernoulli_mlp_vae, check_mlp_sizes};
use super::{BernoulliMlpDecoder, MlpEncoder, Vae};
use crate::distributions::{DiagNormal, StdNormal};
use crate::error::ensure_nonzero;
use crate::kernels;
use crate::kernels::Run;
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

/// Two linear maps from features to the mean and log-variance of a diagonal Normal
/// posterior `q(z | x) = N(μ(h), diag(exp(log_var(h))))`.
#[derive(Module, Debug)]
pub struct GaussianHead {
    /// Features → `μ`.
    pub mean: Linear,
    /// Features → `log σ²`.
    pub log_var: Linear,
}

impl GaussianHead {
    /// A head reading `d_features` and giving `latent_dim`-dimensional posteriors
    /// (PyTorch's default initialisation).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for a zero size.
    pub fn new(d_features: usize, latent_dim: usize, device: &Device) -> crate::Result<Self> {
        ensure_nonzero("d_features", d_features)?;
        ensure_nonzero("latent_dim", latent_dim)?;
        Ok(Self {
            mean: LinearConfig::new(d_features, latent_dim).init(device),
            log_var: LinearConfig::new(d_features, latent_dim).init(device),
        })
    }
}

impl PosteriorHead for GaussianHead {
    type Posterior = DiagNormal<2>;

    fn d_input(&self) -> usize {
        self.mean.weight.dims()[0]
    }

    /// Both maps as one product `features · [W_μ | W_logσ²] + [b_μ | b_logσ²]`, split after:
    /// the features are read once, and their gradient is one product instead of two
    /// products and a sum.
    fn posterior(&self, features: Tensor<2>) -> DiagNormal<2> {
        let (mean, log_var) = match (&self.mean.bias, &self.log_var.bias) {
            (Some(b_mean), Some(b_log_var)) => {
                let weight =
                    Tensor::cat(vec![self.mean.weight.val(), self.log_var.weight.val()], 1);
                let bias = Tensor::cat(vec![b_mean.val(), b_log_var.val()], 0);
                let both = kernels::affine(features, weight, Some(bias));
                let d = self.mean.weight.dims()[1];
                (both.clone().narrow(1, 0, d), both.narrow(1, d, d))
            }
            _ => (self.mean.run(features.clone()), self.log_var.run(features)),
        };
        DiagNormal::new(mean, log_var).expect("both heads have the latent width")
    }
}
