//! The convolutional decoder of images: a linear map to a feature map, then transposed
//! convolutions of stride 2 back to the parameters of a pixel likelihood.

use burn::module::Module;
use burn::nn::Linear;
use burn::nn::conv::ConvTranspose2d;
use burn::tensor::{Tensor, activation};

use crate::distributions::{ImageLikelihood, PixelLikelihood};
use crate::kernels::Run;
use crate::traits::Decoder;

/// A linear map to the last feature map, then 4×4 stride-2 transposed convolutions with
/// ReLU between them, giving the parameters of `p(x | z)` for every pixel: Bernoulli
/// logits (`C` maps) or a discretised logistic mixture (`3·M·C` maps), over flat rows.
#[derive(Module, Debug)]
pub struct ConvDecoder {
    /// `z → C_last·H_last·W_last`, followed by ReLU.
    pub linear: Linear,
    /// The transposed convolutions, coarsest first; the last one outputs
    /// `likelihood.output_channels(image_channels)` maps.
    pub deconvs: Vec<ConvTranspose2d>,
    /// `[C, H, W]` of the first feature map.
    pub first_map: [usize; 3],
    /// Channels of the images.
    pub image_channels: usize,
    /// The pixel distribution.
    #[module(skip)]
    pub likelihood: PixelLikelihood,
}

impl Decoder for ConvDecoder {
    type Latent = Tensor<2>;
    type Likelihood = ImageLikelihood;

    /// # Shapes
    /// - `z`: `[batch, latent_dim]`
    /// - output: a likelihood over `[batch, channels·height·width]`
    ///
    /// # Panics
    /// If the last transposed convolution's output channels do not fit `likelihood`
    /// (possible only for a decoder assembled by hand; [`ConvVaeConfig`] checks it).
    ///
    /// [`ConvVaeConfig`]: crate::models::ConvVaeConfig
    fn decode(&self, z: &Tensor<2>) -> ImageLikelihood {
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
        ImageLikelihood::from_checked_output(map, &self.likelihood, self.image_channels)
    }
}
