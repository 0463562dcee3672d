//! [`ConditionalVaeConfig`]: the MLP conditional VAE on binary images.

use burn::config::Config;
use burn::tensor::Device;

use super::labeled::LabelPrior;
use super::parts::{ConditionalDecoder, ConditionalEncoder};
use crate::distributions::StdNormal;
use crate::error::ensure_nonzero;
use crate::models::Vae;
use crate::models::checks::check_mlp_sizes;
use crate::models::decoders::BernoulliMlpDecoder;
use crate::models::heads::GaussianHead;
use crate::models::trunks::{MlpEncoder, mlp_trunk};
use crate::nn::Activation;

/// The conditional Gaussian VAE on flat images with class labels: batches are
/// [`LabeledBatch`](crate::data::LabeledBatch)es (from
/// [`LabeledImageData`](crate::data::LabeledImageData)).
pub type ConditionalVae = Vae<
    ConditionalEncoder<MlpEncoder<GaussianHead>>,
    ConditionalDecoder<BernoulliMlpDecoder>,
    LabelPrior<StdNormal>,
>;

/// Configuration of a [`ConditionalVae`]: encoder `[x, one_hot(y)] → hidden… → (μ, log σ²)`,
/// decoder `[z, one_hot(y)] → …hidden → input_dim` Bernoulli logits, prior `N(0, I)`.
///
/// # Formula
/// ```text
/// ELBO(x | y) = E_q[log p(x | z, y)] − KL(q(z | x, y) ‖ N(0, I))
/// ```
/// (Sohn et al. 2015, eq. 4, with a prior that does not depend on `y`). The shared
/// objective and likelihood estimators apply unchanged and bound `log p(x | y)`.
///
/// ```
/// use burn::tensor::{Int, Tensor};
/// use elbo::LatentVariableModel;
/// use elbo::data::LabeledBatch;
/// use elbo::models::cvae::ConditionalVaeConfig;
///
/// let device = elbo::device::default_device();
/// let vae = ConditionalVaeConfig::new(6, 3, 2).with_hidden(vec![8]).init(&device)?;
/// let batch = LabeledBatch::from_labels(Tensor::<2>::ones([4, 6], &device), &[0, 1, 2, 1])?;
/// assert_eq!(vae.elbo(&batch)?.elbo().dims(), [4]);
/// // Two images of class 2:
/// let z = vae.prior.sample_for(Tensor::<1, Int>::from_ints([2, 2], &device));
/// assert_eq!(vae.decode_mean(&z).x.dims(), [2, 6]);
/// assert!(vae.elbo(&LabeledBatch::from_labels(batch.x.clone(), &[0, 1, 3, 1])?).is_err());
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Config, Debug)]
pub struct ConditionalVaeConfig {
    /// Data dimension (784 for 28×28 images).
    pub input_dim: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Latent dimension.
    pub latent_dim: usize,
    /// Hidden widths of the encoder; the decoder uses them in reverse.
    #[config(default = "vec![400]")]
    pub hidden: Vec<usize>,
    /// Activation between layers.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
}

impl ConditionalVaeConfig {
    /// MNIST: 784 pixels, 10 classes, latent 20, one hidden layer of 400 (the Gaussian
    /// VAE's sizes).
    pub fn mnist() -> Self {
        Self::new(784, 10, 20)
    }

    /// Checks that every size is at least 1.
    pub fn validate(&self) -> crate::Result<()> {
        ensure_nonzero("num_classes", self.num_classes)?;
        check_mlp_sizes(self.input_dim, self.latent_dim, &self.hidden)
    }

    /// Builds the model.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) as [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> crate::Result<ConditionalVae> {
        self.validate()?;
        let classes = self.num_classes;
        let (trunk, width) = mlp_trunk(
            self.input_dim + classes,
            &self.hidden,
            self.activation,
            device,
        )?;
        let encoder = MlpEncoder::new(trunk, GaussianHead::new(width, self.latent_dim, device)?)?;
        let decoder = BernoulliMlpDecoder::new(
            self.latent_dim + classes,
            &self.hidden,
            self.input_dim,
            self.activation,
            device,
        )?;
        Ok(Vae::new(
            ConditionalEncoder {
                inner: encoder,
                input_dim: self.input_dim,
                classes,
            },
            ConditionalDecoder {
                inner: decoder,
                classes,
            },
            LabelPrior {
                inner: StdNormal::new(self.latent_dim)?,
                classes,
            },
        ))
    }
}

impl crate::train::ModelConfig for ConditionalVaeConfig {
    type Model = ConditionalVae;

    fn init_model(&self, device: &Device) -> crate::Result<ConditionalVae> {
        self.init(device)
    }
}
