//! The models: the generic [`Vae`] and the variants built from it.
//!
//! Flat-data encoders are an [`MlpEncoder`] trunk with a posterior head:
//! [`GaussianHead`], [`BnGaussianHead`] or [`VmfHead`].

mod bn_vae;
mod gaussian_decoder;
mod gaussian_vae;
mod mlp_encoder;
mod vae;
mod vmf_vae;

pub use bn_vae::{BnGaussianHead, BnScale, BnVae, BnVaeConfig};
pub use gaussian_decoder::{DecoderVariance, GaussianMlpDecoder, GaussianMlpDecoderConfig};
pub use gaussian_vae::{GaussianHead, GaussianVae, GaussianVaeConfig};
pub use mlp_encoder::{BernoulliMlpDecoder, MlpEncoder, mlp_trunk};
pub use vae::Vae;
pub use vmf_vae::{VmfHead, VmfKappa, VmfVae, VmfVaeConfig};
