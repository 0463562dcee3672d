//! The convolutional Gaussian VAE: strided convolutions down to a diagonal-Gaussian head,
//! a linear map and transposed convolutions back up to a pixel likelihood (Bernoulli
//! logits, or a discretised logistic mixture for 8-bit grey and colour images).

use burn::config::Config;
use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
use burn::nn::{LinearConfig, PaddingConfig2d};
use burn::tensor::Device;

use crate::Error;
use crate::distributions::{PixelLikelihood, StdNormal};
use crate::error::ensure_nonzero;
use crate::models::Vae;
use crate::models::decoders::ConvDecoder;
use crate::models::heads::GaussianHead;
use crate::models::trunks::ConvEncoder;

/// The convolutional Gaussian VAE on flat image rows `[batch, C·H·W]`.
pub type ConvVae = Vae<ConvEncoder<GaussianHead>, ConvDecoder, StdNormal>;

/// Configuration of a [`ConvVae`]: every stage halves the image with a 4×4 convolution of
/// stride 2 and padding 1 followed by ReLU; the flattened last map feeds the Gaussian head.
/// The decoder mirrors it: a linear map and ReLU to the last map's shape, then 4×4
/// transposed convolutions of stride 2 (ReLU between them) back to the parameters of the
/// pixel likelihood: Bernoulli logits (binary images, the default) or a discretised
/// mixture of logistics ([`PixelLikelihood::Logistic`], 8-bit images with values `k/255`,
/// grey or colour).
///
/// The default is the small MNIST model of the reference figures
/// (`reference/pytorch/conv_vae.py`): 1×28×28 → conv 32 → conv 64 (7×7) →
/// latent 32. [`emoji`](Self::emoji) is a colour model for 32×32 RGB images.
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::models::ConvVaeConfig;
/// use elbo::LatentVariableModel;
///
/// let device = elbo::device::default_device();
/// let vae = ConvVaeConfig::mnist().init(&device)?;
/// let x = Tensor::<2>::zeros([2, 784], &device);
/// assert_eq!(vae.log_importance_weights(&x, 3)?.dims(), [2, 3]);
/// assert!(ConvVaeConfig::new(1, 30, 30).validate().is_err()); // 30 is not a multiple of 4
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Config, Debug)]
pub struct ConvVaeConfig {
    /// Channels of the images (1 for MNIST).
    pub image_channels: usize,
    /// Image height (a multiple of `2^stages`).
    pub height: usize,
    /// Image width (a multiple of `2^stages`).
    pub width: usize,
    /// Output channels of each strided convolution, first stage first.
    #[config(default = "vec![32, 64]")]
    pub channels: Vec<usize>,
    /// Latent dimension.
    #[config(default = 32)]
    pub latent_dim: usize,
    /// Pixel distribution.
    #[config(default = "PixelLikelihood::Bernoulli")]
    pub likelihood: PixelLikelihood,
}

impl ConvVaeConfig {
    /// The reference MNIST model: 1×28×28, channels 32 and 64, latent 32.
    pub fn mnist() -> Self {
        Self::new(1, 28, 28)
    }

    /// A colour model for 32×32 RGB 8-bit images (emoji-32, CIFAR-10): three stages of
    /// 32, 64 and 128 channels (4×4), latent 64, and a discretised mixture of 5 logistics
    /// per sub-pixel.
    pub fn emoji() -> Self {
        Self::new(3, 32, 32)
            .with_channels(vec![32, 64, 128])
            .with_latent_dim(64)
            .with_likelihood(PixelLikelihood::Logistic { mixtures: 5 })
    }

    /// Checks the sizes.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero size, no stage, or an image side that the stages
    /// cannot halve exactly.
    pub fn validate(&self) -> crate::Result<()> {
        ensure_nonzero("image_channels", self.image_channels)?;
        ensure_nonzero("latent_dim", self.latent_dim)?;
        if self.channels.is_empty() {
            return Err(Error::config(
                "channels",
                "[]",
                "at least one stage, e.g. vec![32, 64]",
            ));
        }
        for &c in &self.channels {
            ensure_nonzero("channels", c)?;
        }
        self.likelihood.validate()?;
        let factor = 1usize << self.channels.len();
        for (field, side) in [("height", self.height), ("width", self.width)] {
            if side == 0 || side % factor != 0 {
                return Err(Error::config(
                    field,
                    side,
                    format!(
                        "a positive multiple of {factor} (2 to the number of stages, {})",
                        self.channels.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Builds the model.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> crate::Result<ConvVae> {
        self.validate()?;
        let factor = 1usize << self.channels.len();
        let last = [
            *self.channels.last().expect("validated"),
            self.height / factor,
            self.width / factor,
        ];
        let features = last.iter().product();
        let encoder = ConvEncoder {
            convs: stage_pairs(self.image_channels, &self.channels)
                .map(|(c_in, c_out)| {
                    Conv2dConfig::new([c_in, c_out], [4, 4])
                        .with_stride([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(device)
                })
                .collect(),
            head: GaussianHead::new(features, self.latent_dim, device)?,
            image: [self.image_channels, self.height, self.width],
        };
        let mut reversed: Vec<usize> = self.channels.iter().rev().copied().collect();
        reversed.push(self.likelihood.output_channels(self.image_channels));
        let decoder = ConvDecoder {
            linear: LinearConfig::new(self.latent_dim, features).init(device),
            deconvs: reversed
                .windows(2)
                .map(|pair| {
                    ConvTranspose2dConfig::new([pair[0], pair[1]], [4, 4])
                        .with_stride([2, 2])
                        .with_padding([1, 1])
                        .init(device)
                })
                .collect(),
            first_map: last,
            image_channels: self.image_channels,
            likelihood: self.likelihood.clone(),
        };
        Ok(Vae::new(encoder, decoder, StdNormal::new(self.latent_dim)?))
    }
}

/// `(c_in, c_out)` of each stage.
fn stage_pairs(image_channels: usize, channels: &[usize]) -> impl Iterator<Item = (usize, usize)> {
    std::iter::once(image_channels)
        .chain(channels.iter().copied())
        .zip(channels.iter().copied())
}

impl crate::train::ModelConfig for ConvVaeConfig {
    type Model = ConvVae;

    fn init_model(&self, device: &Device) -> crate::Result<ConvVae> {
        self.init(device)
    }
}
