//! The kernels against burn's own modules and ops, which are the independent reference
//! here: the same parameters, the same input, values and every gradient compared, on the
//! flex device (where the kernels run; elsewhere every function is burn's own op).
//!
//! Tolerance: the two sides add the same f32 products in different orders (at most a few
//! hundred terms here), which moves a result by a few ulp of the sum of magnitudes; the
//! checks allow 1e-4 of the largest reference value, far above that and far below the
//! O(1) error of a wrong index, stride or padding.

#![cfg(feature = "flex")]

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
use burn::nn::{BatchNormConfig, GroupNormConfig, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Distribution, Gradients, Tensor, activation};
use flex_kernels as kernels;

fn device() -> Device {
    Device::flex()
}

/// A tensor's values on the host, in f64 (detached: safe on an autodiff device).
fn host<const D: usize>(t: &Tensor<D>) -> Vec<f64> {
    t.clone()
        .detach()
        .try_into_vec_as::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

fn assert_close<const D: usize>(what: &str, got: &Tensor<D>, want: &Tensor<D>) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let (got, want) = (host(got), host(want));
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-3);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * scale,
            "{what}[{i}]: {g} vs burn's {w} (scale {scale})"
        );
    }
}

/// An output by the kernel (`fast`) against burn's (`reference`), then the gradient of the
/// input `x` after back-propagating the same random weighting of the output through each;
/// returns both sides' gradients (the kernel's first) for the parameters' checks.
fn assert_output_and_input_gradient<const DX: usize, const DY: usize>(
    what: &str,
    x: &Tensor<DX>,
    fast: Tensor<DY>,
    reference: Tensor<DY>,
) -> (Gradients, Gradients) {
    assert_close(&format!("{what}: output"), &fast, &reference);
    let r = Tensor::<DY>::random(
        reference.dims(),
        Distribution::Normal(0.0, 1.0),
        &reference.device(),
    );
    let g_fast = (fast * r.clone()).sum().backward();
    let g_ref = (reference * r).sum().backward();
    assert_close(
        &format!("{what}: dx"),
        &x.grad(&g_fast).unwrap(),
        &x.grad(&g_ref).unwrap(),
    );
    (g_fast, g_ref)
}

/// A layer's output by the kernel (`fast`) against burn's (`reference`), then the gradients
/// of its input `x`, its `weight` and its `bias` after back-propagating the same random
/// weighting of the output through each.
fn assert_layer_matches<const DX: usize, const DY: usize, const DW: usize>(
    what: &str,
    x: &Tensor<DX>,
    fast: Tensor<DY>,
    reference: Tensor<DY>,
    weight: &Tensor<DW>,
    bias: Option<&Tensor<1>>,
) {
    let (g_fast, g_ref) = assert_output_and_input_gradient(what, x, fast, reference);
    assert_close(
        &format!("{what}: dW"),
        &weight.grad(&g_fast).unwrap(),
        &weight.grad(&g_ref).unwrap(),
    );
    if let Some(b) = bias {
        assert_close(
            &format!("{what}: dbias"),
            &b.grad(&g_fast).unwrap(),
            &b.grad(&g_ref).unwrap(),
        );
    }
}

/// One convolution configuration, as `(input [b, c, h, w], c_out, kernel, stride,
/// padding, bias)`.
type ConvCase = (
    [usize; 4],
    usize,
    [usize; 2],
    [usize; 2],
    PaddingConfig2d,
    bool,
);

#[test]
fn conv2d_values_and_gradients_match_burn() {
    let cases: [ConvCase; 11] = [
        // 3×3 stride-1 convolutions with at least 8 channels each way take Winograd's
        // F(2×2, 3×3); padding 0 makes the input gradient a flipped convolution padded by 2.
        (
            [3, 8, 9, 7],
            10,
            [3, 3],
            [1, 1],
            PaddingConfig2d::Explicit(1, 1, 1, 1),
            true,
        ),
        (
            [2, 9, 6, 6],
            8,
            [3, 3],
            [1, 1],
            PaddingConfig2d::Valid,
            false,
        ),
        (
            [3, 4, 9, 9],
            5,
            [3, 3],
            [1, 1],
            PaddingConfig2d::Explicit(1, 1, 1, 1),
            true,
        ),
        (
            [2, 3, 10, 8],
            4,
            [3, 3],
            [2, 2],
            PaddingConfig2d::Explicit(1, 1, 1, 1),
            true,
        ),
        (
            [5, 2, 12, 12],
            3,
            [4, 4],
            [2, 2],
            PaddingConfig2d::Explicit(1, 1, 1, 1),
            true,
        ),
        (
            [3, 6, 7, 5],
            4,
            [1, 1],
            [1, 1],
            PaddingConfig2d::Valid,
            true,
        ),
        (
            [1, 3, 8, 7],
            2,
            [3, 2],
            [1, 2],
            PaddingConfig2d::Explicit(2, 0, 1, 1),
            false,
        ),
        (
            [4, 2, 6, 6],
            3,
            [5, 5],
            [1, 1],
            PaddingConfig2d::Valid,
            true,
        ),
        // Kernel rows of at least 32 floats (`k_w·C_in`) into at least 8 channels take
        // the channels-last path.
        (
            [3, 8, 10, 10],
            9,
            [4, 4],
            [2, 2],
            PaddingConfig2d::Explicit(1, 1, 1, 1),
            true,
        ),
        (
            [2, 12, 9, 8],
            8,
            [3, 3],
            [2, 2],
            PaddingConfig2d::Explicit(1, 1, 1, 1),
            false,
        ),
        // `Same` padding and a dilation are not the kernels': they fall back to burn.
        ([2, 2, 6, 6], 2, [3, 3], [1, 1], PaddingConfig2d::Same, true),
    ];
    let device = device().autodiff();
    for (i, (dims, c_out, kernel, stride, padding, bias)) in cases.into_iter().enumerate() {
        let conv = Conv2dConfig::new([dims[1], c_out], kernel)
            .with_stride(stride)
            .with_padding(padding)
            .with_bias(bias)
            .init(&device);
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device).require_grad();
        assert_layer_matches(
            &format!("case {i}: conv2d"),
            &x,
            kernels::conv2d(&conv, x.clone()),
            conv.forward(x.clone()),
            &conv.weight.val(),
            conv.bias.as_ref().map(|b| b.val()).as_ref(),
        );
        // Without autodiff (a model in evaluation).
        let conv = conv.valid();
        let x = x.inner();
        assert_close(
            &format!("case {i}: conv2d output, no autodiff"),
            &kernels::conv2d(&conv, x.clone()),
            &conv.forward(x),
        );
    }
}

#[test]
fn conv_transpose2d_values_and_gradients_match_burn() {
    // (input dims, c_out, kernel, stride, padding, output padding)
    let cases = [
        ([3, 4, 7, 7], 2, [4, 4], [2, 2], [1, 1], [0, 0]),
        ([2, 3, 5, 4], 3, [3, 3], [2, 2], [1, 1], [1, 1]),
        ([4, 2, 6, 6], 5, [3, 3], [1, 1], [1, 1], [0, 0]),
        ([1, 3, 4, 5], 2, [2, 3], [1, 2], [0, 1], [0, 1]),
        // The adjoint of a convolution on the channels-last path (8 channels × 4 columns
        // into 9).
        ([3, 9, 5, 5], 8, [4, 4], [2, 2], [1, 1], [0, 0]),
    ];
    let device = device().autodiff();
    for (i, (dims, c_out, kernel, stride, padding, padding_out)) in cases.into_iter().enumerate() {
        let conv = ConvTranspose2dConfig::new([dims[1], c_out], kernel)
            .with_stride(stride)
            .with_padding(padding)
            .with_padding_out(padding_out)
            .init(&device);
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device).require_grad();
        let bias = conv
            .bias
            .as_ref()
            .expect("transposed convolutions here have a bias");
        assert_layer_matches(
            &format!("case {i}"),
            &x,
            kernels::conv_transpose2d(&conv, x.clone()),
            conv.forward(x.clone()),
            &conv.weight.val(),
            Some(&bias.val()),
        );
        let conv = conv.valid();
        let x = x.inner();
        assert_close(
            &format!("case {i}: output, no autodiff"),
            &kernels::conv_transpose2d(&conv, x.clone()),
            &conv.forward(x),
        );
    }
}

#[test]
fn group_norm_values_and_gradients_match_burn() {
    let device = device().autodiff();
    // 4-D maps with 8 groups of 2 and 4 channels, and a 3-D input with one channel a group.
    for (i, (dims, groups)) in [
        (vec![3, 16, 5, 4], 8),
        (vec![2, 32, 3, 3], 8),
        (vec![4, 3, 7], 3),
    ]
    .into_iter()
    .enumerate()
    {
        for silu in [false, true] {
            let mut norm = GroupNormConfig::new(groups, dims[1]).init(&device);
            // Move γ and β off their initial 1 and 0, so their roles are tested.
            let ramp = |offset: f32| {
                let values: Vec<f32> = (0..dims[1]).map(|c| offset + 0.3 * c as f32).collect();
                Param::from_tensor(Tensor::<1>::from_floats(values.as_slice(), &device))
            };
            norm.gamma = Some(ramp(0.5));
            norm.beta = Some(ramp(-1.0));
            let what = format!("case {i}, silu {silu}");
            let x = Tensor::<3>::random(
                [dims[0], dims[1], dims[2..].iter().product()],
                Distribution::Normal(0.5, 2.0),
                &device,
            )
            .require_grad();
            let (fast, reference) = if silu {
                (
                    kernels::group_norm_silu(&norm, x.clone()),
                    activation::silu(norm.forward(x.clone())),
                )
            } else {
                (
                    kernels::group_norm(&norm, x.clone()),
                    norm.forward(x.clone()),
                )
            };
            let (g_fast, g_ref) = assert_output_and_input_gradient(&what, &x, fast, reference);
            for (name, p) in [("dγ", &norm.gamma), ("dβ", &norm.beta)] {
                let p = p.as_ref().unwrap().val();
                assert_close(
                    &format!("{what}: {name}"),
                    &p.grad(&g_fast).unwrap(),
                    &p.grad(&g_ref).unwrap(),
                );
            }
            let norm = norm.valid();
            let x = x.inner();
            let (fast, reference) = if silu {
                (
                    kernels::group_norm_silu(&norm, x.clone()),
                    activation::silu(norm.forward(x)),
                )
            } else {
                (kernels::group_norm(&norm, x.clone()), norm.forward(x))
            };
            assert_close(&format!("{what}: output, no autodiff"), &fast, &reference);
        }
    }
}

/// Depthwise convolutions (one 5×5 or 3×3 filter per channel, NVAE's decoder cells) against
/// burn's grouped `Conv2d::forward`: values and the gradients of the input, the filters and
/// the bias, with and without autodiff; a channel multiplier of 2, a stride of 2 and
/// padding past `k − 1` are not the kernel's and fall back to burn.
#[test]
fn depthwise_conv2d_values_and_gradients_match_burn() {
    let device = device().autodiff();
    // (input, channels out, kernel, stride, padding, bias)
    let cases: [ConvCase; 6] = [
        (
            [3, 6, 14, 14],
            6,
            [5, 5],
            [1, 1],
            PaddingConfig2d::Explicit(2, 2, 2, 2),
            true,
        ),
        (
            [2, 5, 7, 9],
            5,
            [3, 3],
            [1, 1],
            PaddingConfig2d::Explicit(1, 1, 1, 1),
            false,
        ),
        (
            [2, 4, 6, 5],
            4,
            [3, 2],
            [1, 1],
            PaddingConfig2d::Explicit(0, 1, 2, 0),
            true,
        ),
        (
            [2, 3, 6, 6],
            6,
            [3, 3],
            [1, 1],
            PaddingConfig2d::Explicit(1, 1, 1, 1),
            true,
        ),
        (
            [2, 3, 8, 8],
            3,
            [3, 3],
            [2, 2],
            PaddingConfig2d::Explicit(1, 1, 1, 1),
            true,
        ),
        (
            [1, 2, 5, 5],
            2,
            [3, 3],
            [1, 1],
            PaddingConfig2d::Explicit(3, 3, 3, 3),
            true,
        ),
    ];
    for (i, (dims, c_out, kernel, stride, padding, bias)) in cases.into_iter().enumerate() {
        let conv = Conv2dConfig::new([dims[1], c_out], kernel)
            .with_groups(dims[1])
            .with_stride(stride)
            .with_padding(padding)
            .with_bias(bias)
            .init(&device);
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device).require_grad();
        assert_layer_matches(
            &format!("case {i}: depthwise conv2d"),
            &x,
            kernels::conv2d(&conv, x.clone()),
            conv.forward(x.clone()),
            &conv.weight.val(),
            conv.bias.as_ref().map(|b| b.val()).as_ref(),
        );
        let conv = conv.valid();
        let x = x.inner();
        assert_close(
            &format!("case {i}: depthwise conv2d output, no autodiff"),
            &kernels::conv2d(&conv, x.clone()),
            &conv.forward(x),
        );
    }
}

/// Batch normalisation, alone and followed by SiLU, against burn's `BatchNorm::forward`
/// (then `silu`): in training mode the output, the gradients of the input, γ and β, and the
/// running statistics after two batches; in inference mode (`valid()`) the output from
/// those running statistics. 4-D maps, and a 2-D input (one value per channel per row).
#[test]
fn batch_norm_values_gradients_and_running_statistics_match_burn() {
    let device = device().autodiff();
    for (i, dims) in [vec![4, 6, 5, 3], vec![7, 5]].into_iter().enumerate() {
        for silu in [false, true] {
            let what = format!("case {i}, silu {silu}");
            let channels = dims[1];
            let ramp = |offset: f32| {
                let values: Vec<f32> = (0..channels).map(|c| offset + 0.3 * c as f32).collect();
                Param::from_tensor(Tensor::<1>::from_floats(values.as_slice(), &device))
            };
            // Two modules with the same parameters and their own running statistics.
            let make = || {
                let mut norm = BatchNormConfig::new(channels)
                    .with_momentum(0.3)
                    .init(&device);
                norm.gamma = ramp(0.5);
                norm.beta = ramp(-1.0);
                norm
            };
            let (fast, reference) = (make(), make());
            let run = |norm: &burn::nn::BatchNorm, x: Tensor<3>, kernel: bool| match (kernel, silu)
            {
                (true, false) => kernels::batch_norm(norm, x),
                (true, true) => kernels::batch_norm_silu(norm, x),
                (false, false) => norm.forward(x),
                (false, true) => activation::silu(norm.forward(x)),
            };
            let shape = [dims[0], channels, dims[2..].iter().product()];
            for batch in 0..2 {
                let x = Tensor::<3>::random(
                    shape,
                    Distribution::Normal(0.5 + batch as f64, 2.0),
                    &device,
                )
                .require_grad();
                let y_fast = run(&fast, x.clone(), true);
                let y_ref = run(&reference, x.clone(), false);
                let (g_fast, g_ref) = assert_output_and_input_gradient(
                    &format!("{what}, batch {batch}"),
                    &x,
                    y_fast,
                    y_ref,
                );
                for (name, f, r) in [
                    ("dγ", &fast.gamma, &reference.gamma),
                    ("dβ", &fast.beta, &reference.beta),
                ] {
                    assert_close(
                        &format!("{what}: {name}"),
                        &f.val().grad(&g_fast).unwrap(),
                        &r.val().grad(&g_ref).unwrap(),
                    );
                }
            }
            assert_close(
                &format!("{what}: running mean"),
                &fast.running_mean.value_sync(),
                &reference.running_mean.value_sync(),
            );
            assert_close(
                &format!("{what}: running variance"),
                &fast.running_var.value_sync(),
                &reference.running_var.value_sync(),
            );
            let (fast, reference) = (fast.valid(), reference.valid());
            let x = Tensor::<3>::random(
                shape,
                Distribution::Normal(1.0, 2.0),
                &device.clone().inner(),
            );
            assert_close(
                &format!("{what}: output in inference"),
                &run(&fast, x.clone(), true),
                &run(&reference, x, false),
            );
        }
    }
}

/// ELU against burn's `activation::elu`: values and the input's gradient, with and without
/// autodiff, for α = 1 (NVAE's) and 0.5.
#[test]
fn elu_values_and_gradient_match_burn() {
    let device = device().autodiff();
    for alpha in [1.0, 0.5] {
        let x =
            Tensor::<3>::random([3, 7, 11], Distribution::Normal(0.0, 3.0), &device).require_grad();
        let (fast, reference) = (
            kernels::elu(x.clone(), alpha),
            activation::elu(x.clone(), alpha),
        );
        assert_output_and_input_gradient(&format!("α {alpha}"), &x, fast, reference);
        let x = x.inner();
        assert_close(
            &format!("α {alpha}: output, no autodiff"),
            &kernels::elu(x.clone(), alpha),
            &activation::elu(x, alpha),
        );
    }
}

/// tanh against burn's `Tensor::tanh`: values and the input's gradient, with and without
/// autodiff.
#[test]
fn tanh_values_and_gradient_match_burn() {
    let device = device().autodiff();
    let x = Tensor::<3>::random([3, 7, 11], Distribution::Normal(0.0, 3.0), &device).require_grad();
    let (fast, reference) = (kernels::tanh(x.clone()), x.clone().tanh());
    assert_output_and_input_gradient("tanh", &x, fast, reference);
    let x = x.inner();
    assert_close("output, no autodiff", &kernels::tanh(x.clone()), &x.tanh());
}

/// The soft clamp `5 tanh(x / 5)` against burn's ops composed: values and the input's
/// gradient, with and without autodiff, on values out to ±15 (three times the bound).
#[test]
fn soft_clamp_values_and_gradient_match_burn() {
    let device = device().autodiff();
    let x =
        Tensor::<4>::random([2, 8, 7, 7], Distribution::Normal(0.0, 5.0), &device).require_grad();
    let composed = |x: Tensor<4>| x.div_scalar(5.0).tanh().mul_scalar(5.0);
    let (fast, reference) = (kernels::soft_clamp(x.clone(), 5.0), composed(x.clone()));
    assert_output_and_input_gradient("soft clamp", &x, fast, reference);
    let x = x.inner();
    assert_close(
        "output, no autodiff",
        &kernels::soft_clamp(x.clone(), 5.0),
        &composed(x),
    );
}

/// A linear layer against burn's `Linear::forward`, with a bias on a rank-2 input and
/// without one on a rank-3 input: values and the gradients of the input, the weight and
/// the bias, with and without autodiff.
#[test]
fn linear_values_and_gradients_match_burn() {
    fn check<const D: usize>(dims: [usize; D], bias: bool) {
        let device = device().autodiff();
        let layer = LinearConfig::new(5, 4).with_bias(bias).init(&device);
        let x = Tensor::<D>::random(dims, Distribution::Normal(0.0, 1.0), &device).require_grad();
        let what = format!("input {dims:?}, bias {bias}");
        assert_layer_matches(
            &what,
            &x,
            kernels::linear(&layer, x.clone()),
            layer.forward(x.clone()),
            &layer.weight.val(),
            layer.bias.as_ref().map(|b| b.val()).as_ref(),
        );
        let layer = layer.valid();
        let x = x.inner();
        assert_close(
            &format!("{what}: output, no autodiff"),
            &kernels::linear(&layer, x.clone()),
            &layer.forward(x),
        );
    }
    check([6, 5], true);
    check([2, 3, 5], false);
}

/// `kernels::affine` (weights given as tensors) against burn's `matmul` plus the bias:
/// values and the gradients of the input, the weight and the bias, on rank-2 and rank-3
/// inputs, with and without a bias.
#[test]
fn affine_values_and_gradients_match_burn() {
    fn check<const D: usize>(dims: [usize; D], bias: bool) {
        let ad = device().autodiff();
        let normal = Distribution::Normal(0.0, 1.0);
        let x = Tensor::<D>::random(dims, normal, &ad).require_grad();
        let w = Tensor::<2>::random([dims[D - 1], 6], normal, &ad).require_grad();
        let b = bias.then(|| Tensor::<1>::random([6], normal, &ad).require_grad());
        let reference = x.clone().matmul(w.clone().unsqueeze());
        let reference = match &b {
            Some(b) => reference + b.clone().unsqueeze(),
            None => reference,
        };
        assert_layer_matches(
            &format!("affine, input {dims:?}, bias {bias}"),
            &x,
            kernels::affine(x.clone(), w.clone(), b.clone()),
            reference,
            &w,
            b.as_ref(),
        );
    }
    check([6, 5], true);
    check([2, 3, 5], false);
}

/// Nearest-neighbour upsampling against burn's `reshape → expand → reshape`, values and
/// the input gradient (2×2 sums of the output gradient), with and without autodiff, on an
/// odd-sized image.
#[test]
fn upsample_nearest2_values_and_gradient_match_burn() {
    let device = device().autodiff();
    let x =
        Tensor::<4>::random([2, 3, 5, 3], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let reference = x
        .clone()
        .reshape([2, 3, 5, 1, 3, 1])
        .expand([2, 3, 5, 2, 3, 2])
        .reshape([2, 3, 10, 6]);
    let fast = kernels::upsample_nearest2(x.clone());
    assert_output_and_input_gradient("upsampled", &x, fast, reference);
    let x = x.inner();
    let plain = kernels::upsample_nearest2(x.clone());
    let want = x
        .reshape([2, 3, 5, 1, 3, 1])
        .expand([2, 3, 5, 2, 3, 2])
        .reshape([2, 3, 10, 6]);
    assert_close("upsampled, no autodiff", &plain, &want);
}

/// The fused Bernoulli log-likelihood against the same sum composed from burn's ops,
/// `Σ x·l − softplus(l)`, values and gradients in both arguments, for logits over
/// [−30, 30] and 0/1 data; and `None` where it does not apply (shapes that differ).
#[test]
fn bernoulli_log_prob_values_and_gradients_match_burn() {
    let device = device().autodiff();
    let logits =
        Tensor::<2>::random([7, 53], Distribution::Uniform(-30.0, 30.0), &device).require_grad();
    let x = Tensor::<2>::random([7, 53], Distribution::Bernoulli(0.4), &device).require_grad();
    let fast = kernels::bernoulli_log_prob(&logits, &x).expect("the kernel applies on flex");
    let reference = (x.clone() * logits.clone() - activation::softplus(logits.clone(), 1.0))
        .sum_dim(1)
        .reshape([7]);
    // The logits as the input: `log p(x | l): dx` is the gradient in the logits.
    let (g_fast, g_ref) =
        assert_output_and_input_gradient("log p(x | l)", &logits, fast, reference);
    assert_close("dx", &x.grad(&g_fast).unwrap(), &x.grad(&g_ref).unwrap());
    assert!(kernels::bernoulli_log_prob(&logits, &x.narrow(1, 0, 52)).is_none());
}

/// `batch_norm_silu_depthwise` against burn's modules composed (`silu(BN)`, nearest
/// upsampling by `reshape → expand`, the depthwise `Conv2d`, `silu(BN)`), with and
/// without upsampling: in inference (the fused one-pass kernel) with running statistics
/// and affine parameters far from the identity (set by a training pass), and in training
/// on an autodiff device (the composed fallback: values and the input's gradient).
#[test]
fn batch_norm_silu_depthwise_matches_burn() {
    let device = device().autodiff();
    let channels = 5;
    let ramp = |offset: f32, step: f32| {
        let values: Vec<f32> = (0..channels).map(|c| offset + step * c as f32).collect();
        Param::from_tensor(Tensor::<1>::from_floats(values.as_slice(), &device))
    };
    let norm = |offset: f32| {
        let mut n = BatchNormConfig::new(channels)
            .with_momentum(0.5)
            .init(&device);
        n.gamma = ramp(0.5 + offset, 0.3);
        n.beta = ramp(-1.0 + offset, 0.4);
        n
    };
    let conv = Conv2dConfig::new([channels, channels], [5, 5])
        .with_groups(channels)
        .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
        .init(&device);
    let composed = |pre: &burn::nn::BatchNorm,
                    post: &burn::nn::BatchNorm,
                    conv: &burn::nn::conv::Conv2d,
                    x: Tensor<4>,
                    upsample: bool| {
        let y = activation::silu(pre.forward(x));
        let y = if upsample {
            let [b, c, h, w] = y.dims();
            y.reshape([b, c, h, 1, w, 1])
                .expand([b, c, h, 2, w, 2])
                .reshape([b, c, 2 * h, 2 * w])
        } else {
            y
        };
        activation::silu(post.forward(conv.forward(y)))
    };
    for upsample in [false, true] {
        let (pre, post) = (norm(0.0), norm(0.2));
        let x = Tensor::<4>::random([3, channels, 6, 7], Distribution::Normal(0.5, 2.0), &device)
            .require_grad();
        // Training: both sides update their running statistics from this batch.
        let fast = kernels::batch_norm_silu_depthwise(&pre, &conv, &post, x.clone(), upsample);
        let (pre_ref, post_ref) = (norm(0.0), norm(0.2));
        let reference = composed(&pre_ref, &post_ref, &conv, x.clone(), upsample);
        let what = format!("upsample {upsample}, training");
        assert_output_and_input_gradient(&what, &x, fast, reference);
        // Inference on the plain device: the fused kernel, with the running statistics
        // the training pass left (mean and variance away from 0 and 1).
        let (pre, post, conv) = (pre.valid(), post.valid(), conv.clone().valid());
        let x = Tensor::<4>::random(
            [2, channels, 4, 9],
            Distribution::Normal(1.0, 2.0),
            &device.clone().inner(),
        );
        assert_close(
            &format!("upsample {upsample}, inference"),
            &kernels::batch_norm_silu_depthwise(&pre, &conv, &post, x.clone(), upsample),
            &composed(&pre, &post, &conv, x, upsample),
        );
    }
}
