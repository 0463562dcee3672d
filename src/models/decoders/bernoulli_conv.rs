//! The convolutional decoder of binary images: a linear map to a feature map, then
//! transposed convolutions of stride 2 back to Bernoulli logits.

use burn::module::Module;
use burn::nn::Linear;
use burn::nn::conv::ConvTranspose2d;
use burn::tensor::{Tensor, activation};

use crate::distributions::Bernoulli;
use crate::kernels::Run;
use crate::traits::Decoder;

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

    /// # Shapes
    /// - `z`: `[batch, latent_dim]`
    /// - output: logits `[batch, channels·height·width]`
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
