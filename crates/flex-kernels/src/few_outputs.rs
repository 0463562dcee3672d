//! Stride-1 convolutions into a few output channels (the DDPM U-Net's 32 → 1 output layer)
//! as sums of shifted input rows, forward pass only.
//!
//! im2col builds a patch matrix `C_in·k_h·k_w` times the size of the output (288 rows of
//! the image's 784 pixels for the U-Net's last layer) for a product with a single row of
//! weights, so nearly all its time is the copy. Here the output is accumulated from
//! shifted copies of each padded input plane, in place: on a grid as wide as the padded
//! plane (`W_p = W_out + k_w − 1` columns, the last `k_w − 1` of each row never read out),
//! every shift is one contiguous multiply-add over the whole grid.
//!
//! # Formula
//! ```text
//! g_o[q] = bias[o] + Σ_{c, i, j} W[o, c, i, j] · xpad_c[q + i·W_p + j]     q = y·W_p + x
//! xpad_c[r·W_p + v] = x[c, r − p_h, v − p_w]   (0 outside the image)
//! y[o, y, x] = g_o[y·W_p + x]   for x < W_out
//! ```

use rayon::prelude::*;

use super::conv::ConvShape;
use super::scratch::with_scratch;

/// The most output channels this path takes: each takes its own pass over every shifted
/// row, so with more, one matrix product over a patch matrix wins.
const MAX_OUT_CHANNELS: usize = 4;

/// Whether this path computes the forward pass of `s`: stride 1, a kernel larger than
/// 1 × 1, at most [`MAX_OUT_CHANNELS`] output channels, and a non-empty input and output.
pub(crate) fn applies(s: &ConvShape) -> bool {
    s.stride == [1, 1]
        && s.kernel != [1, 1]
        && s.c_out <= MAX_OUT_CHANNELS
        && s.out_pixels() > 0
        && s.in_len() > 0
        && s.batch > 0
}

/// The convolution `y = W ⋆ x + bias` of a shape that [`applies`].
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let [kh, kw] = s.kernel;
    // Every position a shift reads lies inside the padded plane, but for the grid's
    // unread columns of its last row, which read up to `k_w − 1` values past its end.
    let (rows, cols) = (s.h_out - 1 + kh, s.w_out - 1 + kw);
    let grid_len = s.h_out * cols;
    let mut y = vec![0.0f32; s.batch * s.out_len()];
    y.par_chunks_mut(s.out_len())
        .zip(x.par_chunks(s.in_len()))
        .for_each(|(y_b, x_b)| {
            let lens = [rows * cols + kw, s.c_out * grid_len];
            with_scratch(lens, |[xpad, grids]| {
                xpad.fill(0.0);
                for (o, g_o) in grids.chunks_exact_mut(grid_len).enumerate() {
                    g_o.fill(bias.map_or(0.0, |b| b[o]));
                }
                for (c, x_c) in x_b.chunks_exact(s.h_in * s.w_in).enumerate() {
                    pad_plane(s, cols, x_c, &mut xpad[..rows * cols]);
                    for (o, g_o) in grids.chunks_exact_mut(grid_len).enumerate() {
                        let w_oc = &weight[(o * s.c_in + c) * kh * kw..][..kh * kw];
                        add_shifts(s, cols, xpad, w_oc, g_o);
                    }
                }
                for (g_o, y_o) in grids
                    .chunks_exact(grid_len)
                    .zip(y_b.chunks_exact_mut(s.out_pixels()))
                {
                    for (g_row, y_row) in g_o.chunks_exact(cols).zip(y_o.chunks_exact_mut(s.w_out))
                    {
                        y_row.copy_from_slice(&g_row[..s.w_out]);
                    }
                }
            });
        });
    y
}

/// Copies the plane `x_c` into the inside of `xpad` (rows `cols` apart), whose border
/// stays 0: the padded rows and columns are those that hold no input pixel, the same for
/// every plane.
fn pad_plane(s: &ConvShape, cols: usize, x_c: &[f32], xpad: &mut [f32]) {
    let rows = xpad.len() / cols;
    for (r, row) in xpad.chunks_exact_mut(cols).enumerate().take(rows) {
        let Some(iy) = r.checked_sub(s.pad[0]).filter(|&iy| iy < s.h_in) else {
            continue;
        };
        // Input columns 0..W_in land at padded columns p_w.., clipped to the plane.
        let n = s.w_in.min(cols.saturating_sub(s.pad[1]));
        if n > 0 {
            row[s.pad[1]..s.pad[1] + n].copy_from_slice(&x_c[iy * s.w_in..][..n]);
        }
    }
}

/// `g_o[q] += Σ_{i,j} w[i, j] · xpad[q + i·W_p + j]` over the whole grid.
fn add_shifts(s: &ConvShape, cols: usize, xpad: &[f32], w: &[f32], g_o: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { add_shifts_avx512(s, cols, xpad, w, g_o) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { add_shifts_avx2(s, cols, xpad, w, g_o) };
    }
    add_shifts_generic(s, cols, xpad, w, g_o);
}

/// [`add_shifts_generic`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn add_shifts_avx512(s: &ConvShape, cols: usize, xpad: &[f32], w: &[f32], g_o: &mut [f32]) {
    add_shifts_generic(s, cols, xpad, w, g_o);
}

/// [`add_shifts_generic`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_shifts_avx2(s: &ConvShape, cols: usize, xpad: &[f32], w: &[f32], g_o: &mut [f32]) {
    add_shifts_generic(s, cols, xpad, w, g_o);
}

#[inline(always)]
fn add_shifts_generic(s: &ConvShape, cols: usize, xpad: &[f32], w: &[f32], g_o: &mut [f32]) {
    for (i, w_i) in w.chunks_exact(s.kernel[1]).enumerate() {
        for (j, &w_ij) in w_i.iter().enumerate() {
            let shifted = &xpad[i * cols + j..][..g_o.len()];
            for (d, &v) in g_o.iter_mut().zip(shifted) {
                *d += w_ij * v;
            }
        }
    }
}
