//! The Gaussian VAE: a diagonal-Gaussian MLP encoder, a Bernoulli MLP decoder and a
//! standard-normal prior (Kingma & Welling 2014).

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::Vae;
use crate::Error;
use crate::distributions::{Bernoulli, DiagNormal, StdNormal};
use crate::error::ensure_nonzero;
use crate::nn::{Activation, Mlp, MlpConfig};
use crate::traits::{Decoder, Encoder};

/// The Gaussian VAE on flat binary data.
pub type GaussianVae = Vae<GaussianMlpEncoder, BernoulliMlpDecoder, StdNormal>;

/// Configuration of a [`GaussianVae`]: encoder `d_in → hidden… → (μ, log σ²)`, decoder
/// `d_latent → …hidden → d_in` Bernoulli logits.
///
/// ```
/// use burn::tensor::Device;
/// use elbo::models::GaussianVaeConfig;
///
/// let config = GaussianVaeConfig::mnist_mlp(); // the classic 784-400-20
/// let vae = config.init(&Device::flex())?;
/// assert_eq!(vae.encoder.latent_dim(), 20);
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
        ensure_nonzero("input_dim", self.input_dim)?;
        ensure_nonzero("latent_dim", self.latent_dim)?;
        for &h in &self.hidden {
            ensure_nonzero("hidden", h)?;
        }
        Ok(())
    }

    /// Builds the model.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] as [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> crate::Result<GaussianVae> {
        self.validate()?;
        let mut enc_sizes = vec![self.input_dim];
        enc_sizes.extend(&self.hidden);
        enc_sizes.push(2 * self.latent_dim);
        let mut dec_sizes = vec![self.latent_dim];
        dec_sizes.extend(self.hidden.iter().rev());
        dec_sizes.push(self.input_dim);
        let encoder = GaussianMlpEncoder {
            mlp: MlpConfig::new(enc_sizes)
                .with_activation(self.activation)
                .init(device)?,
            latent_dim: self.latent_dim,
        };
        let decoder = BernoulliMlpDecoder {
            mlp: MlpConfig::new(dec_sizes)
                .with_activation(self.activation)
                .init(device)?,
        };
        Ok(Vae::new(encoder, decoder, StdNormal::new(self.latent_dim)?))
    }
}

/// An MLP whose output is split into the mean and log-variance of a diagonal Normal
/// posterior `q(z | x) = N(μ(x), diag(exp(log_var(x))))`.
#[derive(Module, Debug)]
pub struct GaussianMlpEncoder {
    /// Maps `[batch, d_in]` to `[batch, 2·latent_dim]` (means first).
    pub mlp: Mlp,
    /// The latent dimension.
    pub latent_dim: usize,
}

impl GaussianMlpEncoder {
    /// Wraps an MLP whose output width is `2 · latent_dim`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the MLP's output width is not `2 · latent_dim`.
    pub fn new(mlp: Mlp, latent_dim: usize) -> crate::Result<Self> {
        ensure_nonzero("latent_dim", latent_dim)?;
        if mlp.d_output() != 2 * latent_dim {
            return Err(Error::shape(
                "GaussianMlpEncoder::new (MLP output width)",
                format!("2 · latent_dim = {}", 2 * latent_dim),
                mlp.d_output(),
            ));
        }
        Ok(Self { mlp, latent_dim })
    }

    /// The latent dimension.
    pub fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}

/// Checks that a flat batch is `[batch >= 1, width]`.
pub(crate) fn check_flat_input(context: &str, x: &Tensor<2>, width: usize) -> crate::Result<()> {
    let [batch, d] = x.dims();
    if d != width || batch == 0 {
        return Err(Error::shape(
            context.to_string(),
            format!("[batch >= 1, {width}]"),
            x.dims(),
        ));
    }
    Ok(())
}

impl Encoder for GaussianMlpEncoder {
    type Input = Tensor<2>;
    type Posterior = DiagNormal<2>;

    fn encode(&self, x: &Tensor<2>) -> DiagNormal<2> {
        let h = self.mlp.forward(x.clone());
        let mut halves = h.split(self.latent_dim, 1).into_iter();
        let (mean, log_var) = (halves.next().unwrap(), halves.next().unwrap());
        DiagNormal::new(mean, log_var).expect("split halves share a shape")
    }

    fn check_input(&self, x: &Tensor<2>) -> crate::Result<()> {
        check_flat_input("GaussianMlpEncoder input", x, self.mlp.d_input())
    }
}

/// An MLP decoder whose output are Bernoulli logits: `p(x | z) = Bernoulli(sigmoid(f(z)))`.
#[derive(Module, Debug)]
pub struct BernoulliMlpDecoder {
    /// Maps `[batch, latent_dim]` to `[batch, d_out]` logits.
    pub mlp: Mlp,
}

impl Decoder for BernoulliMlpDecoder {
    type Latent = Tensor<2>;
    type Likelihood = Bernoulli<2>;

    fn decode(&self, z: &Tensor<2>) -> Bernoulli<2> {
        Bernoulli::new(self.mlp.forward(z.clone()))
    }
}
