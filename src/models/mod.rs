//! The models: the generic [`Vae`] and the variants built from it.
//!
//! Encoders are a trunk with a posterior head ([`GaussianHead`], [`BnGaussianHead`],
//! [`VmfHead`], [`PowerSphericalHead`]): an [`MlpEncoder`] for flat data, an
//! [`LstmEncoder`] for sentences ([`TextVaeConfig`]).

mod bn_vae;
mod conv_vae;
pub mod ddpm;
mod gaussian_decoder;
mod gaussian_vae;
mod lstm_decoder;
mod lstm_encoder;
mod mlp_encoder;
pub mod nvae;
mod power_spherical_head;
mod text_vae;
pub mod univae;
mod vae;
mod vib;
mod vmf_vae;

pub use bn_vae::{BnGaussianHead, BnScale, BnVae, BnVaeConfig};
pub use conv_vae::{BernoulliConvDecoder, ConvEncoder, ConvVae, ConvVaeConfig};
pub use gaussian_decoder::{DecoderVariance, GaussianMlpDecoder, GaussianMlpDecoderConfig};
pub use gaussian_vae::{GaussianHead, GaussianVae, GaussianVaeConfig};
pub use lstm_decoder::{LstmDecoder, SequenceLikelihood};
pub use lstm_encoder::LstmEncoder;
pub use mlp_encoder::{BernoulliMlpDecoder, MlpEncoder, mlp_trunk};
pub use power_spherical_head::PowerSphericalHead;
pub use text_vae::{TextVae, TextVaeConfig};
pub use vae::Vae;
pub use vib::{Vib, VibConfig};
pub use vmf_vae::{VmfHead, VmfKappa, VmfVae, VmfVaeConfig};
