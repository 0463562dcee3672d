//! # elbo
//!
//! Latent-variable generative models on [burn](https://burn.dev) that share **one**
//! evidence lower bound and **one** likelihood estimator.
//!
//! ## The ELBO
//!
//! A latent-variable model has a prior `p(z)` and a likelihood `p(x | z)`; its
//! log-likelihood `log p(x) = log ∫ p(x | z) p(z) dz` is intractable. An encoder gives an
//! approximate posterior `q(z | x)`, and for any such `q`
//!
//! ```text
//! log p(x) ≥ ELBO(x) = E_q[log p(x | z)] − KL(q(z | x) ‖ p(z))
//! ```
//!
//! Training maximises the ELBO; evaluation estimates `log p(x)` by importance sampling
//! with `q` as the proposal, `log (1/K) Σ_j p(x, z_j) / q(z_j | x)`, whose expectation is
//! the IWAE bound `L_K` and which tends to `log p(x)` as `K` grows.
//!
//! ## Notation
//!
//! `x` data, `z` latents, `q(z | x)` posterior (encoder), `p(x | z)` likelihood
//! (decoder), `p(z)` prior, `log_var = ln σ²`, `K` importance samples. Every per-example
//! quantity has shape `[batch]`; `elbo` is the bound (higher is better) and
//! `loss = −elbo`. Log-likelihoods are in nats unless a name says bits.
//!
//! ## The seams
//!
//! - [`Distribution`], [`Posterior`], [`Prior`], [`KlDivergence`]: the probability
//!   families ([`distributions`]);
//! - [`Encoder`] and [`Decoder`]: the networks;
//! - [`LatentVariableModel`]: what the shared [`objective`] needs from a model —
//!   `elbo(x)` and `log_importance_weights(x, k)`.
//!
//! The generic [`models::Vae`] implements it for any encoder/decoder/prior that line up.
//!
//! ## Quick start
//!
//! ```
//! use burn::tensor::Tensor;
//! use elbo::prelude::*;
//!
//! let device = elbo::device::default_device(); // flex, the CPU, in the default build
//! let vae = GaussianVaeConfig::new(16, 2).with_hidden(vec![32]).init(&device)?;
//! let x = Tensor::<2>::ones([8, 16], &device); // a batch of binary data
//!
//! // One posterior sample: per-example reconstruction and KL terms.
//! let terms = vae.elbo(&x)?;
//! assert_eq!(terms.elbo().dims(), [8]);
//!
//! // Importance-sampled log p(x) with K = 100, with its standard error.
//! let ll = log_likelihood(&vae, &x, &LikelihoodConfig::new(100))?;
//! println!("NLL {:.2} ± {:.2} nats", -ll.mean, ll.std_error);
//! # Ok::<(), elbo::Error>(())
//! ```
//!
//! ## Devices and features
//!
//! Every API takes a `&Device`. The default feature `flex` gives burn's pure-Rust CPU
//! backend (`Device::flex()`) with this crate's CPU kernels; the `wgpu` feature adds
//! `Device::wgpu(..)`, the `cuda` feature `Device::cuda(..)`; [`device::from_name`] picks
//! one by name. The `png` feature (default) writes picture grids ([`image`]). Training
//! uses `device.autodiff()`; evaluation uses `model.valid()`.
//!
//! ## Logging
//!
//! The fit loop reports each epoch through the [`log`](https://docs.rs/log) crate (at
//! `info`, target `elbo::train`) when [`FitConfig::log_epochs`](train::FitConfig) is set;
//! install any logger (`env_logger`, `tracing-log`) to see it. Progress bars are drawn on
//! standard error, and only when it is a terminal.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod atomic_write;
pub mod data;
pub mod device;
pub mod distributions;
pub mod ema;
mod error;
#[cfg(feature = "png")]
#[cfg_attr(docsrs, doc(cfg(feature = "png")))]
pub mod image;
/// The CPU kernels behind the models' layers on flex, with fallbacks to burn's ops
/// elsewhere: the [`flex_kernels`] crate (crates/flex-kernels in the repository).
pub use flex_kernels as kernels;
#[cfg(feature = "train")]
pub mod learner;
pub mod math;
pub mod models;
pub mod nn;
pub mod objective;
pub mod optim;
mod progress;
mod terms;
pub mod train;
mod traits;
pub mod weights;

pub use ema::Ema;
pub use error::{Error, Result};
pub use flex_kernels::retain_freed_memory;
pub use terms::{ElboTerms, PathLogWeights};
pub use traits::{
    Batch, Decoder, Distribution, Encoder, KlDivergence, LatentVariableModel, Posterior,
    PosteriorHead, Prior,
};

/// The types most programs import.
pub mod prelude {
    pub use crate::distributions::{Bernoulli, DiagNormal, StdNormal};
    pub use crate::models::{GaussianVae, GaussianVaeConfig, Vae};
    pub use crate::objective::{
        ElboObjective, ElboTerms, Estimate, LikelihoodConfig, Objective, bits_per_dim,
        elbo_estimate, iwae_bound, log_likelihood,
    };
    pub use crate::train::{FitConfig, History, OptimizerKind, fit};
    pub use crate::{
        Batch, Decoder, Distribution, Encoder, Error, KlDivergence, LatentVariableModel, Posterior,
        Prior, Result,
    };
}

/// The README's API tour, compiled and run as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The custom-model guide's code (`docs/custom_model.md`), compiled and run as a doc test.
#[doc = include_str!("../docs/custom_model.md")]
#[cfg(doctest)]
pub struct CustomModelDoctests;
