//! What every latent-variable model returns from [`elbo`](crate::LatentVariableModel::elbo)
//! and every objective and estimator reads: the ELBO's per-example terms.

use burn::tensor::Tensor;

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
    /// Latent dimensions of each group (used by KL balancing); empty when the model does
    /// not say, in which case groups count as equal.
    pub group_dims: Vec<usize>,
}

impl ElboTerms {
    /// Terms of a model with the given KL groups, group sizes unknown.
    pub fn new(reconstruction: Tensor<1>, kl: Vec<Tensor<1>>) -> Self {
        Self {
            reconstruction,
            kl,
            group_dims: Vec::new(),
        }
    }

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

/// What the path-derivative estimators (STL, Roeder et al. 2017; DReG, Tucker et al. 2019)
/// need from a model: `k` draws per example scored so that the encoder's gradient reaches
/// them only through the draws. Row `i`, column `j` is draw `j` of example `i`.
///
/// # Formula
/// ```text
/// log_w[i, j]          = log p(x_i, z_ij) − log q_{⊥φ}(z_ij | x_i),   z_ij = g_φ(ε_ij, x_i)
/// log_joint_stopped[i, j] = log p(x_i, ⊥z_ij)
/// ```
/// `⊥` stops the gradient: `q_{⊥φ}` is the posterior with its parameters cut from the graph
/// ([`Posterior::detach`](crate::Posterior::detach)), so `log_w` is differentiable in the
/// encoder's parameters φ only through `z`, and in the decoder's θ directly;
/// `log_joint_stopped` is differentiable in θ (decoder and prior) only. Both have the values
/// of the ordinary terms at the same draws.
#[derive(Clone, Debug)]
pub struct PathLogWeights {
    /// `[batch, k]` log weights with the posterior's parameters stopped in `log q`.
    pub log_w: Tensor<2>,
    /// `[batch, k]` `log p(x, z)` at the same draws with `z` stopped; `None` when the
    /// caller did not ask for it.
    pub log_joint_stopped: Option<Tensor<2>>,
}
