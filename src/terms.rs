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
