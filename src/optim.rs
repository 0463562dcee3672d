//! Adam and AdamW as one fused pass per parameter: the optimizer of the fit loop.
//!
//! burn's `Adam` and `AdamW` update a parameter with about a dozen element-wise tensor
//! operations, each reading and writing a parameter-sized buffer; on the 784-400-20 MLP
//! VAE that was a quarter of a training step on 2 cores. [`FusedAdam`] computes the same
//! update in one pass over the parameter, its two moments and its gradient, in place where
//! the buffers are not shared (on flex; elsewhere, such as wgpu, it composes the same
//! formula from tensor operations); the update itself is
//! [`flex_kernels::adam`]. Its state is burn's [`AdamState`], so optimizer records and
//! checkpoints have burn's layout.
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

use flex_kernels::adam::{AdamStep, adam_update};

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
        let scalars = AdamStep::new(
            self.beta_1,
            self.beta_2,
            self.epsilon,
            self.weight_decay,
            lr,
            t,
        );
        let (tensor, m, v) = adam_update(&scalars, tensor, grad, moments);
        let state = AdamState::new(AdaptiveMomentumState::new(t, m, v));
        (tensor, Some(state))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}
