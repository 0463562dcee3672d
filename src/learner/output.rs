//! [`ElboOutput`]: what a training or validation step reports to burn-train's metrics.

use burn::tensor::{Device, ExecutionError, Tensor};
use burn::train::ItemLazy;
use burn::train::metric::{Adaptor, LossInput};

use super::metric::ElboFigures;

/// One step's figures, read back to the host once by the step.
///
/// burn's `LossMetric` takes the objective through `Adaptor<LossInput>` (a `[batch]` tensor
/// holding the batch mean, so burn's epoch mean weights batches by their size, as
/// [`fit`](crate::train::fit) does); [`ElboMetric`](super::ElboMetric) takes the rest
/// through `Adaptor<ElboFigures>`.
pub struct ElboOutput {
    /// The objective's value, repeated over the batch: `[batch]`, not differentiable.
    pub loss: Tensor<1>,
    /// The figures, per example, averaged over the batch.
    pub figures: ElboFigures,
}

impl ElboOutput {
    /// From `[loss, −bound, KL]` and the KL per group (top first), for `batch_size`
    /// examples; `loss` is made on `device` without autodiff.
    pub(crate) fn from_values(
        values: &[f64],
        kl_groups: &[f64],
        batch_size: usize,
        device: &Device,
    ) -> Self {
        let batch_size = batch_size.max(1);
        let loss = vec![values[0] as f32; batch_size];
        Self {
            loss: Tensor::from_floats(loss.as_slice(), &device.clone().inner()),
            figures: ElboFigures {
                neg_elbo: values[1],
                kl: values[2],
                reconstruction: values[1] - values[2],
                kl_groups: kl_groups.to_vec(),
                batch_size,
            },
        }
    }
}

impl Adaptor<LossInput> for ElboOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

impl Adaptor<ElboFigures> for ElboOutput {
    fn adapt(&self) -> ElboFigures {
        self.figures.clone()
    }
}

impl ItemLazy for ElboOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        Ok(self)
    }
}
