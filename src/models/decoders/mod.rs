//! Decoders: latents → the likelihood `p(x|z)` of the data.

mod bernoulli_mlp;
mod conv;
mod gaussian_mlp;
mod lstm;

pub use bernoulli_mlp::BernoulliMlpDecoder;
pub use conv::ConvDecoder;
pub use gaussian_mlp::{DecoderVariance, GaussianMlpDecoder, GaussianMlpDecoderConfig};
pub use lstm::{LstmDecoder, SequenceLikelihood};
