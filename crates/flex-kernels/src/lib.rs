//! # flex-kernels
//!
//! Fast CPU kernels for burn's flex backend, for the layers that convolutional and
//! fully connected models spend their time in: 2-D convolution (depthwise included),
//! transposed convolution, linear layers, group and batch normalisation (optionally fused
//! with SiLU), ELU, tanh, nearest-neighbour upsampling and the Bernoulli log-likelihood,
//! each with its own autodiff node, and the Adam update ([`adam`]).
//!
//! On the flex device burn 0.22 runs a convolution's backward pass as a transposed
//! convolution and a second convolution whose kernel is the whole output image, and a
//! group normalisation as about ten element-wise passes on one thread. The kernels here
//! compute the same functions by im2col and one `gemm` call per image (both backward
//! passes included), by a channels-last patch matrix over a tile of images where a kernel
//! row spans at least 32 floats (`k_w·C_in`), by sums of shifted planes for stride-1
//! layers into at most 4 channels, or, for 3×3 stride-1 convolutions with at least 8
//! channels each way, by Winograd's F(2×2, 3×3) minimal filtering with 2.25× fewer
//! multiplications; the normalisation in one pass forward and two backward, parallel over
//! images; and the Adam update in one pass per parameter. The README's table says which
//! layer shape takes which path and what it saves. They take burn's own modules, so the
//! parameters, their names and saved weights are unchanged.
//!
//! Every function falls back to the module's own `forward` where the kernels do not apply:
//! on any other device (wgpu, CUDA), in a build without the `flex` feature, for another
//! element type than f32, for grouped convolutions other than depthwise ones, dilated
//! convolutions, `Same` padding, and autodiff with gradient checkpointing. Results agree with burn's to f32 rounding (`tests/layers.rs`
//! checks values and gradients against burn's own ops; the unit tests check the paths
//! against direct f64 sums).
//!
//! Run a layer with [`Run::run`] (or the functions below) wherever `forward` would go:
//!
//! ```
//! use burn::nn::conv::Conv2dConfig;
//! use burn::nn::PaddingConfig2d;
//! use burn::tensor::Tensor;
//! use flex_kernels::Run;
//! # #[cfg(feature = "flex")] {
//! let device = burn::tensor::Device::flex();
//! let conv = Conv2dConfig::new([2, 4], [3, 3])
//!     .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
//!     .init(&device);
//! let x = Tensor::<4>::ones([1, 2, 5, 5], &device);
//! let fast = conv.run(x.clone());
//! let reference = conv.forward(x);
//! assert!(fast.sub(reference).abs().max().into_scalar::<f32>() < 1e-5);
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod adam;
mod allocator;
mod run;
// The kernels run on flex only; without it every function below is its fallback.
#[cfg(feature = "flex")]
mod batch_norm;
#[cfg(feature = "flex")]
mod bernoulli;
#[cfg(feature = "flex")]
mod channels_last;
#[cfg(feature = "flex")]
mod conv;
#[cfg(feature = "flex")]
mod conv2d;
#[cfg(feature = "flex")]
mod depthwise;
#[cfg(feature = "flex")]
mod elu;
#[cfg(feature = "flex")]
mod fast_math;
#[cfg(feature = "flex")]
mod few_outputs;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "flex")]
mod group_norm;
#[cfg(feature = "flex")]
mod im2col;
#[cfg(feature = "flex")]
mod linear;
#[cfg(feature = "flex")]
mod matmul;
#[cfg(feature = "flex")]
mod scratch;
#[cfg(feature = "flex")]
mod sums;
#[cfg(feature = "flex")]
mod tanh;
#[cfg(feature = "flex")]
mod transpose;
#[cfg(feature = "flex")]
mod uninit;
#[cfg(feature = "flex")]
mod upsample;
#[cfg(feature = "flex")]
mod winograd;

pub use adam::{AdamStep, adam_update};
pub use allocator::retain_freed_memory;
pub use run::Run;

use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{BatchNorm, GroupNorm, Linear};
use burn::tensor::{Tensor, activation};

// What only the flex paths below use.
#[cfg(feature = "flex")]
use {
    batch_norm::ChannelShape, burn::nn::PaddingConfig2d, conv::ConvShape,
    depthwise::DepthwiseShape, group_norm::GroupShape,
};

/// `conv.forward(x)`: the convolution of `x` (`[batch, C_in, H, W]`) by `conv`'s weights.
///
/// # Panics
/// Where `conv.forward` would (an input whose channel count is not the convolution's).
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(shape) = depthwise_shape(conv, x.dims())
        && let Some(y) = flex::depthwise_conv(
            shape,
            &x,
            &conv.weight.val(),
            conv.bias.as_ref().map(|b| b.val()),
        )
    {
        return y;
    }
    #[cfg(feature = "flex")]
    if let Some(shape) = conv_shape(conv, &x)
        && let Some(y) = flex::conv(
            shape,
            false,
            &x,
            &conv.weight.val(),
            conv.bias.as_ref().map(|b| b.val()),
        )
    {
        return y;
    }
    conv.forward(x)
}

/// `conv.forward(x)`: the transposed convolution of `x` (`[batch, C_in, H, W]`).
///
/// # Panics
/// Where `conv.forward` would.
pub fn conv_transpose2d(conv: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(shape) = conv_transpose_shape(conv, &x)
        && let Some(y) = flex::conv(
            shape,
            true,
            &x,
            &conv.weight.val(),
            conv.bias.as_ref().map(|b| b.val()),
        )
    {
        return y;
    }
    conv.forward(x)
}

/// `layer.forward(x)`: `x W + b` over the last dimension of `x` (`[.., d_in]`).
///
/// # Panics
/// Where `layer.forward` would (an input whose last dimension is not `d_in`).
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(y) = flex_affine(
        &x,
        &layer.weight.val(),
        layer.bias.as_ref().map(|b| b.val()),
    ) {
        return y;
    }
    layer.forward(x)
}

/// `x W + b` over the last dimension of `x` (`[.., d_in]`) for a weight `[d_in, d_out]`
/// and bias `[d_out]` given as tensors: what [`linear`] computes from a `Linear`, for
/// parameters assembled on the fly (the Gaussian posterior head runs its two linear maps
/// as one, on their weights side by side).
///
/// # Panics
/// If the last dimension of `x` is not `d_in`, or the bias is not `[d_out]`.
pub fn affine<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(y) = flex_affine(&x, &weight, bias.clone()) {
        return y;
    }
    let y = x.matmul(weight.unsqueeze());
    match bias {
        Some(b) => y + b.unsqueeze(),
        None => y,
    }
}

/// [`affine`] on flex, when the shapes agree (`x` `[.., d_in]` of rank 2 or more, the
/// weight `[d_in, d_out]`, the bias `[d_out]`) and the tensors are f32 flex tensors; `None`
/// otherwise, for the caller's fallback to report or compute.
#[cfg(feature = "flex")]
fn flex_affine<const D: usize>(
    x: &Tensor<D>,
    weight: &Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Option<Tensor<D>> {
    let [d_in, d_out] = weight.dims();
    let shapes_agree =
        D >= 2 && x.dims()[D - 1] == d_in && bias.as_ref().is_none_or(|b| b.dims()[0] == d_out);
    if shapes_agree {
        flex::linear(x, weight, bias)
    } else {
        None
    }
}

/// Nearest-neighbour upsampling by 2, `[b, c, h, w] → [b, c, 2h, 2w]`: every pixel
/// repeated into a 2×2 block.
pub fn upsample_nearest2(x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(y) = flex::upsample_nearest2(&x) {
        return y;
    }
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2])
        .reshape([b, c, 2 * h, 2 * w])
}

/// `norm.forward(x)`: group normalisation of `x` (`[batch, channels, …]`).
///
/// # Panics
/// Where `norm.forward` would.
pub fn group_norm<const D: usize>(norm: &GroupNorm, x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(y) = fused_group_norm(norm, &x, false) {
        return y;
    }
    norm.forward(x)
}

/// `silu(norm.forward(x))` in one pass: group normalisation followed by
/// `silu(u) = u σ(u)`, the pre-activation of the DDPM U-Net's residual blocks.
///
/// # Panics
/// Where `norm.forward` would.
pub fn group_norm_silu<const D: usize>(norm: &GroupNorm, x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(y) = fused_group_norm(norm, &x, true) {
        return y;
    }
    activation::silu(norm.forward(x))
}

/// `norm.forward(x)`: batch normalisation of `x` (`[batch, channels, …]`), with the
/// batch's statistics on an autodiff device in training mode (updating the running
/// statistics as burn's `BatchNorm` does) and with the running statistics otherwise.
///
/// # Panics
/// Where `norm.forward` would.
pub fn batch_norm<const D: usize>(norm: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(y) = fused_batch_norm(norm, &x, false) {
        return y;
    }
    norm.forward(x)
}

/// `silu(norm.forward(x))` in one pass: batch normalisation (as [`batch_norm`]) followed
/// by `silu(u) = u σ(u)`, the pre-activation of NVAE's residual cells.
///
/// # Panics
/// Where `norm.forward` would.
pub fn batch_norm_silu<const D: usize>(norm: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(y) = fused_batch_norm(norm, &x, true) {
        return y;
    }
    activation::silu(norm.forward(x))
}

/// `silu(post(conv(up(silu(pre(x))))))`, the middle of an inverted residual cell (NVAE's
/// decoder cells): a batch normalisation and SiLU, nearest upsampling by 2 when `upsample`
/// (else none), a depthwise convolution, and a second batch normalisation and SiLU.
///
/// On flex without autodiff (evaluation: both normalisations in inference mode) this is
/// one pass over the data: each plane is normalised, activated and upsampled as it is
/// copied into the convolution's padded buffer, and the output normalised and activated
/// as it is copied out, so the activations on either side of the convolution are never
/// written out whole. Everywhere else (training, autodiff, other devices, convolutions that
/// are not depthwise) it is [`batch_norm_silu`], [`upsample_nearest2`], [`conv2d`] and
/// [`batch_norm_silu`] in turn. Both agree to f32 rounding.
///
/// ```
/// use burn::nn::conv::Conv2dConfig;
/// use burn::nn::{BatchNormConfig, PaddingConfig2d};
/// use burn::tensor::{Distribution, Tensor, activation};
/// # #[cfg(feature = "flex")] {
/// let device = burn::tensor::Device::flex();
/// let pre = BatchNormConfig::new(3).init(&device);
/// let post = BatchNormConfig::new(3).init(&device);
/// let conv = Conv2dConfig::new([3, 3], [5, 5])
///     .with_groups(3)
///     .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
///     .init(&device);
/// let x = Tensor::<4>::random([2, 3, 4, 5], Distribution::Default, &device);
/// let fused = flex_kernels::batch_norm_silu_depthwise(&pre, &conv, &post, x.clone(), true);
/// let up = flex_kernels::upsample_nearest2(activation::silu(pre.forward(x)));
/// let composed = activation::silu(post.forward(conv.forward(up)));
/// assert_eq!(fused.dims(), [2, 3, 8, 10]);
/// assert!(fused.sub(composed).abs().max().into_scalar::<f32>() < 1e-5);
/// # }
/// ```
///
/// # Panics
/// Where the composition would (channel counts that do not match).
pub fn batch_norm_silu_depthwise(
    pre: &BatchNorm,
    conv: &Conv2d,
    post: &BatchNorm,
    x: Tensor<4>,
    upsample: bool,
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(y) = fused_depthwise_between_norms(pre, conv, post, &x, upsample) {
        return y;
    }
    let y = batch_norm_silu(pre, x);
    let y = if upsample { upsample_nearest2(y) } else { y };
    batch_norm_silu(post, conv2d(conv, y))
}

/// [`batch_norm_silu_depthwise`] in one pass, where it applies: flex without autodiff, a
/// depthwise convolution the kernel runs, and normalisations over its channels.
#[cfg(feature = "flex")]
fn fused_depthwise_between_norms(
    pre: &BatchNorm,
    conv: &Conv2d,
    post: &BatchNorm,
    x: &Tensor<4>,
    upsample: bool,
) -> Option<Tensor<4>> {
    let device = x.device();
    let [b, c, h, w] = x.dims();
    let f = if upsample { 2 } else { 1 };
    let shape = depthwise_shape(conv, [b, c, f * h, f * w])?;
    if device.is_autodiff() || pre.gamma.dims()[0] != c || post.gamma.dims()[0] != c {
        return None;
    }
    let params = |norm: &BatchNorm| {
        [
            norm.gamma.val(),
            norm.beta.val(),
            norm.running_mean.value().to_device(&device),
            norm.running_var.value().to_device(&device),
        ]
    };
    let (pre_params, post_params) = (params(pre), params(post));
    flex::depthwise_between_norms(
        shape,
        x,
        &conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        [
            (pre_params.each_ref(), pre.epsilon),
            (post_params.each_ref(), post.epsilon),
        ],
        upsample,
    )
}

/// `activation::elu(x, alpha)`: `x` where positive, `α (eˣ − 1)` elsewhere, in one
/// parallel pass on flex.
pub fn elu<const D: usize>(x: Tensor<D>, alpha: f64) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if alpha > 0.0
        && let Some(y) = flex::elu(&x, alpha as f32)
    {
        return y;
    }
    activation::elu(x, alpha)
}

/// `x.tanh()`: the hyperbolic tangent, in one parallel pass on flex.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(y) = flex::tanh(&x, 1.0) {
        return y;
    }
    x.tanh()
}

/// `bound · tanh(x / bound)`: a smooth clamp of `x` to `(−bound, bound)`, close to the
/// identity near 0 (NVAE's soft clamp of its latent parameters, `bound = 5`), in one
/// parallel pass on flex. Elsewhere, and for a `bound` that is not finite and positive, it
/// is burn's `x / bound`, `tanh` and `· bound` in turn.
///
/// ```
/// use burn::tensor::Tensor;
/// # #[cfg(feature = "flex")] {
/// let device = burn::tensor::Device::flex();
/// let x = Tensor::<1>::from_floats([-100.0, 0.0, 0.5], &device);
/// let y: Vec<f32> = flex_kernels::soft_clamp(x, 5.0).into_data().to_vec().unwrap();
/// // 5 tanh(0.1) = 0.49834
/// assert!((y[0] + 5.0).abs() < 1e-6 && y[1] == 0.0 && (y[2] - 0.49834).abs() < 1e-5);
/// # }
/// ```
pub fn soft_clamp<const D: usize>(x: Tensor<D>, bound: f64) -> Tensor<D> {
    #[cfg(feature = "flex")]
    {
        let c = bound as f32;
        if c.is_finite()
            && c > 0.0
            && let Some(y) = flex::tanh(&x, c)
        {
            return y;
        }
    }
    x.div_scalar(bound).tanh().mul_scalar(bound)
}

/// `log p(x | l) = Σ_i x_i l_i − softplus(l_i)` per row of `[batch, n]` logits and data, in
/// one parallel pass on flex, with its own autodiff node; `None` where the kernel does not
/// apply (another device, shapes that differ or are empty), for the caller to compose the
/// sum from tensor operations.
pub fn bernoulli_log_prob(logits: &Tensor<2>, x: &Tensor<2>) -> Option<Tensor<1>> {
    #[cfg(feature = "flex")]
    if logits.dims() == x.dims() && logits.dims()[0] > 0 && logits.dims()[1] > 0 {
        return flex::bernoulli_log_prob(logits, x);
    }
    #[cfg(not(feature = "flex"))]
    let _ = (logits, x);
    None
}

#[cfg(feature = "flex")]
fn fused_group_norm<const D: usize>(
    norm: &GroupNorm,
    x: &Tensor<D>,
    silu: bool,
) -> Option<Tensor<D>> {
    let dims = x.dims();
    if D < 2 || dims[1] != norm.num_channels || !dims[1].is_multiple_of(norm.num_groups) {
        return None;
    }
    let shape = GroupShape {
        batch: dims[0],
        channels: dims[1],
        pixels: dims[2..].iter().product(),
        groups: norm.num_groups,
    };
    if shape.batch == 0 || shape.pixels == 0 {
        return None;
    }
    let gamma = norm.gamma.as_ref()?.val();
    let beta = norm.beta.as_ref()?.val();
    flex::group_norm(shape, x, &gamma, &beta, norm.epsilon, silu)
}

/// [`batch_norm`] (then SiLU with `silu`) by the flex kernels, in training mode (the
/// batch's statistics, and the running statistics updated from them) or in inference mode
/// (the running statistics), as `norm.forward` chooses; `None` where they do not apply.
#[cfg(feature = "flex")]
fn fused_batch_norm<const D: usize>(
    norm: &BatchNorm,
    x: &Tensor<D>,
    silu: bool,
) -> Option<Tensor<D>> {
    let dims = x.dims();
    let channels = norm.gamma.dims()[0];
    if D < 2 || dims[1] != channels {
        return None;
    }
    let shape = ChannelShape {
        batch: dims[0],
        channels,
        pixels: dims[2..].iter().product(),
    };
    if shape.batch == 0 || shape.pixels == 0 {
        return None;
    }
    let device = x.device();
    if !(device.is_autodiff() && norm.training.is_enabled()) {
        let mean = norm.running_mean.value().to_device(&device);
        let var = norm.running_var.value().to_device(&device);
        let params = [&norm.gamma.val(), &norm.beta.val(), &mean, &var];
        return flex::batch_norm_inference(shape, x, params, norm.epsilon, silu);
    }
    let (y, mean, var) = flex::batch_norm_train(
        shape,
        x,
        &norm.gamma.val(),
        &norm.beta.val(),
        norm.epsilon,
        silu,
    )?;
    // The running statistics as burn's `BatchNorm::forward` updates them (biased variance).
    let m = norm.momentum;
    let batch_mean = Tensor::<1>::from_floats(mean.as_slice(), &device);
    let batch_var = Tensor::<1>::from_floats(var.as_slice(), &device);
    let running_mean = norm.running_mean.value_sync().to_device(&device);
    let running_var = norm.running_var.value_sync().to_device(&device);
    norm.running_mean.update(
        running_mean
            .mul_scalar(1.0 - m)
            .add(batch_mean.mul_scalar(m))
            .detach(),
    );
    norm.running_var.update(
        running_var
            .mul_scalar(1.0 - m)
            .add(batch_var.mul_scalar(m))
            .detach(),
    );
    Some(y)
}

/// The depthwise kernel's shape of `conv` applied to `x` (one filter per channel, stride
/// 1, no dilation, explicit padding of at most `k − 1`), or `None` where it does not apply.
#[cfg(feature = "flex")]
fn depthwise_shape(
    conv: &Conv2d,
    [batch, channels, h_in, w_in]: [usize; 4],
) -> Option<DepthwiseShape> {
    let [c_out, per_group, kh, kw] = conv.weight.dims();
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        return None;
    };
    let depthwise = conv.groups == channels && c_out == channels && per_group == 1;
    if !depthwise
        || conv.groups == 1
        || conv.stride != [1, 1]
        || conv.dilation != [1, 1]
        || batch == 0
        || h_in == 0
        || w_in == 0
        || [top, bottom].iter().any(|&p| p >= kh)
        || [left, right].iter().any(|&p| p >= kw)
        || h_in + top + bottom < kh
        || w_in + left + right < kw
    {
        return None;
    }
    Some(DepthwiseShape {
        batch,
        channels,
        h_in,
        w_in,
        kernel: [kh, kw],
        pad: [top, left, bottom, right],
    })
}

/// The kernels' shape of `conv` applied to `x`, or `None` where they do not apply.
#[cfg(feature = "flex")]
fn conv_shape(conv: &Conv2d, x: &Tensor<4>) -> Option<ConvShape> {
    let [batch, c_in, h_in, w_in] = x.dims();
    let [c_out, c_in_weight, kh, kw] = conv.weight.dims();
    let (top, left, bottom, right) = match conv.padding {
        PaddingConfig2d::Valid => (0, 0, 0, 0),
        PaddingConfig2d::Explicit(top, left, bottom, right) => (top, left, bottom, right),
        PaddingConfig2d::Same => return None,
    };
    let [sh, sw] = conv.stride;
    if conv.groups != 1
        || conv.dilation != [1, 1]
        || c_in != c_in_weight
        || batch == 0
        || sh == 0
        || sw == 0
        || h_in + top + bottom < kh
        || w_in + left + right < kw
    {
        return None;
    }
    Some(ConvShape {
        batch,
        c_in,
        h_in,
        w_in,
        c_out,
        h_out: (h_in + top + bottom - kh) / sh + 1,
        w_out: (w_in + left + right - kw) / sw + 1,
        kernel: [kh, kw],
        stride: [sh, sw],
        pad: [top, left],
    })
}

/// The shape of the convolution whose adjoint `conv` is: from `conv`'s output space
/// (`[batch, C_out, H_z, W_z]`) to its input space (`x`'s, `[batch, C_in, H, W]`), with
/// the same `[C_in, C_out, k_h, k_w]` weights.
#[cfg(feature = "flex")]
fn conv_transpose_shape(conv: &ConvTranspose2d, x: &Tensor<4>) -> Option<ConvShape> {
    let [batch, c_in, h, w] = x.dims();
    let [c_in_weight, c_out, kh, kw] = conv.weight.dims();
    let [sh, sw] = conv.stride;
    let [ph, pw] = conv.padding;
    let [oh, ow] = conv.padding_out;
    if conv.groups != 1
        || conv.dilation != [1, 1]
        || c_in != c_in_weight
        || batch == 0
        || h == 0
        || w == 0
        || sh == 0
        || sw == 0
        || oh >= sh
        || ow >= sw
    {
        return None;
    }
    // H_z = (H − 1)·s − 2p + k + output padding
    let h_z = ((h - 1) * sh + kh + oh).checked_sub(2 * ph)?;
    let w_z = ((w - 1) * sw + kw + ow).checked_sub(2 * pw)?;
    if h_z + 2 * ph < kh || w_z + 2 * pw < kw {
        return None;
    }
    let shape = ConvShape {
        batch,
        c_in: c_out,
        h_in: h_z,
        w_in: w_z,
        c_out: c_in,
        h_out: h,
        w_out: w,
        kernel: [kh, kw],
        stride: [sh, sw],
        pad: [ph, pw],
    };
    // The convolution must map H_z back to H exactly.
    let consistent = (h_z + 2 * ph - kh) / sh + 1 == h && (w_z + 2 * pw - kw) / sw + 1 == w;
    consistent.then_some(shape)
}

/// The README's example, compiled and run as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "flex"))]
pub struct ReadmeDoctests;
