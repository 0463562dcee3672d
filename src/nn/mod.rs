//! Reusable networks.

mod mlp;

pub use mlp::{Activation, Mlp, MlpConfig};
