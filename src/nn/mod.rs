//! Reusable networks.

mod lstm;
mod mlp;
mod spectral_conv;
mod unet;

pub(crate) use lstm::embed_steps;
pub use lstm::{Lstm, LstmConfig, LstmState};
pub use mlp::{Activation, Mlp, MlpConfig};
pub use spectral_conv::{SpectralConv2d, power_iteration, spectral_norm_estimate};
pub use unet::{
    AttentionBlock, DownLevel, ResBlock, UNet, UNetConfig, UpLevel, timestep_embedding,
};
