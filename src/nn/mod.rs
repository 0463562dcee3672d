//! Reusable networks.

mod lstm;
mod mlp;

pub use lstm::{Lstm, LstmConfig, LstmState};
pub use mlp::{Activation, Mlp, MlpConfig};
