//! Classifier-free guidance (Ho & Salimans 2022): a denoiser that takes a class label, and
//! the guided combination of its conditional and unconditional predictions as a plain
//! [`Denoiser`], so every sampler and bound of [`Ddpm`](super::Ddpm) runs conditioned.

use burn::tensor::{Int, Tensor};

use super::model::Denoiser;
use crate::nn::UNet;

/// A [`Denoiser`] that can be conditioned on a class label.
pub trait ConditionalDenoiser {
    /// `x_t`: `[batch, C, H, W]`; `t`: `[batch]`; `labels`: `[batch]` classes, or `None`
    /// for "no condition" (the null label classifier-free guidance trains with).
    ///
    /// # Errors
    /// Whatever the network reports for shapes or labels it cannot take.
    fn predict_with_label(
        &self,
        x_t: Tensor<4>,
        t: Tensor<1>,
        labels: Option<&Tensor<1, Int>>,
    ) -> crate::Result<Tensor<4>>;

    /// The number of classes it takes (labels in `0..num_classes`), and `num_classes`
    /// itself is accepted as the null label.
    fn num_classes(&self) -> usize;
}

impl ConditionalDenoiser for UNet {
    fn predict_with_label(
        &self,
        x_t: Tensor<4>,
        t: Tensor<1>,
        labels: Option<&Tensor<1, Int>>,
    ) -> crate::Result<Tensor<4>> {
        self.forward_with_label(x_t, t, labels)
    }

    fn num_classes(&self) -> usize {
        UNet::num_classes(self)
    }
}

/// A conditional network with fixed labels and guidance weight `w`, as a [`Denoiser`].
///
/// # Formula
/// ```text
/// ε̃(x_t, t) = (1 + w) · ε_θ(x_t, t, y) − w · ε_θ(x_t, t, ∅)      (Ho & Salimans 2022, eq. 6)
/// ```
/// `w = 0` is the plain conditional model (one network pass); `w > 0` sharpens samples
/// toward the class at some cost in diversity (two passes). The same linear combination
/// applies to x₀- and v-predictions. Row `i` of every batch it sees is labelled `labels[i]`,
/// so the batch must have as many rows as there are labels.
#[derive(Debug)]
pub struct Guided<'a, N> {
    /// The conditional network.
    pub net: &'a N,
    /// The label of each row, `[batch]`.
    pub labels: Tensor<1, Int>,
    /// The guidance weight `w ≥ 0`.
    pub guidance: f64,
}

impl<N: ConditionalDenoiser> Denoiser for Guided<'_, N> {
    fn predict(&self, x_t: Tensor<4>, t: Tensor<1>) -> crate::Result<Tensor<4>> {
        let conditional =
            self.net
                .predict_with_label(x_t.clone(), t.clone(), Some(&self.labels))?;
        if self.guidance == 0.0 {
            return Ok(conditional);
        }
        let unconditional = self.net.predict_with_label(x_t, t, None)?;
        Ok(conditional.mul_scalar(1.0 + self.guidance) - unconditional.mul_scalar(self.guidance))
    }
}
