//! The seams of the crate: distributions, the four roles (encoder, decoder, prior,
//! posterior) and what the shared objective needs from any model.
//!
//! Every per-example quantity has shape `[batch]`; a batch of distributions describes one
//! example per row.

use burn::tensor::{Device, Int, Tensor};

use crate::Result;
use crate::terms::{ElboTerms, PathLogWeights};

/// A value that holds a batch of examples along its first dimension.
///
/// The estimators draw `k` samples per example by tiling a batch: [`repeat_rows`](Batch::repeat_rows)
/// with `k` turns rows `[x_0, .., x_{B-1}]` into `[x_0, .., x_{B-1}, x_0, .., x_{B-1}, ..]`
/// (`k` copies, row `j·B + i` is example `i`).
pub trait Batch: Clone {
    /// Number of examples (the size of the first dimension).
    fn batch_size(&self) -> usize;
    /// `k` copies of the whole batch stacked along the first dimension.
    fn repeat_rows(&self, k: usize) -> Self;
    /// Rows `start..start + len`.
    fn narrow_rows(&self, start: usize, len: usize) -> Self;
    /// The rows at `indices` (repeats allowed), in that order.
    fn select_rows(&self, indices: Tensor<1, Int>) -> Self;
    /// The device the batch lives on.
    fn device(&self) -> Device;
    /// The same values cut from the autodiff graph (integer data are returned as they are).
    fn detach(&self) -> Self;
}

impl<const D: usize> Batch for Tensor<D> {
    fn batch_size(&self) -> usize {
        self.dims()[0]
    }

    fn repeat_rows(&self, k: usize) -> Self {
        if k == 1 {
            self.clone()
        } else {
            self.clone().repeat_dim(0, k)
        }
    }

    fn narrow_rows(&self, start: usize, len: usize) -> Self {
        self.clone().narrow(0, start, len)
    }

    fn select_rows(&self, indices: Tensor<1, Int>) -> Self {
        self.clone().select(0, indices)
    }

    fn device(&self) -> Device {
        Tensor::device(self)
    }

    fn detach(&self) -> Self {
        self.clone().detach()
    }
}

/// A batch of probability distributions; row `i` describes example `i`.
pub trait Distribution: Sized {
    /// What a draw looks like: a batch of values, one row per example.
    type Value: Batch;

    /// `log p(value)` per row, summed over the event dims: shape `[batch]`.
    fn log_prob(&self, value: &Self::Value) -> Tensor<1>;

    /// One draw per row. Reparameterised (differentiable in the parameters) where the
    /// family allows; a thin wrapper over a deterministic `*_with_noise` core.
    fn sample(&self) -> Self::Value;

    /// One draw per row for a gradient estimator: the draw, and for a family whose
    /// reparameterisation goes through an accept–reject step, `ln π(ε; θ)` per row — the
    /// log-density (up to a constant) of the noise the sampler accepted, differentiable in
    /// the parameters θ. The gradient of `E_q[f(z)]` then has a second term,
    /// `g_cor = E[f · ∇_θ ln π(ε; θ)]` (Naesseth et al. 2017), which
    /// [`rejection_corrected`](crate::objective::rejection_corrected) attaches to `f`.
    /// The default, for plain reparameterisations, is `(self.sample(), None)`.
    fn sample_for_gradient(&self) -> (Self::Value, Option<Tensor<1>>) {
        (self.sample(), None)
    }

    /// The mean of each row's distribution.
    fn mean(&self) -> Self::Value;

    /// Number of rows.
    fn batch_size(&self) -> usize;

    /// The same distributions tiled `k` times along the batch, as [`Batch::repeat_rows`].
    fn repeat_rows(&self, k: usize) -> Self;
}

/// An approximate posterior `q(z | x)`: a distribution over latents, one row per example.
pub trait Posterior: Distribution {
    /// The most probable latent of each row: what reconstructions and interpolations use.
    fn mode(&self) -> Self::Value;

    /// The same distributions with their parameters cut from the graph (`q_{⊥φ}`): its
    /// `log_prob` is differentiable in the value only. The path-derivative estimators (STL,
    /// DReG) score the draws with it.
    fn detach(&self) -> Self;
}

/// A prior `p(z)` over latents: one distribution shared by every example.
pub trait Prior {
    /// A batch of latents.
    type Value: Batch;

    /// `log p(z)` per row: shape `[batch]`.
    fn log_prob(&self, z: &Self::Value) -> Tensor<1>;

    /// `n` independent draws.
    fn sample(&self, n: usize, device: &Device) -> Self::Value;
}

/// A closed-form KL divergence `KL(self ‖ other)` per row: shape `[batch]`.
pub trait KlDivergence<Other> {
    /// `KL(self ‖ other)` for each row, in nats.
    fn kl(&self, other: &Other) -> Tensor<1>;
}

/// The inference network: maps a batch of data to a posterior `q(z | x)`.
pub trait Encoder {
    /// A batch of data.
    type Input: Batch;
    /// The posterior family it outputs.
    type Posterior: Posterior;

    /// `q(z | x)` for each row of `x`.
    ///
    /// # Shapes
    /// - `x`: a batch of `batch` examples (`[batch, d]` for flat data)
    /// - output: a posterior with `batch` rows
    fn encode(&self, x: &Self::Input) -> Self::Posterior;

    /// Checks that `x` has the shape this encoder was built for.
    fn check_input(&self, x: &Self::Input) -> Result<()>;
}

/// The last layer of an encoder: maps features `[batch, d_input]` to a posterior.
///
/// Encoders are a trunk (an MLP, a recurrent network, ...) followed by a head, so every
/// head (Gaussian, batch-normalised Gaussian, vMF, ...) works with every trunk.
pub trait PosteriorHead {
    /// The posterior family it outputs.
    type Posterior: Posterior;

    /// The width of the features it reads.
    fn d_input(&self) -> usize;

    /// `q(z | x)` from the trunk's features of each row of `x`.
    ///
    /// # Shapes
    /// - `features`: `[batch, d_input]`
    /// - output: a posterior with `batch` rows
    fn posterior(&self, features: Tensor<2>) -> Self::Posterior;
}

/// The generative network: maps a batch of latents to a likelihood `p(x | z)`.
pub trait Decoder {
    /// A batch of latents.
    type Latent: Batch;
    /// The likelihood family it outputs.
    type Likelihood: Distribution;

    /// `p(x | z)` for each row of `z`.
    ///
    /// # Shapes
    /// - `z`: `batch` latents (`[batch, latent_dim]` for flat latents)
    /// - output: a likelihood with `batch` rows
    fn decode(&self, z: &Self::Latent) -> Self::Likelihood;
}

/// What the shared objective and estimators need from any latent-variable model.
///
/// Implemented by the generic [`Vae`](crate::models::Vae) (and so by every variant built
/// from it), and by the hierarchical and diffusion models, so that
/// [`log_likelihood`](crate::objective::log_likelihood),
/// [`iwae_bound`](crate::objective::iwae_bound) and
/// [`elbo_estimate`](crate::objective::elbo_estimate) work on all of them unchanged.
pub trait LatentVariableModel {
    /// A batch of data.
    type Input: Batch;

    /// Per-example ELBO terms from one posterior sample: the reconstruction
    /// `log p(x | z)` and one KL term per latent group.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if `x` does not fit the model.
    fn elbo(&self, x: &Self::Input) -> Result<ElboTerms>;

    /// `log w_j = log p(x, z_j) − log q(z_j | x)` for `k` independent `z_j ~ q(z | x)`:
    /// shape `[batch, k]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if `x` does not fit the model,
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) if `k == 0`.
    fn log_importance_weights(&self, x: &Self::Input, k: usize) -> Result<Tensor<2>>;

    /// The log weights of `k` draws per example computed `chunk` draws at a time, each
    /// chunk handed to `visit` as a `[batch, s]` tensor (`s ≤ chunk`, the `s` summing to
    /// `k`): what [`log_likelihood`](crate::objective::log_likelihood) calls. The default
    /// calls [`log_importance_weights`](Self::log_importance_weights) once per chunk; a
    /// model whose encoder is costly and deterministic overrides it to run the encoder
    /// once per batch ([`Nvae`](crate::models::nvae::Nvae) runs its bottom-up tower once).
    ///
    /// # Errors
    /// As [`log_importance_weights`](Self::log_importance_weights), `chunk == 0`, and
    /// whatever `visit` returns.
    fn visit_log_importance_weights(
        &self,
        x: &Self::Input,
        k: usize,
        chunk: usize,
        visit: &mut dyn FnMut(Tensor<2>) -> Result<()>,
    ) -> Result<()> {
        crate::error::ensure_samples(k)?;
        crate::error::ensure_nonzero("sample_chunk", chunk)?;
        let mut done = 0;
        while done < k {
            let s = chunk.min(k - done);
            visit(self.log_importance_weights(x, s)?)?;
            done += s;
        }
        Ok(())
    }

    /// A regulariser added to the training loss (not to the bound), shape `[1]`: NVAE's
    /// spectral and batch-norm penalties. `None` (the default) for models without one.
    fn penalty(&self) -> Option<Tensor<1>> {
        None
    }

    /// The model's own training loss (shape `[1]`) for
    /// [`Objective::ModelLoss`](crate::objective::Objective::ModelLoss), when it trains on
    /// something other than the ELBO (DDPM's `L_simple`). `None` (the default) for models
    /// that do not have one.
    fn training_loss(&self, x: &Self::Input) -> Option<Result<Tensor<1>>> {
        let _ = x;
        None
    }

    /// The log weights of `k` draws per example for the path-derivative estimators
    /// ([`Objective::Stl`](crate::objective::Objective::Stl),
    /// [`Objective::Dreg`](crate::objective::Objective::Dreg)): `log q` scored with the
    /// posterior's parameters stopped, and, if `with_log_joint_stopped`, `log p(x, z)` at the
    /// same draws with `z` stopped (see [`PathLogWeights`]). `None` (the default) for a
    /// model that does not provide them; [`Vae`](crate::models::Vae) does.
    fn path_log_weights(
        &self,
        x: &Self::Input,
        k: usize,
        with_log_joint_stopped: bool,
    ) -> Option<Result<PathLogWeights>> {
        let _ = (x, k, with_log_joint_stopped);
        None
    }
}
