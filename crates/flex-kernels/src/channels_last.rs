//! 2-D convolution by a pixel-major patch matrix gathered from a channels-last copy of
//! each image: the path for convolutions whose kernel rows span many floats
//! (`k_w·C_in ≥ 32`), such as the conv VAE's 4×4 stride-2 layers and the U-Net's
//! downsampling, with both backward passes.
//!
//! # Formula
//! For a tile of images `b`, output pixels `q = (y, x)` and `K = k_h·k_w·C_in`:
//! ```text
//! xpad_b[r, v, c]           = x_b[c, r − p_h, v − p_w]   (0 outside the image)   [H_p, W_p, C_in]
//! P[(b, q), (i, j, c)]      = xpad_b[y·s_h + i, x·s_w + j, c]                     [tile·H_out·W_out, K]
//! W̃[o, (i, j, c)]           = W[o, c, i, j]                                       [C_out, K]
//! Yᵀ = P · W̃ᵀ + bias         (Yᵀ[(b, q), o] = y_b[o, q])
//! dW̃ = Σ_tiles dYᵀᵀ · P,     dbias = Σ_(b, q) dYᵀ[(b, q), ·]
//! dP = dYᵀ · W̃,              dxpad_b[y·s_h + i, x·s_w + j, c] += dP[(b, q), (i, j, c)]
//! ```
//! The entries `(i, ·, ·)` of a patch are one contiguous run of `k_w·C_in` floats of
//! `xpad`, so gathering the patch matrix (and adding its gradient back) is `k_h` copies
//! of a whole run per output pixel, where the image-major im2col of
//! [`conv2d`](super::conv2d) copies runs of `W_out` floats (7 on the conv VAE's second
//! layer, one copy call each). The tile's images share one matrix product, so gemm's
//! long side is `tile·H_out·W_out` instead of `H_out·W_out`. The price is one transpose
//! of each input, output and output gradient between the channels-first tensors and
//! the channels-last scratch (8 × 8 blocks, [`transpose`](super::transpose)); within a
//! training step those read activations from memory rather than cache, and with the
//! gathers they are most of what this path spends beside gemm.

use rayon::prelude::*;

use super::conv::{ConvShape, add_partials, bias_sums, map_tasks};
use super::matmul::{MatRef, matmul};
use super::scratch::with_scratch;
use super::transpose::{transpose, transpose_strided};

/// The shortest kernel-row run (`k_w·C_in` floats) this path takes: shorter runs do not
/// pay for the transposes (with one input channel, runs of 4, this path took 1.15 ms
/// against im2col's 0.57 on the conv VAE's first layer).
const MIN_RUN: usize = 32;

/// The fewest output channels this path takes: the forward product's short side is
/// `C_out`, and below about 8 gemm runs it as little more than a matrix-vector product
/// (the U-Net's 32 → 1 output convolution was 1.3–1.8× slower here than by im2col).
const MIN_OUT_CHANNELS: usize = 8;

/// Patch-matrix floats per tile: about 1 MB, so that the matrix stays in a core's L2
/// cache between being gathered and being read by gemm.
const PATCH_BUDGET: usize = 256 * 1024;

/// Whether this path computes `s`: not a 1 × 1 convolution that keeps the image (its
/// patch matrix is the image itself, which [`conv2d`](super::conv2d) multiplies
/// directly), a kernel row of all input channels is at least [`MIN_RUN`] floats, there
/// are at least [`MIN_OUT_CHANNELS`] output channels, and neither the input nor the
/// output is empty.
pub(crate) fn applies(s: &ConvShape) -> bool {
    !s.is_pointwise()
        && s.kernel[1] * s.c_in >= MIN_RUN
        && s.c_out >= MIN_OUT_CHANNELS
        && s.out_pixels() > 0
        && s.in_len() > 0
        && s.batch > 0
}

/// The padded channels-last copy of one image: `rows × cols` pixels of `C_in` floats,
/// with every position a patch reads inside it.
#[derive(Clone, Copy)]
struct Padded {
    rows: usize,
    cols: usize,
}

impl Padded {
    fn new(s: &ConvShape) -> Self {
        Self {
            rows: (s.h_in + s.pad[0]).max((s.h_out - 1) * s.stride[0] + s.kernel[0]),
            cols: (s.w_in + s.pad[1]).max((s.w_out - 1) * s.stride[1] + s.kernel[1]),
        }
    }

    fn len(&self, s: &ConvShape) -> usize {
        self.rows * self.cols * s.c_in
    }
}

/// Images per tile: as many as keep the tile's patch matrix within [`PATCH_BUDGET`], and
/// few enough that there are about four tiles per thread.
fn images_per_tile(s: &ConvShape) -> usize {
    let by_cache = PATCH_BUDGET / (s.out_pixels() * s.patch_len()).max(1);
    let for_balance = s.batch.div_ceil(4 * rayon::current_num_threads());
    by_cache.min(for_balance).max(1)
}

/// `W̃[o, (i, j, c)] = W[o, c, i, j]`.
fn to_tap_major(s: &ConvShape, weight: &[f32]) -> Vec<f32> {
    let [kh, kw] = s.kernel;
    let mut w = vec![0.0; weight.len()];
    for o in 0..s.c_out {
        for c in 0..s.c_in {
            for i in 0..kh {
                for j in 0..kw {
                    w[((o * kh + i) * kw + j) * s.c_in + c] =
                        weight[((o * s.c_in + c) * kh + i) * kw + j];
                }
            }
        }
    }
    w
}

/// `W[o, c, i, j] = W̃[o, (i, j, c)]`: the inverse of [`to_tap_major`].
fn from_tap_major(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let [kh, kw] = s.kernel;
    let mut weight = vec![0.0; w.len()];
    for o in 0..s.c_out {
        for c in 0..s.c_in {
            for i in 0..kh {
                for j in 0..kw {
                    weight[((o * s.c_in + c) * kh + i) * kw + j] =
                        w[((o * kh + i) * kw + j) * s.c_in + c];
                }
            }
        }
    }
    weight
}

/// Writes image `x_b` (`[C_in, H_in, W_in]`) into the inside of `xpad`; the border is
/// left as it is (the caller zeroes it once per tile).
fn to_channels_last(s: &ConvShape, pad: Padded, x_b: &[f32], xpad: &mut [f32]) {
    // Row y of every channel, [C_in, W_in] (rows H_in·W_in apart), into padded row y + p_h
    // as [W_in, C_in].
    for y in 0..s.h_in {
        let first = ((y + s.pad[0]) * pad.cols + s.pad[1]) * s.c_in;
        let plane = s.h_in * s.w_in;
        transpose_strided(
            &x_b[y * s.w_in..],
            plane,
            s.c_in,
            s.w_in,
            &mut xpad[first..],
            s.c_in,
        );
    }
}

/// Reads the inside of `xpad` back into image `dx_b` (`[C_in, H_in, W_in]`): the adjoint
/// of [`to_channels_last`] (the border, which holds no pixel, is dropped).
fn from_channels_last(s: &ConvShape, pad: Padded, xpad: &[f32], dx_b: &mut [f32]) {
    // Padded row y + p_h, [W_in, C_in], into row y of every channel.
    for y in 0..s.h_in {
        let first = ((y + s.pad[0]) * pad.cols + s.pad[1]) * s.c_in;
        let plane = s.h_in * s.w_in;
        transpose_strided(
            &xpad[first..],
            s.c_in,
            s.w_in,
            s.c_in,
            &mut dx_b[y * s.w_in..],
            plane,
        );
    }
}

/// The rows of `P` of one image (`[H_out·W_out, K]`) from its padded copy: for each output
/// pixel and kernel row `i`, one run of `k_w·C_in` floats.
fn gather_patches(s: &ConvShape, pad: Padded, xpad: &[f32], p: &mut [f32]) {
    let run = s.kernel[1] * s.c_in;
    let mut patches = p.chunks_exact_mut(s.patch_len());
    for y in 0..s.h_out {
        for x in 0..s.w_out {
            let patch = patches.next().expect("P holds a row per output pixel");
            for (i, dst) in patch.chunks_exact_mut(run).enumerate() {
                let first = ((y * s.stride[0] + i) * pad.cols + x * s.stride[1]) * s.c_in;
                dst.copy_from_slice(&xpad[first..first + run]);
            }
        }
    }
}

/// Adds the rows of `dP` of one image back onto the positions of `dxpad` they were read
/// from: the adjoint of [`gather_patches`].
fn scatter_patches(s: &ConvShape, pad: Padded, dp: &[f32], dxpad: &mut [f32]) {
    let run = s.kernel[1] * s.c_in;
    let mut patches = dp.chunks_exact(s.patch_len());
    for y in 0..s.h_out {
        for x in 0..s.w_out {
            let patch = patches.next().expect("dP holds a row per output pixel");
            for (i, src) in patch.chunks_exact(run).enumerate() {
                let first = ((y * s.stride[0] + i) * pad.cols + x * s.stride[1]) * s.c_in;
                for (d, &v) in dxpad[first..first + run].iter_mut().zip(src) {
                    *d += v;
                }
            }
        }
    }
}

/// Fills `p` with the patch matrix of the images `x` (`[n, C_in, H_in, W_in]`), using
/// `xpad` for each image's padded copy.
fn gather_tile(s: &ConvShape, pad: Padded, x: &[f32], xpad: &mut [f32], p: &mut [f32]) {
    xpad.fill(0.0);
    let rows = s.out_pixels() * s.patch_len();
    for (x_b, p_b) in x.chunks_exact(s.in_len()).zip(p.chunks_exact_mut(rows)) {
        to_channels_last(s, pad, x_b, xpad);
        gather_patches(s, pad, xpad, p_b);
    }
}

/// `dYᵀ` of the images `dy` (`[n, C_out, H_out, W_out]`) into `dyt` (`[n·H_out·W_out,
/// C_out]`).
fn transpose_tile(s: &ConvShape, dy: &[f32], dyt: &mut [f32]) {
    let p = s.out_pixels();
    for (dy_b, dyt_b) in dy
        .chunks_exact(s.out_len())
        .zip(dyt.chunks_exact_mut(s.out_len()))
    {
        transpose(dy_b, s.c_out, p, dyt_b);
    }
}

/// Runs `f(first image, output tile, parallel products)` over tiles of `tile` images of
/// `out` (chunks of `out_len` per image): the tiles in parallel when there are at least
/// as many as threads, else one at a time with gemm itself parallel.
fn for_each_tile(
    out: &mut [f32],
    out_len: usize,
    tile: usize,
    f: impl Fn(usize, &mut [f32], bool) + Sync,
) {
    let tiles = (out.len() / out_len).div_ceil(tile);
    if tiles >= rayon::current_num_threads() {
        out.par_chunks_mut(tile * out_len)
            .enumerate()
            .for_each(|(t, out_t)| f(t * tile, out_t, false));
    } else {
        for (t, out_t) in out.chunks_mut(tile * out_len).enumerate() {
            f(t * tile, out_t, true);
        }
    }
}

/// The convolution `y = W ⋆ x + bias` (shapes as in [`im2col::forward_in_tiles`](super::im2col)).
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let w = to_tap_major(s, weight);
    let (k, pixels, pad) = (s.patch_len(), s.out_pixels(), Padded::new(s));
    let mut y = vec![0.0; s.batch * s.out_len()];
    let tile = images_per_tile(s);
    for_each_tile(&mut y, s.out_len(), tile, |first, y_t, parallel| {
        let n = y_t.len() / s.out_len();
        let rows = n * pixels;
        let lens = [pad.len(s), rows * k, rows * s.c_out];
        with_scratch(lens, |[xpad, p, yt]| {
            gather_tile(s, pad, &x[first * s.in_len()..][..n * s.in_len()], xpad, p);
            if let Some(bias) = bias {
                for row in yt.chunks_exact_mut(s.c_out) {
                    row.copy_from_slice(bias);
                }
            }
            let (a, b) = (MatRef::row_major(p, k), MatRef::transposed(&w, k));
            matmul(
                yt,
                s.c_out,
                bias.is_some(),
                a,
                b,
                rows,
                s.c_out,
                k,
                parallel,
            );
            for (yt_b, y_b) in yt
                .chunks_exact(s.out_len())
                .zip(y_t.chunks_exact_mut(s.out_len()))
            {
                transpose(yt_b, pixels, s.c_out, y_b);
            }
        })
    });
    y
}

/// The input gradient `dx` (`[B, C_in, H_in, W_in]`) from `dy` (`[B, C_out, H_out, W_out]`).
pub(crate) fn backward_input(s: &ConvShape, dy: &[f32], weight: &[f32]) -> Vec<f32> {
    let w = to_tap_major(s, weight);
    let (k, pixels, pad) = (s.patch_len(), s.out_pixels(), Padded::new(s));
    let mut dx = vec![0.0; s.batch * s.in_len()];
    let tile = images_per_tile(s);
    for_each_tile(&mut dx, s.in_len(), tile, |first, dx_t, parallel| {
        let n = dx_t.len() / s.in_len();
        let rows = n * pixels;
        let lens = [pad.len(s), rows * k, rows * s.c_out];
        with_scratch(lens, |[dxpad, dp, dyt]| {
            transpose_tile(s, &dy[first * s.out_len()..][..n * s.out_len()], dyt);
            let (a, b) = (MatRef::row_major(dyt, s.c_out), MatRef::row_major(&w, k));
            matmul(dp, k, false, a, b, rows, k, s.c_out, parallel);
            for (dp_b, dx_b) in dp
                .chunks_exact(pixels * k)
                .zip(dx_t.chunks_exact_mut(s.in_len()))
            {
                dxpad.fill(0.0);
                scatter_patches(s, pad, dp_b, dxpad);
                from_channels_last(s, pad, dxpad, dx_b);
            }
        })
    });
    dx
}

/// Both gradients in one pass over tiles of images: the input gradient (as
/// [`backward_input`]) and the weight gradient with, with `with_bias`, the bias gradient
/// (as [`weight_gradient_and_forward`]), sharing each tile's transposed output gradient.
pub(crate) fn backward(
    s: &ConvShape,
    x: &[f32],
    dy: &[f32],
    weight: &[f32],
    with_bias: bool,
) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    let w = to_tap_major(s, weight);
    let (k, pixels, pad) = (s.patch_len(), s.out_pixels(), Padded::new(s));
    let tile = images_per_tile(s);
    let parallel = s.batch.div_ceil(tile) < rayon::current_num_threads();
    let mut dx = vec![0.0f32; s.batch * s.in_len()];
    // Each tile writes its images' input gradients into its part of `dx` and sums its own
    // dW̃ᵀ and bias gradient; the partial sums are added after.
    let partials: Vec<(Vec<f32>, Vec<f64>)> = map_tasks(
        s.batch.div_ceil(tile),
        &mut dx,
        tile * s.in_len(),
        |t, dx_t| {
            let dx_t = dx_t.expect("dx is not empty");
            let first = t * tile;
            let n = dx_t.len() / s.in_len();
            let rows = n * pixels;
            let dy_t = &dy[first * s.out_len()..][..n * s.out_len()];
            let mut dw_t = vec![0.0f32; k * s.c_out];
            let lens = [pad.len(s), rows * k, rows * s.c_out];
            with_scratch(lens, |[xpad, p, dyt]| {
                gather_tile(s, pad, &x[first * s.in_len()..][..n * s.in_len()], xpad, p);
                transpose_tile(s, dy_t, dyt);
                let (a, b) = (MatRef::transposed(p, k), MatRef::row_major(dyt, s.c_out));
                matmul(&mut dw_t, s.c_out, false, a, b, k, s.c_out, rows, parallel);
                // The patch matrix is spent: it takes dP = dYᵀ · W̃ now.
                let (a, b) = (MatRef::row_major(dyt, s.c_out), MatRef::row_major(&w, k));
                matmul(p, k, false, a, b, rows, k, s.c_out, parallel);
                for (dp_b, dx_b) in p
                    .chunks_exact(pixels * k)
                    .zip(dx_t.chunks_exact_mut(s.in_len()))
                {
                    xpad.fill(0.0);
                    scatter_patches(s, pad, dp_b, xpad);
                    from_channels_last(s, pad, xpad, dx_b);
                }
            });
            (dw_t, bias_sums(s, dy_t, with_bias))
        },
    );
    let (dw_t, db) = add_partials(partials, k * s.c_out, s, with_bias);
    let mut dw = vec![0.0f32; dw_t.len()];
    transpose(&dw_t, k, s.c_out, &mut dw);
    (dx, from_tap_major(s, &dw), db)
}

/// The weight gradient `dW` (`[C_out, C_in, k_h, k_w]`), with `with_bias` the bias
/// gradient, and with `weight` also the convolution `W ⋆ x` (no bias) from the same patch
/// matrices (the two passes of a transposed convolution's backward).
pub(crate) fn weight_gradient_and_forward(
    s: &ConvShape,
    x: &[f32],
    dy: &[f32],
    with_bias: bool,
    weight: Option<&[f32]>,
) -> (Vec<f32>, Option<Vec<f32>>, Option<Vec<f32>>) {
    let w = weight.map(|weight| to_tap_major(s, weight));
    let (k, pixels, pad) = (s.patch_len(), s.out_pixels(), Padded::new(s));
    let tile = images_per_tile(s);
    let tiles = s.batch.div_ceil(tile);
    let parallel = tiles < rayon::current_num_threads();
    let mut y = vec![
        0.0f32;
        if w.is_some() {
            s.batch * s.out_len()
        } else {
            0
        }
    ];
    // Each tile sums its images into its own dW̃ (and bias gradient, in f64) and writes
    // its images' outputs into its part of `y`; the partial sums are added after.
    let partials: Vec<(Vec<f32>, Vec<f64>)> =
        map_tasks(tiles, &mut y, tile * s.out_len(), |t, y| {
            let images = t * tile..((t + 1) * tile).min(s.batch);
            let (n, rows) = (images.len(), images.len() * pixels);
            let x_t = &x[images.start * s.in_len()..][..n * s.in_len()];
            let dy_t = &dy[images.start * s.out_len()..][..n * s.out_len()];
            let mut dw = vec![0.0f32; s.c_out * k];
            let lens = [pad.len(s), rows * k, rows * s.c_out];
            with_scratch(lens, |[xpad, p, yt]| {
                gather_tile(s, pad, x_t, xpad, p);
                if let (Some(w), Some(y)) = (&w, y) {
                    let (a, b) = (MatRef::row_major(p, k), MatRef::transposed(w, k));
                    matmul(yt, s.c_out, false, a, b, rows, s.c_out, k, parallel);
                    for (yt_b, y_b) in yt
                        .chunks_exact(s.out_len())
                        .zip(y.chunks_exact_mut(s.out_len()))
                    {
                        transpose(yt_b, pixels, s.c_out, y_b);
                    }
                }
                transpose_tile(s, dy_t, yt);
                let (a, b) = (MatRef::transposed(p, k), MatRef::row_major(yt, s.c_out));
                matmul(&mut dw, s.c_out, false, a, b, k, s.c_out, rows, parallel);
            });
            (dw, bias_sums(s, dy_t, with_bias))
        });
    let (dw, db) = add_partials(partials, s.c_out * k, s, with_bias);
    let mut dw_t = vec![0.0f32; dw.len()];
    transpose(&dw, k, s.c_out, &mut dw_t);
    (from_tap_major(s, &dw_t), db, w.is_some().then_some(y))
}
