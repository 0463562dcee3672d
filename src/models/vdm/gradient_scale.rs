//! An identity whose backward pass multiplies the gradient by per-row factors that are set
//! after the forward pass: how a learned noise schedule gets the gradient of the squared
//! diffusion loss while the denoiser gets the gradient of the loss itself.
//!
//! # Formula
//! ```text
//! forward:   y = x                       backward:   ∂/∂x = c ⊙ ∂/∂y
//! ```
//! Put on every path from the schedule's parameters `η` into the per-example diffusion
//! loss `L_i` (its `γ(t_i)` and `γ'(t_i)`), with `c_i = 2 L_i` set once `L_i` is known, the
//! backward pass gives `η` the gradient `Σ_i 2 L_i ∂L_i/∂η = ∂/∂η Σ_i L_i²` — the variance
//! of the estimator up to its mean, which for a fixed pair of endpoints does not depend on
//! the schedule's shape (VDM eq. 20) — and the denoiser, whose parameters do not pass
//! through it, the gradient of `L` itself.
//!
//! It works on burn's autodiff tensors on flex and the CubeCL backends (wgpu, CUDA); on a
//! device without autodiff it is the identity, as there is no backward pass.

use std::sync::{Arc, Mutex};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, TensorMetadata};
use burn::tensor::{Tensor, TensorData};

use crate::error::Error;

/// The factors shared by the identities of one [`GradientScale`], set after the forward
/// pass.
type Factors = Arc<Mutex<Option<Vec<f32>>>>;

/// Identities on `[batch]` tensors whose gradients are all scaled by the same per-row
/// factors, given later with [`set`](Self::set).
#[derive(Clone, Debug, Default)]
pub struct GradientScale {
    factors: Factors,
}

impl GradientScale {
    /// No factors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `x` unchanged; its gradient will be multiplied by the factors (`x` is `[batch]`).
    pub fn apply(&self, x: Tensor<1>) -> Tensor<1> {
        #[cfg(feature = "flex")]
        if let Ok(primitive) = x
            .clone()
            .try_into_primitive::<Autodiff<burn::backend::Flex>>()
        {
            return Tensor::from_primitive::<Autodiff<burn::backend::Flex>>(self.record(primitive));
        }
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        if let Ok(primitive) = x
            .clone()
            .try_into_primitive::<Autodiff<burn::backend::Cube>>()
        {
            return Tensor::from_primitive::<Autodiff<burn::backend::Cube>>(self.record(primitive));
        }
        x
    }

    /// The factors `c` (`[batch]`, read to the host; detached from any graph).
    ///
    /// # Errors
    /// [`Error::NonFinite`] if a factor is not finite.
    pub fn set(&self, factors: &Tensor<1>) -> crate::Result<()> {
        let values: Vec<f32> = factors
            .clone()
            .detach()
            .try_into_vec_as::<f32>()
            .map_err(|e| Error::NonFinite {
                context: "reading gradient factors back from the device".into(),
                hint: format!("{e:?}"),
            })?;
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                context: format!("a gradient factor of the noise schedule ({v})"),
                hint: "the diffusion loss diverged; lower the learning rate".into(),
            });
        }
        *self.factors.lock().unwrap_or_else(|e| e.into_inner()) = Some(values);
        Ok(())
    }

    fn record<B: Backend>(&self, x: FloatTensor<Autodiff<B>>) -> FloatTensor<Autodiff<B>> {
        let y = x.primitive().clone();
        match ScaleBackward
            .prepare::<NoCheckpointing>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(self.factors.clone(), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

/// The autodiff node of [`GradientScale::apply`]; its state is the shared factors.
#[derive(Debug)]
struct ScaleBackward;

impl<B: Backend> Backward<B, 1> for ScaleBackward {
    type State = Factors;

    fn backward(self, ops: Ops<Factors, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let Some(node) = node else { return };
        let factors = ops.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // Unset factors leave the gradient as it is (an identity that was never scaled).
        let grad = match factors {
            Some(values) => {
                let n = values.len();
                let scale = B::float_from_data(TensorData::new(values, [n]), &grad.device());
                B::float_mul(grad, scale)
            }
            None => grad,
        };
        grads.register::<B>(node.id, grad);
    }
}
