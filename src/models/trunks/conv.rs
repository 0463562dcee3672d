//! The convolutional trunk for images: strided convolutions with ReLU, flattened into any
//! posterior head.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Tensor, activation};

use crate::kernels::Run;
use crate::models::checks::check_flat_input;
use crate::traits::{Encoder, PosteriorHead};

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

    /// # Shapes
    /// - `x`: `[batch, channels·height·width]` (flat images)
    /// - output: a posterior with `batch` rows
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
