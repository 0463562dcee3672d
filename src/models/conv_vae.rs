//! The convolutional Gaussian VAE: strided convolutions down to a diagonal-Gaussian head,
//! a linear map and transposed convolutions back up to Bernoulli logits.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, activation};

use super::mlp_encoder::check_flat_input;
use super::{GaussianHead, Vae};
use crate::Error;
use crate::distributions::{Bernoulli, StdNormal};
use crate::error::ensure_nonzero;
use crate::kernels::Run;
use crate::traits::{Decoder, Encoder, PosteriorHead};

/// The convolutional Gaussian VAE on flat image rows `[batch, C·H·W]`.
pub type ConvVae = Vae<ConvEncoder<GaussianHead>, BernoulliConvDecoder, StdNormal>;

/// Configuration of a [`ConvVae`]: every stage halves the image with a 4×4 convolution of
/// stride 2 and padding 1 followed by ReLU; the flattened last map feeds the Gaussian head.
/// The decoder mirrors it: a linear map and ReLU to the last map's shape, then 4×4
/// transposed convolutions of stride 2 (ReLU between them) back to Bernoulli logits.
///
/// The default is the small MNIST model of the reference figures
/// (`reference/pytorch/conv_vae.py`): 1×28×28 → conv 32 → conv 64 (7×7) →
/// latent 32.
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
}

impl ConvVaeConfig {
    /// The reference MNIST model: 1×28×28, channels 32 and 64, latent 32.
    pub fn mnist() -> Self {
        Self::new(1, 28, 28)
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
        reversed.push(self.image_channels);
        let decoder = BernoulliConvDecoder {
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

/// Strided convolutions with ReLU, flattened, then a posterior head.
#[derive(Module, Debug)]
pub struct ConvEncoder<H> {
    /// The 4×4, stride-2 convolutions, first stage first.
    pub convs: Vec<Conv2d>,
    /// The posterior head on the flattened last map.
    pub head: H,
    /// `[C, H, W]` of the input images.
    pub image: [usize; 3],
}

impl<H: PosteriorHead> Encoder for ConvEncoder<H> {
    type Input = Tensor<2>;
    type Posterior = H::Posterior;

    fn encode(&self, x: &Tensor<2>) -> H::Posterior {
        let batch = x.dims()[0];
        let [c, h, w] = self.image;
        let mut map = x.clone().reshape([batch, c, h, w]);
        for conv in &self.convs {
            map = activation::relu(conv.run(map));
        }
        self.head.posterior(map.reshape([batch as i64, -1]))
    }

    fn check_input(&self, x: &Tensor<2>) -> crate::Result<()> {
        check_flat_input("ConvEncoder input", x, self.image.iter().product())
    }
}

/// A linear map to the last feature map, then 4×4 stride-2 transposed convolutions with
/// ReLU between them, giving Bernoulli logits for every pixel, flattened.
#[derive(Module, Debug)]
pub struct BernoulliConvDecoder {
    /// `z → C_last·H_last·W_last`, followed by ReLU.
    pub linear: Linear,
    /// The transposed convolutions, coarsest first; the last one outputs the logits.
    pub deconvs: Vec<ConvTranspose2d>,
    /// `[C, H, W]` of the first feature map.
    pub first_map: [usize; 3],
}

impl Decoder for BernoulliConvDecoder {
    type Latent = Tensor<2>;
    type Likelihood = Bernoulli<2>;

    fn decode(&self, z: &Tensor<2>) -> Bernoulli<2> {
        let batch = z.dims()[0];
        let [c, h, w] = self.first_map;
        let mut map = activation::relu(self.linear.run(z.clone())).reshape([batch, c, h, w]);
        let last = self.deconvs.len() - 1;
        for (i, deconv) in self.deconvs.iter().enumerate() {
            map = deconv.run(map);
            if i < last {
                map = activation::relu(map);
            }
        }
        Bernoulli::new(map.reshape([batch as i64, -1]))
    }
}
