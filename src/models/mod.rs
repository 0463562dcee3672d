//! The models: the generic [`Vae`] and its parts, by the seam they fill.
//!
//! - [`heads`]: posterior heads, features → `q(z|x)` ([`GaussianHead`], [`BnGaussianHead`],
//!   [`VmfHead`], [`PowerSphericalHead`]);
//! - [`trunks`]: encoder networks, data → features ([`MlpEncoder`], [`ConvEncoder`],
//!   [`LstmEncoder`]), each with any head;
//! - [`decoders`]: latents → `p(x|z)` ([`BernoulliMlpDecoder`], [`GaussianMlpDecoder`],
//!   [`ConvDecoder`], [`LstmDecoder`]);
//! - whole models and their presets, one file or folder each: the Gaussian VAE, BN-VAE,
//!   vMF-VAE, conv VAE, sentence VAEs ([`TextVaeConfig`]), the VIB, and [`nvae`], [`ddpm`],
//!   [`univae`], which implement [`LatentVariableModel`](crate::LatentVariableModel)
//!   themselves.
//!
//! Every type is also re-exported here, so `elbo::models::GaussianHead` and
//! `elbo::models::heads::GaussianHead` name the same thing.

mod bn_vae;
mod checks;
mod conv_vae;
pub mod cvae;
pub mod ddpm;
pub mod decoders;
mod gaussian_vae;
pub mod heads;
pub mod nvae;
mod text_vae;
pub mod trunks;
pub mod univae;
mod vae;
pub mod vdm;
mod vib;
mod vmf_vae;

pub use bn_vae::{BnVae, BnVaeConfig};
pub use conv_vae::{ConvVae, ConvVaeConfig};
pub use decoders::{
    BernoulliMlpDecoder, ConvDecoder, DecoderVariance, GaussianMlpDecoder,
    GaussianMlpDecoderConfig, LstmDecoder, SequenceLikelihood,
};
pub use gaussian_vae::{GaussianVae, GaussianVaeConfig};
pub use heads::{BnGaussianHead, BnScale, GaussianHead, PowerSphericalHead, VmfHead, VmfKappa};
pub use text_vae::{TextVae, TextVaeConfig};
pub use trunks::{ConvEncoder, LstmEncoder, MlpEncoder, mlp_trunk};
pub use vae::Vae;
pub use vib::{Vib, VibConfig};
pub use vmf_vae::{VmfVae, VmfVaeConfig};
