//! Encoder trunks: the networks that turn data into features for a posterior head
//! ([`heads`](super::heads)). Each trunk takes any head.

mod conv;
mod lstm;
mod mlp;

pub use conv::ConvEncoder;
pub use lstm::LstmEncoder;
pub use mlp::{MlpEncoder, mlp_trunk};
