//! The models: the generic [`Vae`] and the variants built from it.

mod bn_vae;
mod gaussian_decoder;
mod gaussian_vae;
mod vae;
mod vmf_vae;

pub use bn_vae::{BnGaussianEncoder, BnScale, BnVae, BnVaeConfig};
pub use gaussian_decoder::{DecoderVariance, GaussianMlpDecoder, GaussianMlpDecoderConfig};
pub use gaussian_vae::{BernoulliMlpDecoder, GaussianMlpEncoder, GaussianVae, GaussianVaeConfig};
pub use vae::Vae;
pub use vmf_vae::{VmfKappa, VmfMlpEncoder, VmfVae, VmfVaeConfig};
