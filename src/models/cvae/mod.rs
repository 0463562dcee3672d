//! The conditional VAE (Sohn et al. 2015, "Learning Structured Output Representation using
//! Deep Conditional Generative Models"): the class label, one-hot, concatenated to the
//! encoder's input and to the decoder's latent, in the same [`Vae`](crate::models::Vae) as
//! every other variant.
//!
//! - [`Labeled`]: any distribution over flat rows carrying the labels of its rows, so that a
//!   posterior's draws and a likelihood's values are [`LabeledBatch`](crate::data::LabeledBatch)es;
//! - [`LabelPrior`]: a prior over latents that ignores the label (`p(z | y) = p(z)`);
//! - [`ConditionalEncoder`] and [`ConditionalDecoder`]: any flat encoder or decoder, fed the
//!   one-hot label beside its input;
//! - [`ConditionalVaeConfig`] and [`ConditionalVae`]: the MLP model on binary images.

mod config;
mod labeled;
mod parts;

pub use config::{ConditionalVae, ConditionalVaeConfig};
pub use labeled::{LabelPrior, Labeled, one_hot};
pub use parts::{ConditionalDecoder, ConditionalEncoder};
