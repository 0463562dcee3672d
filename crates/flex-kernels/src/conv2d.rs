//! Which path a convolution takes, and the transforms between them: the three kernels
//! behind [`conv2d`](crate::conv2d) and [`conv_transpose2d`](crate::conv_transpose2d) on
//! flex (forward pass, input gradient, weight gradient).
//!
//! | shape | path |
//! | --- | --- |
//! | 3×3, stride 1, ≥ 8 channels in and out | [`winograd`](crate::winograd) (forward, weight gradient) |
//! | stride 1, ≤ 4 output channels | [`few_outputs`](crate::few_outputs) (forward) |
//! | kernel rows `k_w·C_in` ≥ 32 floats, ≥ 8 output channels | [`channels_last`](crate::channels_last) |
//! | anything else | [`im2col`](crate::im2col) |
//!
//! A transposed convolution is the adjoint of a convolution: its forward pass is the
//! convolution's input gradient, and its backward passes are the convolution's forward
//! pass and weight gradient with the roles of input and output exchanged. At stride 1 the
//! input gradient is itself a convolution (of the flipped kernel), so it takes the paths
//! of a forward pass.

use crate::conv::ConvShape;
use crate::{channels_last, few_outputs, im2col, winograd};

/// The convolution `y = W ⋆ x + bias`: `x` `[B, C_in, H_in, W_in]`, `weight`
/// `[C_out, C_in, k_h, k_w]`, `bias` `[C_out]`; returns `y` `[B, C_out, H_out, W_out]`.
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    if winograd::applies(s) {
        return winograd::forward(s, x, weight, bias);
    }
    if few_outputs::applies(s) {
        return few_outputs::forward(s, x, weight, bias);
    }
    if channels_last::applies(s) {
        return channels_last::forward(s, x, weight, bias);
    }
    im2col::forward_in_tiles(s, x, weight, bias, im2col::rows_per_tile(s))
}

/// For a stride-1 convolution padded by less than its kernel, the input gradient is itself
/// a convolution: of `dy` by the kernel flipped in space with its input and output
/// channels exchanged, padded by `k − 1 − p`.
///
/// # Formula
/// ```text
/// dx[c, y, x] = Σ_{o,i,j} W[o, c, i, j] dy[o, y − i + p_h, x − j + p_w]
///             = Σ_{o,i,j} W'[c, o, i, j] dy[o, y + i − (k_h − 1 − p_h), x + j − (k_w − 1 − p_w)]
/// W'[c, o, i, j] = W[o, c, k_h − 1 − i, k_w − 1 − j]
/// ```
/// This replaces the scatter of col2im by the gather of im2col, and gives the matrix
/// product `C_out·k_h·k_w` terms per entry instead of `C_out`.
fn flipped(s: &ConvShape, weight: &[f32]) -> Option<(ConvShape, Vec<f32>)> {
    let [kh, kw] = s.kernel;
    if s.stride != [1, 1] || s.pad[0] >= kh || s.pad[1] >= kw {
        return None;
    }
    let shape = ConvShape {
        batch: s.batch,
        c_in: s.c_out,
        h_in: s.h_out,
        w_in: s.w_out,
        c_out: s.c_in,
        h_out: s.h_in,
        w_out: s.w_in,
        kernel: s.kernel,
        stride: [1, 1],
        pad: [kh - 1 - s.pad[0], kw - 1 - s.pad[1]],
    };
    let mut w = vec![0.0; weight.len()];
    for o in 0..s.c_out {
        for c in 0..s.c_in {
            for i in 0..kh {
                for j in 0..kw {
                    w[((c * s.c_out + o) * kh + i) * kw + j] =
                        weight[((o * s.c_in + c) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)];
                }
            }
        }
    }
    Some((shape, w))
}

/// The input gradient `dx` (`dy` `[B, C_out, H_out, W_out]`), shape `[B, C_in, H_in, W_in]`;
/// for stride 1, the equal convolution of [`flipped`].
pub(crate) fn backward_input(s: &ConvShape, dy: &[f32], weight: &[f32]) -> Vec<f32> {
    if !s.is_pointwise()
        && let Some((shape, w)) = flipped(s, weight)
    {
        return forward(&shape, dy, &w, None);
    }
    if channels_last::applies(s) {
        return channels_last::backward_input(s, dy, weight);
    }
    im2col::backward_input(s, dy, weight)
}

/// Both backward passes of a convolution: the input gradient (as [`backward_input`]), the
/// weight gradient and, with `with_bias`, the bias gradient (as [`backward_weight`]); on
/// the channels-last path in one pass that transposes each tile's output gradient once.
pub(crate) fn backward(
    s: &ConvShape,
    x: &[f32],
    dy: &[f32],
    weight: &[f32],
    with_bias: bool,
) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    // At stride 1 the input gradient is the flipped convolution (see `backward_input`).
    if s.stride != [1, 1] && channels_last::applies(s) {
        return channels_last::backward(s, x, dy, weight, with_bias);
    }
    let dx = backward_input(s, dy, weight);
    let (dw, db) = backward_weight(s, x, dy, with_bias);
    (dx, dw, db)
}

/// The weight gradient `dW = Σ_b dy_b · cols_bᵀ` (`[C_out, C_in, k_h, k_w]`) and, with
/// `with_bias`, the bias gradient `Σ_b Σ_pixels dy_b` (`[C_out]`).
pub(crate) fn backward_weight(
    s: &ConvShape,
    x: &[f32],
    dy: &[f32],
    with_bias: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    if winograd::applies(s) {
        return winograd::backward_weight(s, x, dy, with_bias);
    }
    let (dw, db, _) = if channels_last::applies(s) {
        channels_last::weight_gradient_and_forward(s, x, dy, with_bias, None)
    } else {
        im2col::weight_gradient_and_forward(s, x, dy, with_bias, None)
    };
    (dw, db)
}

/// The convolution `y = W ⋆ x` (no bias) and the weight gradient `Σ_b g_b · cols_bᵀ`
/// (`g` `[B, C_out, H_out, W_out]`) from one patch matrix per image: the two passes of a
/// transposed convolution's backward, which read the same patches (of its output
/// gradient).
pub(crate) fn forward_and_backward_weight(
    s: &ConvShape,
    x: &[f32],
    weight: &[f32],
    g: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let (dw, _, y) = if channels_last::applies(s) {
        channels_last::weight_gradient_and_forward(s, x, g, false, Some(weight))
    } else {
        im2col::weight_gradient_and_forward(s, x, g, false, Some(weight))
    };
    (y.unwrap_or_default(), dw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::channel_sums;
    use crate::conv::direct::{self, values};

    /// The forward pass against the direct sum, and both backward passes against the
    /// adjoint identities `⟨dy, conv(x)⟩ = ⟨backward_input(dy), x⟩ = ⟨backward_weight, W⟩`
    /// (bias 0), for strides 1 and 2, asymmetric padding and a 1×1 kernel (the stride-1
    /// cases take the input gradient from the flipped-kernel convolution), on the
    /// image-major im2col path, the channels-last one and the few-output-channel one. Tolerance: f32 sums of at most
    /// 105 products of values in [−1, 1] (rounding error about 1e-5), 1e-4 absolute.
    #[test]
    fn forward_and_adjoints_match_direct_sums() {
        let shapes = [
            (3, 2, 5, 4, [3, 3], [1, 1], [1, 1], 5, 4, 3),
            (2, 3, 7, 6, [4, 4], [2, 2], [1, 1], 3, 3, 3),
            (1, 4, 6, 6, [3, 3], [2, 1], [0, 2], 2, 8, 3),
            (4, 5, 3, 3, [1, 1], [1, 1], [0, 0], 3, 3, 3),
            (2, 3, 6, 5, [3, 2], [1, 1], [2, 0], 6, 4, 3),
            (2, 2, 5, 6, [3, 3], [1, 1], [2, 2], 5, 6, 3),
            (2, 2, 1, 3, [3, 3], [1, 1], [1, 1], 1, 3, 3),
            (1, 2, 2, 1, [3, 3], [1, 1], [1, 1], 2, 1, 3),
            // One and two output channels at stride 1: sums of shifted rows (forward).
            (2, 5, 6, 5, [3, 3], [1, 1], [1, 1], 6, 5, 1),
            (2, 3, 5, 6, [2, 3], [1, 1], [0, 2], 4, 8, 2),
            // Kernel rows of at least 32 floats and 8 output channels: the channels-last path.
            (3, 8, 7, 6, [4, 4], [2, 2], [1, 1], 3, 3, 9),
            (2, 8, 6, 7, [4, 4], [2, 2], [1, 1], 4, 4, 9),
            (5, 11, 5, 5, [3, 3], [2, 2], [1, 1], 3, 3, 9),
            (2, 16, 4, 5, [2, 2], [1, 2], [0, 1], 3, 3, 9),
            (2, 7, 5, 4, [3, 5], [1, 1], [1, 2], 5, 4, 9),
            // An empty image padded into a non-empty output (all zeros but the bias).
            (2, 8, 0, 3, [4, 4], [2, 2], [2, 2], 1, 2, 9),
            (2, 3, 3, 0, [3, 3], [1, 1], [1, 2], 3, 2, 1),
        ];
        for (batch, c_in, h_in, w_in, kernel, stride, pad, h_out, w_out, c_out) in shapes {
            let s = ConvShape {
                batch,
                c_in,
                h_in,
                w_in,
                c_out,
                h_out,
                w_out,
                kernel,
                stride,
                pad,
            };
            let x = values(batch * s.in_len(), 0.3);
            let w = values(s.c_out * s.patch_len(), 1.7);
            let bias = values(s.c_out, 5.0);
            let y = forward(&s, &x, &w, Some(&bias));
            let want = direct::forward(&s, &x, &w, &bias);
            for (got, want) in y.iter().zip(&want) {
                assert!((*got as f64 - want).abs() < 1e-4, "{s:?}: {got} vs {want}");
            }
            // Patch matrices of one, two and three output rows at a time give the same.
            for tile in 1..=3 {
                let tiled = im2col::forward_in_tiles(&s, &x, &w, Some(&bias), tile);
                for (got, want) in tiled.iter().zip(&want) {
                    assert!((*got as f64 - want).abs() < 1e-4, "{s:?}, tile {tile}");
                }
            }
            let dy = values(y.len(), 9.1);
            let y0 = direct::forward(&s, &x, &w, &vec![0.0; s.c_out]);
            let lhs: f64 = dy.iter().zip(&y0).map(|(a, b)| *a as f64 * b).sum();
            let dx = backward_input(&s, &dy, &w);
            let via_x: f64 = dx
                .iter()
                .zip(&x)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum();
            let (dw, db) = backward_weight(&s, &x, &dy, true);
            let via_w: f64 = dw
                .iter()
                .zip(&w)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum();
            let scale = 1.0 + lhs.abs();
            assert!(
                (lhs - via_x).abs() < 1e-4 * scale,
                "{s:?}: {lhs} vs {via_x}"
            );
            assert!(
                (lhs - via_w).abs() < 1e-4 * scale,
                "{s:?}: {lhs} vs {via_w}"
            );
            // The fused pass gives the forward pass and the weight gradient as computed
            // apart: the same products, summed in blocks that may differ (1e-5).
            let (y_fused, dw_fused) = forward_and_backward_weight(&s, &x, &w, &dy);
            let y_apart = forward(&s, &x, &w, None);
            for (got, want) in y_fused.iter().zip(&y_apart).chain(dw_fused.iter().zip(&dw)) {
                assert!((got - want).abs() < 1e-5, "{s:?}: fused {got} vs {want}");
            }
            assert_eq!((y_fused.len(), dw_fused.len()), (y_apart.len(), dw.len()));
            // Both backward passes at once give what they give apart (1e-5, as above).
            let (dx_both, dw_both, db_both) = backward(&s, &x, &dy, &w, true);
            let db_apart = db.clone().unwrap();
            let pairs = [
                (&dx_both, &dx),
                (&dw_both, &dw),
                (&db_both.unwrap(), &db_apart),
            ];
            for (both, apart) in pairs {
                assert_eq!(both.len(), apart.len(), "{s:?}: backward lengths");
                for (got, want) in both.iter().zip(apart) {
                    assert!((got - want).abs() < 1e-5, "{s:?}: backward {got} vs {want}");
                }
            }
            let db_want = channel_sums(&dy, batch, s.c_out, s.out_pixels());
            for (got, want) in db.unwrap().iter().zip(db_want) {
                assert!(
                    (got - want).abs() < 1e-5,
                    "{s:?}: bias gradient {got} vs {want}"
                );
            }
        }
    }
}
