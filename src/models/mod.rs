//! The models: the generic [`Vae`] and the variants built from it.

mod gaussian_decoder;
mod gaussian_vae;
mod vae;

pub use gaussian_decoder::{DecoderVariance, GaussianMlpDecoder, GaussianMlpDecoderConfig};
pub use gaussian_vae::{BernoulliMlpDecoder, GaussianMlpEncoder, GaussianVae, GaussianVaeConfig};
pub use vae::Vae;
