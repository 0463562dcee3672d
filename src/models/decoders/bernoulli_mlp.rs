//! The MLP decoder of binary data: Bernoulli logits from an MLP of the latent.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::Result;
use crate::distributions::Bernoulli;
use crate::nn::{Activation, Mlp, MlpConfig};
use crate::traits::Decoder;

/// An MLP decoder whose output are Bernoulli logits: `p(x | z) = Bernoulli(sigmoid(f(z)))`.
#[derive(Module, Debug)]
pub struct BernoulliMlpDecoder {
    /// Maps `[batch, latent_dim]` to `[batch, d_out]` logits.
    pub mlp: Mlp,
}

impl BernoulliMlpDecoder {
    /// `latent_dim → hidden (reversed)… → output_dim` logits.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for a zero size.
    pub fn new(
        latent_dim: usize,
        encoder_hidden: &[usize],
        output_dim: usize,
        activation: Activation,
        device: &Device,
    ) -> Result<Self> {
        let mut sizes = vec![latent_dim];
        sizes.extend(encoder_hidden.iter().rev());
        sizes.push(output_dim);
        Ok(Self {
            mlp: MlpConfig::new(sizes)
                .with_activation(activation)
                .init(device)?,
        })
    }
}

impl Decoder for BernoulliMlpDecoder {
    type Latent = Tensor<2>;
    type Likelihood = Bernoulli<2>;

    /// # Shapes
    /// - `z`: `[batch, latent_dim]`
    /// - output: logits `[batch, d_output]`
    fn decode(&self, z: &Tensor<2>) -> Bernoulli<2> {
        Bernoulli::new(self.mlp.forward(z.clone()))
    }
}
