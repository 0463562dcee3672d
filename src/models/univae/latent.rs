//! One of UniVAE's latent layers: the encoder's first position turned into a spherical
//! latent and back.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::distributions::VonMisesFisher;
use crate::distributions::normalize;
use crate::kernels::Run;

/// The latent of one top layer: the first encoder position's state `h₀` is mapped down to
/// a direction on `S^{d−1}`, a von Mises–Fisher draw with the model's fixed `κ` is taken
/// around it, and the draw is mapped back to the model width, replacing `h₀`.
///
/// # Formula
/// ```text
/// μ = W_down h₀ / ‖W_down h₀‖,   z ~ vMF(μ, κ) on S^{d−1},   h₀ ← W_up z + b_up
/// ```
#[derive(Module, Debug)]
pub struct LatentSlot {
    /// `h₀ → R^d`, normalised to the mean direction `μ`.
    pub down: Linear,
    /// `z ∈ S^{d−1} → R^{d_model}`: the state that replaces `h₀`.
    pub up: Linear,
}

impl LatentSlot {
    /// A slot between width `d_model` and the sphere `S^{latent_dim − 1}`.
    pub fn new(d_model: usize, latent_dim: usize, device: &Device) -> Self {
        Self {
            down: LinearConfig::new(d_model, latent_dim).init(device),
            up: LinearConfig::new(latent_dim, d_model).init(device),
        }
    }

    /// The posterior `q(z | x) = vMF(μ(h₀), κ)` for each row of `h0` (`[batch, d_model]`).
    ///
    /// # Shapes
    /// - `h0`: `[batch, d_model]`
    /// - output: `[batch, latent_dim]`
    pub fn posterior(&self, h0: Tensor<2>, kappa: f64) -> VonMisesFisher {
        let mu = normalize(self.down.run(h0));
        let batch = mu.dims()[0];
        let kappa = Tensor::full([batch], kappa, &mu.device());
        VonMisesFisher::from_unit_unchecked(mu, kappa)
    }

    /// The state that replaces `h₀` for latent directions `z` (`[batch, latent_dim]`).
    pub fn state(&self, z: Tensor<2>) -> Tensor<2> {
        self.up.run(z)
    }
}
