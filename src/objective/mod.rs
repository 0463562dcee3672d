//! The objective and the estimators, written once for every [`LatentVariableModel`](crate::LatentVariableModel).
//!
//! - [`elbo`](self::ElboTerms): per-example ELBO terms, and the training objectives built
//!   from them (β weight, free bits, linear KL warm-up, the k-sample IWAE bound);
//! - [`log_likelihood`] (and [`log_likelihood_parallel`]): importance-sampled `log p(x)` with its standard error,
//!   [`iwae_bound`], [`elbo_estimate`], and the conversion to bits per dimension;
//! - [`rejection_corrected`]: the gradient correction of reparameterised rejection
//!   sampling (the vMF posterior's learned κ);
//! - diagnostics: [`active_units`], [`mutual_information`], [`kl_per_group`].

mod diagnostics;
mod elbo;
mod likelihood;
mod rejection;

pub use crate::terms::{ElboTerms, PathLogWeights};
pub use diagnostics::{ActiveUnits, active_units, kl_per_group, mutual_information};
pub use elbo::{ElboObjective, Objective, StepLoss};
pub use likelihood::{
    Estimate, LikelihoodConfig, bits_per_dim, elbo_estimate, iwae_bound, log_likelihood,
    log_likelihood_parallel, nats_from_bits_per_dim,
};
pub use rejection::rejection_corrected;
