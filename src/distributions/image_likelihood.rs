//! The likelihood of flat image rows given a decoder's output map: Bernoulli pixels for
//! binary images, a discretised mixture of logistics for 8-bit grey or colour images.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{Bernoulli, DiscretizedLogisticMixture};
use crate::traits::Distribution;
use crate::{Error, Result};

/// Which distribution the pixels follow given the latents: the choice a model config
/// makes ([`ConvVaeConfig`](crate::models::ConvVaeConfig),
/// [`NvaeConfig`](crate::models::nvae::NvaeConfig)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PixelLikelihood {
    /// Independent Bernoulli pixels (binary images, e.g. binarised MNIST); data in `{0, 1}`.
    Bernoulli,
    /// A discretised mixture of logistics per pixel and channel (8-bit images, grey or
    /// colour); data are levels `k/255` in `[0, 1]`
    /// ([`Binarization::Grey`](crate::data::Binarization::Grey)).
    Logistic {
        /// Number of mixture components (PixelCNN++ and NVAE use 10).
        mixtures: usize,
    },
}

impl PixelLikelihood {
    /// Output channels a decoder's last layer needs for images of `image_channels`
    /// channels: `C` logits for Bernoulli, `3·M·C` (logits, means, log-scales) for `M`
    /// logistics.
    pub fn output_channels(&self, image_channels: usize) -> usize {
        match self {
            Self::Bernoulli => image_channels,
            Self::Logistic { mixtures } => 3 * mixtures * image_channels,
        }
    }

    /// Checks the family's parameters.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a mixture of no components.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Bernoulli => Ok(()),
            Self::Logistic { mixtures } => {
                crate::error::ensure_nonzero("likelihood.mixtures", *mixtures)
            }
        }
    }
}

/// A batch of image likelihoods over flat rows `[batch, C·H·W]` (the layout of
/// [`Images::to_tensor`](crate::data::Images::to_tensor)), built from a decoder's output
/// map `[batch, channels, H, W]` for one [`PixelLikelihood`].
///
/// # Formula
/// ```text
/// Bernoulli:  log p(x) = Σ_i [ x_i·l_i − softplus(l_i) ]           (see Bernoulli)
/// Logistic:   log p(x) = Σ_{c,h,w} ln Σ_m π_m P_m(x_{c,h,w})       (see DiscretizedLogisticMixture)
/// ```
/// The rows are reshaped to `[batch, C, H, W]` (channel-major, as the data are stored)
/// before they are scored, and draws and means are flattened back.
///
/// # Example
/// ```
/// use burn::tensor::Tensor;
/// use elbo::Distribution;
/// use elbo::distributions::{ImageLikelihood, PixelLikelihood};
///
/// let device = elbo::device::default_device();
/// // A decoder's output for 2 RGB images of 4×4 pixels and 5 logistics: 3·5·3 = 45 maps.
/// let family = PixelLikelihood::Logistic { mixtures: 5 };
/// let params = Tensor::<4>::zeros([2, family.output_channels(3), 4, 4], &device);
/// let p = ImageLikelihood::from_network_output(params, &family, 3)?;
/// let x = Tensor::<2>::full([2, 3 * 16], 128.0 / 255.0, &device);
/// assert_eq!(p.log_prob(&x).dims(), [2]);
/// assert_eq!(p.sample().dims(), [2, 48]);
/// # Ok::<(), elbo::Error>(())
/// ```
// A burn tensor handle is 256 bytes: the mixture holds three, the Bernoulli one. One value
// lives per decoder call, so boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum ImageLikelihood {
    /// Bernoulli pixels, logits flattened to `[batch, C·H·W]`.
    Bernoulli(Bernoulli<2>),
    /// A discretised mixture of logistics over `[batch, C, H, W]`.
    Logistic(DiscretizedLogisticMixture),
}

impl ImageLikelihood {
    /// The likelihood `family` describes, from a network's output map
    /// `[batch, family.output_channels(image_channels), H, W]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the map does not have the channels the family needs;
    /// [`Error::InvalidConfig`] for zero channels or mixtures.
    pub fn from_network_output(
        params: Tensor<4>,
        family: &PixelLikelihood,
        image_channels: usize,
    ) -> Result<Self> {
        match family {
            PixelLikelihood::Bernoulli => {
                let [batch, channels, ..] = params.dims();
                if channels != image_channels || channels == 0 {
                    return Err(Error::shape(
                        "ImageLikelihood::from_network_output (Bernoulli)",
                        format!("[batch, {image_channels}, H, W]: one logit map per image channel"),
                        params.dims(),
                    ));
                }
                Ok(Self::Bernoulli(Bernoulli::new(
                    params.reshape([batch as i64, -1]),
                )))
            }
            PixelLikelihood::Logistic { mixtures } => Ok(Self::Logistic(
                DiscretizedLogisticMixture::from_network_output(params, image_channels, *mixtures)?,
            )),
        }
    }

    /// As [`from_network_output`](Self::from_network_output), for a decoder whose sizes
    /// its config has already checked.
    ///
    /// # Panics
    /// If the map does not fit the family: a decoder built by hand with the wrong last
    /// layer. Configs validate this before any decoder exists.
    pub(crate) fn from_checked_output(
        params: Tensor<4>,
        family: &PixelLikelihood,
        image_channels: usize,
    ) -> Self {
        match Self::from_network_output(params, family, image_channels) {
            Ok(p) => p,
            Err(e) => panic!("the decoder's last layer does not fit its likelihood: {e}"),
        }
    }
}

/// `[batch, C, H, W]` view of flat rows, for the mixture's image shape.
fn as_images(x: &Tensor<2>, dims: [usize; 4]) -> Tensor<4> {
    let [_, c, h, w] = dims;
    x.clone().reshape([x.dims()[0], c, h, w])
}

/// Flat rows `[batch, C·H·W]` of images.
fn flat(x: Tensor<4>) -> Tensor<2> {
    let batch = x.dims()[0];
    x.reshape([batch as i64, -1])
}

impl Distribution for ImageLikelihood {
    type Value = Tensor<2>;

    /// `log p(x)` per row, `x` of shape `[batch, C·H·W]`.
    fn log_prob(&self, x: &Tensor<2>) -> Tensor<1> {
        match self {
            Self::Bernoulli(p) => p.log_prob(x),
            Self::Logistic(p) => p.log_prob(&as_images(x, p.image_dims())),
        }
    }

    fn sample(&self) -> Tensor<2> {
        match self {
            Self::Bernoulli(p) => p.sample(),
            Self::Logistic(p) => flat(p.sample()),
        }
    }

    /// Bernoulli probabilities, or the mixture's mean level in `[0, 1]`, flat.
    fn mean(&self) -> Tensor<2> {
        match self {
            Self::Bernoulli(p) => p.mean(),
            Self::Logistic(p) => flat(p.mean()),
        }
    }

    fn batch_size(&self) -> usize {
        match self {
            Self::Bernoulli(p) => p.batch_size(),
            Self::Logistic(p) => p.batch_size(),
        }
    }

    fn repeat_rows(&self, k: usize) -> Self {
        match self {
            Self::Bernoulli(p) => Self::Bernoulli(p.repeat_rows(k)),
            Self::Logistic(p) => Self::Logistic(p.repeat_rows(k)),
        }
    }
}
