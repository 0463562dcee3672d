//! The Gaussian posterior head: `q(z|x) = N(μ, diag σ²)` with `μ` and `log σ²` linear
//! in the features.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::distributions::DiagNormal;
use crate::error::ensure_nonzero;
use crate::kernels;
use crate::kernels::Run;
use crate::traits::PosteriorHead;

/// Two linear maps from features to the mean and log-variance of a diagonal Normal
/// posterior `q(z | x) = N(μ(h), diag(exp(log_var(h))))`.
#[derive(Module, Debug)]
pub struct GaussianHead {
    /// Features → `μ`.
    pub mean: Linear,
    /// Features → `log σ²`.
    pub log_var: Linear,
}

impl GaussianHead {
    /// A head reading `d_features` and giving `latent_dim`-dimensional posteriors
    /// (PyTorch's default initialisation).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for a zero size.
    pub fn new(d_features: usize, latent_dim: usize, device: &Device) -> crate::Result<Self> {
        ensure_nonzero("d_features", d_features)?;
        ensure_nonzero("latent_dim", latent_dim)?;
        Ok(Self {
            mean: LinearConfig::new(d_features, latent_dim).init(device),
            log_var: LinearConfig::new(d_features, latent_dim).init(device),
        })
    }
}

impl PosteriorHead for GaussianHead {
    type Posterior = DiagNormal<2>;

    fn d_input(&self) -> usize {
        self.mean.weight.dims()[0]
    }

    /// Both maps as one product `features · [W_μ | W_logσ²] + [b_μ | b_logσ²]`, split after:
    /// the features are read once, and their gradient is one product instead of two
    /// products and a sum.
    ///
    /// # Shapes
    /// - `features`: `[batch, d_input]`
    /// - output: `[batch, latent_dim]`
    fn posterior(&self, features: Tensor<2>) -> DiagNormal<2> {
        let (mean, log_var) = match (&self.mean.bias, &self.log_var.bias) {
            (Some(b_mean), Some(b_log_var)) => {
                let weight =
                    Tensor::cat(vec![self.mean.weight.val(), self.log_var.weight.val()], 1);
                let bias = Tensor::cat(vec![b_mean.val(), b_log_var.val()], 0);
                let both = kernels::affine(features, weight, Some(bias));
                let d = self.mean.weight.dims()[1];
                (both.clone().narrow(1, 0, d), both.narrow(1, d, d))
            }
            _ => (self.mean.run(features.clone()), self.log_var.run(features)),
        };
        DiagNormal::new(mean, log_var).expect("both heads have the latent width")
    }
}
