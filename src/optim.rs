//! Adam and AdamW as one fused pass per parameter: the optimizer of the fit loop.
//!
//! burn's `Adam` and `AdamW` update a parameter with about a dozen element-wise tensor
//! operations, each reading and writing a parameter-sized buffer; on the 784-400-20 MLP
//! VAE that was a quarter of a training step on 2 cores. [`FusedAdam`] computes the same
//! update in one pass over the parameter, its two moments and its gradient, in place where
//! the buffers are not shared (on flex; elsewhere, such as wgpu, it composes the same
//! formula from tensor operations). Its state is burn's [`AdamState`], so optimizer
//! records and checkpoints have burn's layout.
//!
//! # Formula
//! Kingma & Ba 2015, algorithm 1, with decoupled weight decay λ (Loshchilov & Hutter
//! 2019, algorithm 2), at step `t` with learning rate `η` and gradient `g`:
//! ```text
//! m ← β₁ m + (1 − β₁) g
//! v ← β₂ v + (1 − β₂) g²
//! θ ← (1 − η λ) θ − η m̂ / (√v̂ + ε),   m̂ = m / (1 − β₁ᵗ),   v̂ = v / (1 − β₂ᵗ)
//!   = (1 − η λ) θ − s m / (√v + ε'),   s = η √(1 − β₂ᵗ) / (1 − β₁ᵗ),   ε' = ε √(1 − β₂ᵗ)
//! ```
//! The last line is the form computed (and burn's): the bias corrections fold into two
//! scalars, leaving one square root and one division per value.
//!
//! ```
//! use burn::module::Module;
//! use burn::nn::LinearConfig;
//! use burn::optim::GradientsParams;
//! use burn::tensor::Tensor;
//! use elbo::optim::FusedAdamConfig;
//!
//! # fn main() -> elbo::Result<()> {
//! let device = elbo::device::default_device().autodiff();
//! let mut linear = LinearConfig::new(4, 2).init(&device);
//! let mut optimizer = FusedAdamConfig::new().init()?;
//! let x = Tensor::<2>::ones([8, 4], &device);
//! for _ in 0..3 {
//!     let loss = linear.forward(x.clone()).powf_scalar(2.0).mean();
//!     let grads = GradientsParams::from_grads(loss.backward(), &linear);
//!     linear = optimizer.step(1e-2, linear, grads);
//! }
//! # Ok(())
//! # }
//! ```

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};

use crate::error::{Error, ensure_non_negative, ensure_positive};

/// Configuration of [`FusedAdam`]: PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8), no
/// weight decay (Adam); a positive `weight_decay` makes it AdamW.
#[derive(Config, Debug)]
pub struct FusedAdamConfig {
    /// β₁: the decay of the first-moment average, in [0, 1).
    #[config(default = 0.9)]
    pub beta_1: f32,
    /// β₂: the decay of the second-moment average, in [0, 1).
    #[config(default = 0.999)]
    pub beta_2: f32,
    /// ε: added to √v̂ in the denominator, > 0.
    #[config(default = 1e-8)]
    pub epsilon: f32,
    /// λ: decoupled weight decay (AdamW), ≥ 0; 0 is Adam.
    #[config(default = 0.0)]
    pub weight_decay: f32,
    /// Gradient clipping applied before the update (by burn's `ModuleOptimizer`).
    pub grad_clipping: Option<GradientClippingConfig>,
}

impl FusedAdamConfig {
    /// Checks the hyper-parameters (NaN-proof).
    pub fn validate(&self) -> crate::Result<()> {
        for (field, beta) in [("beta_1", self.beta_1), ("beta_2", self.beta_2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(Error::config(field, beta, "a number in [0, 1)"));
            }
        }
        ensure_positive("epsilon", self.epsilon as f64)?;
        ensure_non_negative("weight_decay", self.weight_decay as f64)
    }

    /// The optimizer of one parameter tensor.
    pub fn build(&self) -> crate::Result<FusedAdam> {
        self.validate()?;
        Ok(FusedAdam {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
        })
    }

    /// The optimizer of a whole module, with the configured gradient clipping.
    pub fn init(&self) -> crate::Result<ModuleOptimizer> {
        let mut optimizer = ModuleOptimizer::from(self.build()?);
        if let Some(clipping) = &self.grad_clipping {
            optimizer = optimizer.with_grad_clipping(clipping.init());
        }
        Ok(optimizer)
    }
}

/// Adam / AdamW with the update of each parameter in one pass (see the module docs).
#[derive(Clone, Debug)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
}

/// The scalars of one update, from the hyper-parameters, the learning rate and the step
/// number (the module docs' last line).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AdamStep {
    pub beta_1: f32,
    pub beta_2: f32,
    /// `1 − η λ`: the decoupled weight decay's factor (1 without decay).
    pub decay: f32,
    /// `s = η √(1 − β₂ᵗ) / (1 − β₁ᵗ)`.
    pub step_size: f32,
    /// `ε' = ε √(1 − β₂ᵗ)`.
    pub epsilon: f32,
}

impl FusedAdam {
    /// The scalars of step `t` (1-based) at learning rate `lr`, in f64 then rounded once.
    pub(crate) fn step_scalars(&self, lr: LearningRate, t: usize) -> AdamStep {
        let t = t.min(i32::MAX as usize) as i32;
        let bias_1 = 1.0 - (self.beta_1 as f64).powi(t);
        let bias_2_sqrt = (1.0 - (self.beta_2 as f64).powi(t)).sqrt();
        AdamStep {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            decay: (1.0 - lr * self.weight_decay as f64) as f32,
            step_size: (lr * bias_2_sqrt / bias_1) as f32,
            epsilon: (self.epsilon as f64 * bias_2_sqrt) as f32,
        }
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (t, moments) = match state {
            Some(state) => {
                let momentum = state.momentum;
                (
                    momentum.time + 1,
                    Some((momentum.moment_1, momentum.moment_2)),
                )
            }
            None => (1, None),
        };
        let scalars = self.step_scalars(lr, t);
        let (tensor, m, v) = crate::kernels::adam_update(&scalars, tensor, grad, moments);
        let state = AdamState::new(AdaptiveMomentumState::new(t, m, v));
        (tensor, Some(state))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

/// The update of the module docs from tensor operations: the fallback off flex.
pub(crate) fn adam_update_composed<const D: usize>(
    s: &AdamStep,
    theta: Tensor<D>,
    grad: Tensor<D>,
    moments: Option<(Tensor<D>, Tensor<D>)>,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (c1, c2) = (1.0 - s.beta_1, 1.0 - s.beta_2);
    let (m, v) = match moments {
        Some((m, v)) => (
            m.mul_scalar(s.beta_1) + grad.clone().mul_scalar(c1),
            v.mul_scalar(s.beta_2) + grad.square().mul_scalar(c2),
        ),
        None => (grad.clone().mul_scalar(c1), grad.square().mul_scalar(c2)),
    };
    let update = m
        .clone()
        .mul_scalar(s.step_size)
        .div(v.clone().sqrt().add_scalar(s.epsilon));
    (theta.mul_scalar(s.decay) - update, m, v)
}
