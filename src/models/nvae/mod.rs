//! An NVAE-style deep hierarchical VAE (Vahdat & Kautz 2020, "NVAE: A Deep Hierarchical
//! Variational Autoencoder").
//!
//! - [`cells`]: the bottom-up and top-down residual cells with squeeze-and-excitation;
//! - [`latent`]: spatial Normal latent groups and the residual-normal posterior;
//! - [`NvaeConfig`] (with the `mnist_small` and `mnist_large` presets) and [`Nvae`], which
//!   implements [`LatentVariableModel`](crate::LatentVariableModel) so the shared ELBO,
//!   importance-sampled likelihood and diagnostics apply to it unchanged.
//!
//! The training aids of the paper are switches: KL warm-up and KL balancing in
//! [`ElboObjective`](crate::objective::ElboObjective), spectral and batch-norm
//! regularisation in [`NvaeConfig`] (added to the loss through
//! [`LatentVariableModel::penalty`](crate::LatentVariableModel::penalty)), AdamW with a
//! cosine schedule in [`FitConfig`](crate::train::FitConfig).

pub mod cells;
mod config;
pub mod latent;
mod model;

pub use config::NvaeConfig;
pub use latent::{normal, residual_normal, soft_clamp, split_params, with_temperature};
pub use model::{DecoderGroup, EncoderGroup, Nvae};
