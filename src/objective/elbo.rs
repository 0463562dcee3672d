//! ELBO terms and the training objectives built on them.

use burn::tensor::Tensor;

use crate::error::{ensure_non_negative, ensure_nonzero};
use crate::math::log_mean_exp;
use crate::traits::LatentVariableModel;
use crate::{Error, Result};

/// The per-example terms of the evidence lower bound from one posterior sample.
///
/// # Formula
/// ```text
/// ELBO(x) = E_q[log p(x | z)] − Σ_g KL(q(z_g | x, z_<g) ‖ p(z_g | z_<g))
///         ≈ reconstruction − Σ_g kl[g]
/// ```
/// A flat VAE has one KL group; a hierarchical model one per latent group; DDPM one per
/// diffusion step. Every tensor has shape `[batch]`.
#[derive(Clone, Debug)]
pub struct ElboTerms {
    /// `log p(x | z)` per example, `z` one draw from `q(z | x)`.
    pub reconstruction: Tensor<1>,
    /// One KL term per latent group, each `[batch]`, in nats.
    pub kl: Vec<Tensor<1>>,
}

impl ElboTerms {
    /// `Σ_g kl[g]` per example.
    pub fn kl_total(&self) -> Tensor<1> {
        let mut groups = self.kl.iter().cloned();
        match groups.next() {
            Some(first) => groups.fold(first, |acc, g| acc + g),
            None => self.reconstruction.zeros_like(),
        }
    }

    /// The bound itself, `reconstruction − Σ_g kl[g]`, per example (higher is better).
    pub fn elbo(&self) -> Tensor<1> {
        self.reconstruction.clone() - self.kl_total()
    }
}

/// The (β-weighted, free-bits, warmed-up) negative ELBO as a training loss.
///
/// # Formula
/// ```text
/// loss = mean_b[ −log p(x_b | z_b) ] + β_t · Σ_g max(λ, mean_b KL_g(x_b))
/// β_t  = β · min(1, t / warmup_steps)          (β_t = β when warmup_steps = 0)
/// ```
/// `λ` is the free-bits floor in nats per group (Kingma et al. 2016, "Improved variational
/// inference with inverse autoregressive flow", eq. 15); `λ = 0` turns it off. With
/// `β = 1`, `λ = 0` and no warm-up the loss is exactly `−ELBO`.
#[derive(Clone, Debug, PartialEq)]
pub struct ElboObjective {
    /// Weight on the KL term (β-VAE; 1 is the ELBO).
    pub beta: f64,
    /// Free-bits floor per KL group, in nats (0 disables it).
    pub free_bits: f64,
    /// Steps over which β ramps linearly from 0 to `beta` (0 disables warm-up).
    pub warmup_steps: usize,
}

impl Default for ElboObjective {
    fn default() -> Self {
        Self {
            beta: 1.0,
            free_bits: 0.0,
            warmup_steps: 0,
        }
    }
}

impl ElboObjective {
    /// Checks `beta >= 0` and `free_bits >= 0` (NaN-proof).
    pub fn validate(&self) -> Result<()> {
        ensure_non_negative("beta", self.beta)?;
        ensure_non_negative("free_bits", self.free_bits)
    }

    /// β at global step `step` (0-based).
    pub fn beta_at(&self, step: usize) -> f64 {
        if self.warmup_steps == 0 {
            self.beta
        } else {
            self.beta * ((step as f64) / (self.warmup_steps as f64)).min(1.0)
        }
    }

    /// The scalar loss (shape `[1]`) from per-example ELBO terms at global step `step`.
    pub fn loss(&self, terms: &ElboTerms, step: usize) -> Tensor<1> {
        let rec = terms.reconstruction.clone().mean().neg();
        let beta = self.beta_at(step);
        let kl = if self.free_bits > 0.0 {
            let mut total = rec.zeros_like();
            for group in &terms.kl {
                total = total + group.clone().mean().clamp_min(self.free_bits);
            }
            total
        } else {
            terms.kl_total().mean()
        };
        rec + kl.mul_scalar(beta)
    }
}

/// What the fit loop minimises.
#[derive(Clone, Debug, PartialEq)]
pub enum Objective {
    /// The single-sample ELBO with β, free bits and warm-up.
    Elbo(ElboObjective),
    /// The k-sample importance-weighted bound (Burda et al. 2016),
    /// `−mean_b log (1/k) Σ_j w_bj`.
    Iwae {
        /// Number of importance samples per example (`k = 1` is the ELBO).
        k: usize,
    },
}

impl Default for Objective {
    fn default() -> Self {
        Objective::Elbo(ElboObjective::default())
    }
}

/// One step's loss and the figures a progress bar reports, all averaged over the batch.
#[derive(Clone, Debug)]
pub struct StepLoss {
    /// The scalar to differentiate, shape `[1]`.
    pub loss: Tensor<1>,
    /// The negative bound (−ELBO, or −IWAE_k), shape `[1]`, detached.
    pub neg_bound: Tensor<1>,
    /// Mean KL summed over groups, shape `[1]`, detached (zero for the IWAE objective).
    pub kl: Tensor<1>,
}

impl Objective {
    /// Checks the objective's parameters.
    pub fn validate(&self) -> Result<()> {
        match self {
            Objective::Elbo(o) => o.validate(),
            Objective::Iwae { k } => ensure_nonzero("k", *k),
        }
    }

    /// The loss of `model` on batch `x` at global step `step`.
    ///
    /// # Errors
    /// Whatever the model returns for a batch of the wrong shape.
    pub fn step_loss<M: LatentVariableModel>(
        &self,
        model: &M,
        x: &M::Input,
        step: usize,
    ) -> Result<StepLoss> {
        match self {
            Objective::Elbo(objective) => {
                let terms = model.elbo(x)?;
                let loss = objective.loss(&terms, step);
                Ok(StepLoss {
                    loss,
                    neg_bound: terms.elbo().mean().neg().detach(),
                    kl: terms.kl_total().mean().detach(),
                })
            }
            Objective::Iwae { k } => {
                if *k == 0 {
                    return Err(Error::config("k", 0, "an integer >= 1"));
                }
                let log_w = model.log_importance_weights(x, *k)?;
                let bound = log_mean_exp(log_w, 1).mean().neg();
                let neg_bound = bound.clone().detach();
                Ok(StepLoss {
                    loss: bound,
                    kl: neg_bound.zeros_like(),
                    neg_bound,
                })
            }
        }
    }
}
