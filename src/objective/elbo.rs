//! The training objectives built on a model's ELBO terms ([`ElboTerms`]).

use burn::tensor::{Tensor, activation};

use crate::error::{ensure_non_negative, ensure_samples};
use crate::math::log_mean_exp;
use crate::terms::{ElboTerms, PathLogWeights};
use crate::traits::LatentVariableModel;
use crate::{Error, Result};

/// The (β-weighted, free-bits, warmed-up, KL-balanced) negative ELBO as a training loss.
///
/// # Formula
/// ```text
/// loss = mean_b[ −log p(x_b | z_b) ] + β_t · Σ_g c_g · max(λ, mean_b KL_g(x_b))
/// β_t  = β · max(β_0, min(1, t / warmup_steps))      (β_t = β when warmup_steps = 0)
/// ```
/// `λ` is the free-bits floor in nats per group (Kingma et al. 2016, "Improved variational
/// inference with inverse autoregressive flow", eq. 15); `λ = 0` turns it off. `β_0`
/// (`warmup_start`) is where the warm-up starts (NVAE starts at 1e-4). With `β = 1`,
/// `λ = 0` and no warm-up the loss is exactly `−ELBO`.
///
/// The group weights are `c_g = 1`, except with `kl_balancing` while `β_t < β` (NVAE's KL
/// balancing, Vahdat & Kautz 2020, sec. 3.2 / appendix A): with `α_g` the group's latent
/// dimension (equal when unknown),
/// ```text
/// c̃_g = (mean_b |KL_g| + 0.01) / α_g · Σ_h (mean_b |KL_h| + 0.01),   c_g = G · c̃_g / Σ_h c̃_h
/// ```
/// held fixed (no gradient). Groups carrying more KL per dimension are pushed harder, so no
/// group is switched off early in training; the weights average 1, and the bound itself is
/// unchanged once the warm-up is over.
#[derive(Clone, Debug, PartialEq)]
pub struct ElboObjective {
    /// Weight on the KL term (β-VAE; 1 is the ELBO).
    pub beta: f64,
    /// Free-bits floor per KL group, in nats (0 disables it).
    pub free_bits: f64,
    /// Steps over which β ramps linearly from `warmup_start · beta` to `beta` (0 disables
    /// warm-up).
    pub warmup_steps: usize,
    /// The smallest fraction of β during the warm-up, in `[0, 1]` (0: start from 0).
    pub warmup_start: f64,
    /// Reweight the KL groups during the warm-up (NVAE's KL balancing).
    pub kl_balancing: bool,
}

impl Default for ElboObjective {
    fn default() -> Self {
        Self {
            beta: 1.0,
            free_bits: 0.0,
            warmup_steps: 0,
            warmup_start: 0.0,
            kl_balancing: false,
        }
    }
}

impl ElboObjective {
    /// Checks `beta >= 0`, `free_bits >= 0` and `warmup_start ∈ [0, 1]` (NaN-proof).
    pub fn validate(&self) -> Result<()> {
        ensure_non_negative("beta", self.beta)?;
        ensure_non_negative("free_bits", self.free_bits)?;
        if !(0.0..=1.0).contains(&self.warmup_start) {
            return Err(Error::config(
                "warmup_start",
                self.warmup_start,
                "a fraction of beta in [0, 1]",
            ));
        }
        Ok(())
    }

    /// β at global step `step` (0-based).
    pub fn beta_at(&self, step: usize) -> f64 {
        if self.warmup_steps == 0 {
            self.beta
        } else {
            let ramp = ((step as f64) / (self.warmup_steps as f64)).min(1.0);
            self.beta * ramp.max(self.warmup_start)
        }
    }

    /// The scalar loss (shape `[1]`) from per-example ELBO terms at global step `step`.
    pub fn loss(&self, terms: &ElboTerms, step: usize) -> Tensor<1> {
        let rec = terms.reconstruction.clone().mean().neg();
        let beta = self.beta_at(step);
        let balance = self.kl_balancing && beta < self.beta && terms.kl.len() > 1;
        let weights = if balance {
            Some(balancing_weights(terms))
        } else {
            None
        };
        let kl = if self.free_bits > 0.0 || balance {
            let mut total = rec.zeros_like();
            for (g, group) in terms.kl.iter().enumerate() {
                let mean = group.clone().mean();
                let mean = if self.free_bits > 0.0 {
                    mean.clamp_min(self.free_bits)
                } else {
                    mean
                };
                let weight = weights.as_ref().map_or(1.0, |w| w[g]);
                total = total + mean.mul_scalar(weight);
            }
            total
        } else {
            terms.kl_total().mean()
        };
        rec + kl.mul_scalar(beta)
    }
}

/// NVAE's KL-balancing coefficients `c_g` (see [`ElboObjective`]), read off the batch.
fn balancing_weights(terms: &ElboTerms) -> Vec<f64> {
    let groups = terms.kl.len();
    // One read back from the device for all groups.
    let group_means = Tensor::cat(
        terms
            .kl
            .iter()
            .map(|g| g.clone().detach().abs().mean())
            .collect(),
        0,
    );
    let means: Vec<f64> = group_means
        .try_into_vec_as::<f32>()
        .expect("KL means read back from the device")
        .into_iter()
        .map(|m| m as f64 + 0.01)
        .collect();
    let total: f64 = means.iter().sum();
    let alpha = |g: usize| -> f64 {
        if terms.group_dims.len() == groups {
            terms.group_dims[g].max(1) as f64
        } else {
            1.0
        }
    };
    let raw: Vec<f64> = (0..groups).map(|g| means[g] / alpha(g) * total).collect();
    let mean_raw = raw.iter().sum::<f64>() / groups as f64;
    raw.iter().map(|c| c / mean_raw).collect()
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
    /// The single-sample ELBO with the "sticking the landing" gradient (Roeder et al.
    /// 2017): `−mean_b [log p(x, z) − log q_{⊥φ}(z | x)]`, the posterior's parameters
    /// stopped in `log q`, so the encoder's gradient is the path derivative alone (its
    /// score-function part, zero in expectation, is dropped; the estimator's variance
    /// vanishes as `q` approaches the true posterior). The KL is sampled rather than in
    /// closed form. Needs [`LatentVariableModel::path_log_weights`] (every
    /// [`Vae`](crate::models::Vae) with a reparameterised posterior).
    Stl,
    /// The k-sample IWAE bound with the doubly reparameterised gradient (Tucker et al.
    /// 2019): the value is that of [`Objective::Iwae`], the decoder's gradient is IWAE's,
    /// `Σ_j w̃_j ∇_θ log w_j`, and the encoder's is
    /// ```text
    /// ∇_φ = Σ_j w̃_j² ∂log w_j/∂z_j · ∂z_j/∂φ,     w̃_j = w_j / Σ_l w_l,
    /// ```
    /// with `log q` scored at stopped parameters: unbiased for the same gradient as IWAE's,
    /// with a variance that does not grow with `k` as IWAE's encoder gradient's
    /// signal-to-noise ratio falls (Rainforth et al. 2018). Built as the surrogate
    /// `Σ_j ⊥(w̃_j²) log w_j + ⊥(w̃_j − w̃_j²) log p(x, ⊥z_j)` over
    /// [`LatentVariableModel::path_log_weights`]. `k = 1` is [`Objective::Stl`].
    Dreg {
        /// Number of importance samples per example.
        k: usize,
    },
    /// The model's own loss ([`LatentVariableModel::training_loss`]): DDPM's `L_simple`.
    /// The progress figures then report that loss in place of the bound.
    ModelLoss,
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
    /// Mean KL of each group, shape `[groups]`, detached (`None` for the IWAE objective).
    pub kl_groups: Option<Tensor<1>>,
}

impl StepLoss {
    /// `[loss, −bound, KL]` and the KL per group (empty without groups) on the host, in one
    /// read: one wait for the device per step, where reading them one by one waited four
    /// times. NaNs if the device cannot be read.
    pub fn host_figures(&self) -> ([f64; 3], Vec<f64>) {
        let mut parts = vec![
            self.loss.clone().detach(),
            self.neg_bound.clone(),
            self.kl.clone(),
        ];
        if let Some(groups) = &self.kl_groups {
            parts.push(groups.clone());
        }
        let values: Vec<f64> = Tensor::cat(parts, 0)
            .try_into_vec_as::<f32>()
            .unwrap_or_default()
            .into_iter()
            .map(f64::from)
            .collect();
        match values.split_first_chunk::<3>() {
            Some((&figures, groups)) => (figures, groups.to_vec()),
            None => ([f64::NAN; 3], Vec::new()),
        }
    }
}

impl Objective {
    /// Checks the objective's parameters.
    pub fn validate(&self) -> Result<()> {
        match self {
            Objective::Elbo(o) => o.validate(),
            Objective::Iwae { k } | Objective::Dreg { k } => ensure_samples(*k),
            Objective::Stl | Objective::ModelLoss => Ok(()),
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
                let mut loss = objective.loss(&terms, step);
                if let Some(penalty) = model.penalty() {
                    loss = loss + penalty;
                }
                let kl_groups = Tensor::cat(
                    terms.kl.iter().map(|g| g.clone().detach().mean()).collect(),
                    0,
                );
                Ok(StepLoss {
                    loss,
                    neg_bound: terms.elbo().mean().neg().detach(),
                    kl: terms.kl_total().mean().detach(),
                    kl_groups: (!terms.kl.is_empty()).then_some(kl_groups),
                })
            }
            Objective::Iwae { k } => {
                ensure_samples(*k)?;
                let log_w = model.log_importance_weights(x, *k)?;
                let bound = log_mean_exp(log_w, 1).mean().neg();
                Ok(bound_only(bound.clone(), bound, model.penalty()))
            }
            Objective::Stl => {
                let weights = path_log_weights(model, x, 1, false)?;
                let bound = weights.log_w.mean().neg();
                Ok(bound_only(bound.clone(), bound, model.penalty()))
            }
            Objective::Dreg { k } => {
                ensure_samples(*k)?;
                let weights = path_log_weights(model, x, *k, true)?;
                let log_w = weights.log_w;
                let log_joint = weights
                    .log_joint_stopped
                    .expect("asked for with with_log_joint_stopped = true");
                let bound = log_mean_exp(log_w.clone().detach(), 1).mean().neg();
                // w̃ = softmax over the k draws of each example, held fixed.
                let w_norm = activation::softmax(log_w.clone().detach(), 1);
                let w_sq = w_norm.clone().powi_scalar(2);
                let surrogate = (w_sq.clone() * log_w + (w_norm - w_sq) * log_joint)
                    .sum_dim(1)
                    .mean()
                    .neg();
                // The loss has the bound's value and the surrogate's gradient.
                let loss = bound.clone() + surrogate.clone() - surrogate.detach();
                Ok(bound_only(loss, bound, model.penalty()))
            }
            Objective::ModelLoss => {
                let loss = model.training_loss(x).ok_or_else(|| {
                    Error::config(
                        "objective",
                        "ModelLoss",
                        "a model with its own training loss (DDPM); use Objective::Elbo or \
                         Objective::Iwae for the others",
                    )
                })??;
                let loss = match model.penalty() {
                    Some(penalty) => loss + penalty,
                    None => loss,
                };
                let shown = loss.clone().detach();
                Ok(StepLoss {
                    loss,
                    kl: shown.zeros_like(),
                    kl_groups: None,
                    neg_bound: shown,
                })
            }
        }
    }
}

/// The model's path log weights, or an error naming the objectives that work without them.
fn path_log_weights<M: LatentVariableModel>(
    model: &M,
    x: &M::Input,
    k: usize,
    with_log_joint_stopped: bool,
) -> Result<PathLogWeights> {
    model
        .path_log_weights(x, k, with_log_joint_stopped)
        .ok_or_else(|| {
            Error::config(
                "objective",
                "Stl or Dreg",
                "a model that provides path log weights (a Vae); use Objective::Elbo or \
                 Objective::Iwae for the others",
            )
        })?
}

/// A step loss reporting only the bound (no KL figures): `loss` plus the model's penalty.
fn bound_only(loss: Tensor<1>, bound: Tensor<1>, penalty: Option<Tensor<1>>) -> StepLoss {
    let neg_bound = bound.detach();
    StepLoss {
        loss: match penalty {
            Some(penalty) => loss + penalty,
            None => loss,
        },
        kl: neg_bound.zeros_like(),
        kl_groups: None,
        neg_bound,
    }
}
