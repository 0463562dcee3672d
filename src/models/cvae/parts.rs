//! The conditional encoder and decoder: any flat encoder or decoder, fed the one-hot
//! label beside its input.

use burn::module::Module;
use burn::tensor::Tensor;

use super::labeled::{Labeled, one_hot};
use crate::Result;
use crate::data::LabeledBatch;
use crate::models::checks::check_flat_input;
use crate::traits::{Decoder, Encoder};

/// `q(z | x, y)`: the encoder `inner` applied to `[x, one_hot(y)]`.
///
/// # Shapes
/// - input: a [`LabeledBatch`] with `x: [batch, input_dim]`, `y: [batch]`
/// - `inner` takes `[batch, input_dim + classes]`
#[derive(Module, Debug)]
pub struct ConditionalEncoder<E> {
    /// The encoder of the concatenated input.
    pub inner: E,
    /// Width of `x`.
    pub input_dim: usize,
    /// Number of classes.
    pub classes: usize,
}

impl<E> Encoder for ConditionalEncoder<E>
where
    E: Encoder<Input = Tensor<2>>,
    E::Posterior: crate::Posterior<Value = Tensor<2>>,
{
    type Input = LabeledBatch;
    type Posterior = Labeled<E::Posterior>;

    fn encode(&self, batch: &LabeledBatch) -> Labeled<E::Posterior> {
        let input = Tensor::cat(vec![batch.x.clone(), one_hot(&batch.y, self.classes)], 1);
        Labeled {
            inner: self.inner.encode(&input),
            y: batch.y.clone(),
        }
    }

    /// `x` is `[batch >= 1, input_dim]`, one label per row, each in `0..classes` (reads the
    /// labels back to the host).
    fn check_input(&self, batch: &LabeledBatch) -> Result<()> {
        check_flat_input("ConditionalEncoder (x)", &batch.x, self.input_dim)?;
        batch.check_labels(self.classes)
    }
}

/// `p(x | z, y)`: the decoder `inner` applied to `[z, one_hot(y)]`.
///
/// # Shapes
/// - latent: a [`LabeledBatch`] with `x = z: [batch, latent_dim]`, `y: [batch]`
/// - `inner` takes `[batch, latent_dim + classes]`
#[derive(Module, Debug)]
pub struct ConditionalDecoder<D> {
    /// The decoder of the concatenated latent.
    pub inner: D,
    /// Number of classes.
    pub classes: usize,
}

impl<D> Decoder for ConditionalDecoder<D>
where
    D: Decoder<Latent = Tensor<2>>,
    D::Likelihood: crate::Distribution<Value = Tensor<2>>,
{
    type Latent = LabeledBatch;
    type Likelihood = Labeled<D::Likelihood>;

    fn decode(&self, z: &LabeledBatch) -> Labeled<D::Likelihood> {
        let input = Tensor::cat(vec![z.x.clone(), one_hot(&z.y, self.classes)], 1);
        Labeled {
            inner: self.inner.decode(&input),
            y: z.y.clone(),
        }
    }
}
