//! NVAE's residual cells (Vahdat & Kautz 2020, Fig. 3) and squeeze-and-excitation.
//!
//! Every convolution is a [`SpectralConv2d`] so the model can regularise the largest
//! singular value of each weight; every cell exposes its convolutions and batch norms for
//! that purpose.

use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, activation};

use crate::kernels;
use crate::kernels::Run;
use crate::nn::SpectralConv2d;

/// The residual branch is scaled by this before it is added to the skip (NVAE's cells do
/// the same), so a freshly initialised deep tower starts close to the identity.
const RESIDUAL_SCALE: f64 = 0.1;

/// Batch-norm momentum of NVAE's cells.
pub(crate) const BN_MOMENTUM: f64 = 0.05;

pub(crate) fn batch_norm(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels)
        .with_momentum(BN_MOMENTUM)
        .init(device)
}

/// A `k×k` convolution with `same` padding (odd `k`), stride 1.
pub(crate) fn conv(c_in: usize, c_out: usize, k: usize, device: &Device) -> SpectralConv2d {
    SpectralConv2d::new(
        &Conv2dConfig::new([c_in, c_out], [k, k]).with_padding(PaddingConfig2d::Explicit(
            k / 2,
            k / 2,
            k / 2,
            k / 2,
        )),
        device,
    )
}

/// Squeeze-and-excitation (Hu et al. 2018): `x · sigmoid(W₂ relu(W₁ mean_hw(x)))`.
#[derive(Module, Debug)]
pub struct SqueezeExcitation {
    squeeze: Linear,
    excite: Linear,
}

impl SqueezeExcitation {
    /// Hidden width `max(c/16, 4)`, as in NVAE.
    pub fn new(channels: usize, device: &Device) -> Self {
        let hidden = (channels / 16).max(4);
        Self {
            squeeze: LinearConfig::new(channels, hidden).init(device),
            excite: LinearConfig::new(hidden, channels).init(device),
        }
    }

    /// Rescales each channel of `x` by a gate computed from its spatial mean.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, height, width]`
    /// - output: the same
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let gate = self.gate(&x);
        x * gate
    }

    /// The gate `sigmoid(W₂ relu(W₁ mean_hw(x)))`, shape `[batch, channels, 1, 1]`.
    pub fn gate(&self, x: &Tensor<4>) -> Tensor<4> {
        let [b, c, _, _] = x.dims();
        let pooled = x.clone().mean_dim(3).mean_dim(2).reshape([b, c]);
        let gate = activation::sigmoid(self.excite.run(activation::relu(self.squeeze.run(pooled))));
        gate.reshape([b, c, 1, 1])
    }

    /// `skip + scale · forward(x)`, with `scale` applied to the gate (`[batch, channels,
    /// 1, 1]`) rather than to the gated map: one pass over the map fewer.
    pub fn scaled_residual(&self, skip: Tensor<4>, x: Tensor<4>, scale: f64) -> Tensor<4> {
        let gate = self.gate(&x).mul_scalar(scale);
        skip + x * gate
    }
}

/// Bottom-up (encoder) residual cell:
/// `x ↦ skip(x) + 0.1·SE(Conv3×3(Swish(BN(Conv3×3(Swish(BN(x)))))))`.
///
/// A downsampling cell halves height and width (its first convolution has stride 2 and the
/// skip is a 2×2 stride-2 convolution) and may change the channel count.
#[derive(Module, Debug)]
pub struct EncoderCell {
    bn1: BatchNorm,
    conv1: SpectralConv2d,
    bn2: BatchNorm,
    conv2: SpectralConv2d,
    se: SqueezeExcitation,
    skip: Option<SpectralConv2d>,
}

impl EncoderCell {
    /// A cell from `c_in` to `c_out` channels; `downsample` halves the spatial size.
    pub fn new(c_in: usize, c_out: usize, downsample: bool, device: &Device) -> Self {
        let conv1 = if downsample {
            SpectralConv2d::new(
                &Conv2dConfig::new([c_in, c_out], [3, 3])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
                device,
            )
        } else {
            conv(c_in, c_out, 3, device)
        };
        let skip = if downsample {
            Some(SpectralConv2d::new(
                &Conv2dConfig::new([c_in, c_out], [2, 2]).with_stride([2, 2]),
                device,
            ))
        } else if c_in != c_out {
            Some(conv(c_in, c_out, 1, device))
        } else {
            None
        };
        Self {
            bn1: batch_norm(c_in, device),
            conv1,
            bn2: batch_norm(c_out, device),
            conv2: conv(c_out, c_out, 3, device),
            se: SqueezeExcitation::new(c_out, device),
            skip,
        }
    }

    /// `[b, c_in, h, w] → [b, c_out, h', w']`.
    ///
    /// # Shapes
    /// - `x`: `[batch, c_in, height, width]`
    /// - output: `[batch, c_out, height_out, width_out]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self
            .conv1
            .forward(kernels::batch_norm_silu(&self.bn1, x.clone()));
        let y = self.conv2.forward(kernels::batch_norm_silu(&self.bn2, y));
        let skip = match &self.skip {
            Some(skip) => skip.forward(x),
            None => x,
        };
        self.se.scaled_residual(skip, y, RESIDUAL_SCALE)
    }

    pub(crate) fn convs(&self) -> Vec<&SpectralConv2d> {
        let mut convs = vec![&self.conv1, &self.conv2];
        convs.extend(self.skip.as_ref());
        convs
    }

    pub(crate) fn batch_norms(&self) -> Vec<&BatchNorm> {
        vec![&self.bn1, &self.bn2]
    }
}

/// Top-down (generative) residual cell:
/// `x ↦ skip(x) + 0.1·SE(BN(Conv1×1(Swish(BN(DWConv5×5(Swish(BN(Conv1×1_expand(BN(x))))))))))`.
///
/// The 1×1 convolution expands the channels by `expansion` before the depthwise 5×5
/// convolution (one filter per channel). An upsampling cell first doubles height and width
/// (nearest neighbour); its skip is a 1×1 convolution to the new channel count.
///
/// An upsampling cell computes the same function with its pixel-wise layers (the first two
/// batch norms, the expanding convolution and its SiLU, the skip convolution) before the
/// upsampling, where they cost a quarter: they act on each pixel alone, and a map
/// repeated into 2×2 blocks has the batch statistics of the map itself.
#[derive(Module, Debug)]
pub struct DecoderCell {
    bn0: BatchNorm,
    expand: SpectralConv2d,
    bn1: BatchNorm,
    depthwise: SpectralConv2d,
    bn2: BatchNorm,
    project: SpectralConv2d,
    bn3: BatchNorm,
    se: SqueezeExcitation,
    skip: Option<SpectralConv2d>,
    #[module(skip)]
    upsample: bool,
}

impl DecoderCell {
    /// A cell from `c_in` to `c_out` channels with the given expansion; `upsample`
    /// doubles the spatial size.
    pub fn new(
        c_in: usize,
        c_out: usize,
        expansion: usize,
        upsample: bool,
        device: &Device,
    ) -> Self {
        let wide = c_in * expansion;
        Self {
            bn0: batch_norm(c_in, device),
            expand: conv(c_in, wide, 1, device),
            bn1: batch_norm(wide, device),
            depthwise: SpectralConv2d::new(
                &Conv2dConfig::new([wide, wide], [5, 5])
                    .with_groups(wide)
                    .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2)),
                device,
            ),
            bn2: batch_norm(wide, device),
            project: conv(wide, c_out, 1, device),
            bn3: batch_norm(c_out, device),
            se: SqueezeExcitation::new(c_out, device),
            skip: (c_in != c_out).then(|| conv(c_in, c_out, 1, device)),
            upsample,
        }
    }

    /// `[b, c_in, h, w] → [b, c_out, h, w]` (or `[b, c_out, 2h, 2w]` when upsampling).
    ///
    /// # Shapes
    /// - `x`: `[batch, c_in, height, width]`
    /// - output: `[batch, c_out, height, width]`, or `[batch, c_out, 2·height, 2·width]` when upsampling
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let up = |t: Tensor<4>| {
            if self.upsample {
                kernels::upsample_nearest2(t)
            } else {
                t
            }
        };
        let y = self.expand.forward(self.bn0.run(x.clone()));
        let y = kernels::batch_norm_silu_depthwise(
            &self.bn1,
            &self.depthwise.conv,
            &self.bn2,
            y,
            self.upsample,
        );
        let y = self.bn3.run(self.project.forward(y));
        let skip = match &self.skip {
            Some(skip) => up(skip.forward(x)),
            None => up(x),
        };
        self.se.scaled_residual(skip, y, RESIDUAL_SCALE)
    }

    pub(crate) fn convs(&self) -> Vec<&SpectralConv2d> {
        let mut convs = vec![&self.expand, &self.depthwise, &self.project];
        convs.extend(self.skip.as_ref());
        convs
    }

    pub(crate) fn batch_norms(&self) -> Vec<&BatchNorm> {
        vec![&self.bn0, &self.bn1, &self.bn2, &self.bn3]
    }

    pub(crate) fn batch_norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        vec![&mut self.bn0, &mut self.bn1, &mut self.bn2, &mut self.bn3]
    }
}

#[cfg(test)]
// burn's own `forward`s are the independent reference here.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        a.sub(b).abs().max().into_scalar::<f32>()
    }

    /// The upsampling decoder cell runs its batch norms, expanding convolution, SiLU and
    /// skip convolution before the upsampling (they act pixel by pixel, and the batch
    /// statistics of a map repeated into 2×2 blocks are those of the map). Checked against
    /// the cell as written in its docs, composed from burn's own modules on the upsampled
    /// input: the output and every running statistic after a training pass, the input's
    /// gradient, then the output in evaluation mode. Tolerance 1e-4: f32 sums in another
    /// order, over at most 25 taps or 6 channels and 2·8·8 pixels per statistic.
    #[test]
    fn upsampling_cell_matches_the_cell_on_the_upsampled_input() {
        let device = crate::device::default_device().autodiff();
        device.seed(3);
        let cell = DecoderCell::new(4, 6, 3, true, &device);
        // The same weights in a module of its own: a clone would share the batch norms'
        // running statistics.
        let reference =
            DecoderCell::new(4, 6, 3, true, &device).load_record(cell.clone().into_record());
        let x = Tensor::<4>::random([2, 4, 4, 4], Distribution::Normal(0.3, 1.5), &device)
            .require_grad();
        let composed = |c: &DecoderCell, x: Tensor<4>| {
            let [b, ch, h, w] = x.dims();
            let x = x
                .reshape([b, ch, h, 1, w, 1])
                .expand([b, ch, h, 2, w, 2])
                .reshape([b, ch, 2 * h, 2 * w]);
            let y = c.expand.conv.forward(c.bn0.forward(x.clone()));
            let y = c.depthwise.conv.forward(activation::silu(c.bn1.forward(y)));
            let y = c.project.conv.forward(activation::silu(c.bn2.forward(y)));
            let y = c.se.forward(c.bn3.forward(y));
            let skip = c.skip.as_ref().expect("4 → 6 channels").conv.forward(x);
            skip + y.mul_scalar(RESIDUAL_SCALE)
        };
        let got = cell.forward(x.clone());
        let want = composed(&reference, x.clone());
        assert_eq!(got.dims(), [2, 6, 8, 8]);
        assert!(max_abs_diff(got.clone(), want.clone()) < 1e-4);
        let r = Tensor::<4>::random([2, 6, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let (g_got, g_want) = (
            (got * r.clone()).sum().backward(),
            (want * r).sum().backward(),
        );
        let dx = max_abs_diff(x.grad(&g_got).unwrap(), x.grad(&g_want).unwrap());
        assert!(dx < 1e-4, "input gradient differs by {dx}");
        for (a, b) in cell.batch_norms().into_iter().zip(reference.batch_norms()) {
            // The statistics moved from their start (mean 0) in both cells.
            let moved = a.running_mean.value_sync().abs().max().into_scalar::<f32>();
            assert!(moved > 1e-3, "the training pass left a running mean at 0");
            let mean = max_abs_diff(a.running_mean.value_sync(), b.running_mean.value_sync());
            let var = max_abs_diff(a.running_var.value_sync(), b.running_var.value_sync());
            assert!(
                mean < 1e-4 && var < 1e-4,
                "running statistics: {mean}, {var}"
            );
        }
        let (cell, reference) = (cell.valid(), reference.valid());
        let x = Tensor::<4>::random(
            [3, 4, 4, 4],
            Distribution::Normal(0.3, 1.5),
            &device.inner(),
        );
        let d = max_abs_diff(cell.forward(x.clone()), composed(&reference, x));
        assert!(d < 1e-4, "evaluation output differs by {d}");
    }
}
