//! UniVAE (Su Jianlin 2021, "UniVAE: a Transformer-based single-model VAE"): one
//! Transformer over `[x ; x]` whose attention masks make it encoder and decoder at once,
//! with one spherical (vMF) latent per top layer — a multi-scale code of the sentence.
//!
//! - [`mask`](visibility): who may attend to whom, layer by layer;
//! - [`LatentSlot`]: the encoder's first position turned into a vMF latent and back;
//! - [`UniVaeConfig`] and [`UniVae`]: the model, its ELBO, encoding, decoding and
//!   generation;
//! - [`generate_beam`](UniVae::generate_beam): beam search.

mod beam;
mod config;
mod latent;
mod mask;
mod model;

pub use config::UniVaeConfig;
pub use latent::LatentSlot;
pub use mask::visibility;
pub use model::{Latents, UniVae, UniVaeOutput};
