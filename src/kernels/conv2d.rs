//! 2-D convolution on the CPU by im2col and one matrix product per image, with both
//! backward passes: the three kernels behind [`conv2d`](super::conv2d) and
//! [`conv_transpose2d`](super::conv_transpose2d) on flex.
//!
//! # Formula
//! ```text
//! cols_b[(c, i, j), (y, x)] = x_b[c, y·s_h + i − p_h, x·s_w + j − p_w]   (0 outside the image)
//! y_b  = W · cols_b + bias                      W: [C_out, C_in·k_h·k_w]
//! dW   = Σ_b dy_b · cols_bᵀ,   dbias = Σ_b Σ_(y,x) dy_b
//! dx_b = col2im(Wᵀ · dy_b)                      col2im: the adjoint of im2col
//! ```
//! A transposed convolution is the adjoint of a convolution: its forward pass is the
//! convolution's input gradient, and its backward passes are the convolution's forward
//! pass and weight gradient with the roles of input and output exchanged. 3×3 stride-1
//! convolutions with enough channels go to [`winograd`](super::winograd) instead (forward
//! pass and weight gradient; the input gradient is such a convolution too), and other
//! kernels whose rows span enough channels to [`channels_last`](super::channels_last).

use std::ops::Range;

use rayon::prelude::*;

use super::matmul::{MatRef, matmul};
use super::sums::sum_by;
use super::{channels_last, few_outputs, winograd};

/// The shape of one convolution `x [B, C_in, H_in, W_in] → y [B, C_out, H_out, W_out]`
/// with a `[C_out, C_in, k_h, k_w]` kernel (no groups, no dilation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvShape {
    pub batch: usize,
    pub c_in: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub c_out: usize,
    pub h_out: usize,
    pub w_out: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zero rows and columns before the first input row and column; the padding after
    /// the last is whatever the output size implies.
    pub pad: [usize; 2],
}

impl ConvShape {
    /// Rows of the patch matrix: `C_in · k_h · k_w`.
    pub(super) fn patch_len(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }

    /// Output pixels of one image (columns of the patch matrix).
    pub(super) fn out_pixels(&self) -> usize {
        self.h_out * self.w_out
    }

    pub(super) fn in_len(&self) -> usize {
        self.c_in * self.h_in * self.w_in
    }

    pub(super) fn out_len(&self) -> usize {
        self.c_out * self.out_pixels()
    }

    /// A 1×1 convolution that keeps the image: the patch matrix is the image itself.
    pub(super) fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.pad == [0, 0]
            && (self.h_out, self.w_out) == (self.h_in, self.w_in)
    }
}

/// The output columns `x` whose input column `x·s + j − p` lies in `0..w_in`, as
/// `lo..hi` (empty when none does).
fn valid_columns(j: usize, s: usize, p: usize, w_in: usize, w_out: usize) -> (usize, usize) {
    let lo = if p > j { (p - j).div_ceil(s) } else { 0 };
    let hi = if w_in + p > j {
        ((w_in + p - j - 1) / s + 1).min(w_out)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// The `[C_in·k_h·k_w, rows·W_out]` patch matrix of the output rows `rows` of one image
/// `x` (`[C_in, H_in, W_in]`).
fn im2col(s: &ConvShape, x: &[f32], rows: Range<usize>, cols: &mut [f32]) {
    let [kh, kw] = s.kernel;
    let plane_len = s.h_in * s.w_in;
    let pixels = rows.len() * s.w_out;
    if pixels == 0 {
        return;
    }
    if s.stride == [1, 1] && s.w_out == s.w_in {
        for c in 0..s.c_in {
            let plane = &x[c * plane_len..(c + 1) * plane_len];
            for i in 0..kh {
                for j in 0..kw {
                    let row = &mut cols[((c * kh + i) * kw + j) * pixels..][..pixels];
                    let (lo, hi) = valid_columns(j, 1, s.pad[1], s.w_in, s.w_out);
                    shifted_plane(s, plane, row, rows.clone(), i, j, lo, hi);
                }
            }
        }
        return;
    }
    let phases = ColumnPhases::new(s, rows.clone());
    let mut q = vec![0.0; phases.len()];
    for c in 0..s.c_in {
        phases.gather(&x[c * plane_len..(c + 1) * plane_len], &mut q);
        for i in 0..kh {
            for j in 0..kw {
                let row = &mut cols[((c * kh + i) * kw + j) * pixels..][..pixels];
                for (y, out) in row.chunks_exact_mut(s.w_out).enumerate() {
                    out.copy_from_slice(&q[phases.start(y, i, j)..][..s.w_out]);
                }
            }
        }
    }
}

/// The input rows that a range of output rows reads, zero-padded and split by column
/// phase (`x mod s_w`), so that every segment of a patch-matrix row is one contiguous copy
/// whatever the stride and padding.
///
/// # Formula
/// ```text
/// q[b, r, v] = x[r0 + r − p_h, v·s_w + b − p_w]   (0 outside the image)
///     b < s_w,  r < (n − 1)·s_h + k_h,  v < W_out + ⌊(k_w − 1)/s_w⌋,  r0 = y0·s_h
/// x[y·s_h + i − p_h, x·s_w + j − p_w] = q[j mod s_w, (y − y0)·s_h + i, ⌊j/s_w⌋ + x]
/// ```
/// for the `n` output rows `y0..y0 + n`.
struct ColumnPhases<'a> {
    s: &'a ConvShape,
    /// The first input row held, in padded coordinates: `y0·s_h`.
    first: usize,
    /// Padded input rows held: `(n − 1)·s_h + k_h`.
    rows: usize,
    /// Entries per phase row: `W_out + ⌊(k_w − 1)/s_w⌋`.
    width: usize,
}

impl<'a> ColumnPhases<'a> {
    fn new(s: &'a ConvShape, rows: Range<usize>) -> Self {
        Self {
            s,
            first: rows.start * s.stride[0],
            rows: rows.len().saturating_sub(1) * s.stride[0] + s.kernel[0],
            width: s.w_out + (s.kernel[1] - 1) / s.stride[1],
        }
    }

    /// Entries of `q`: `s_w` phases of `rows × width`.
    fn len(&self) -> usize {
        self.s.stride[1] * self.rows * self.width
    }

    /// Where the `W_out` inputs of kernel tap `(i, j)` for output row `y0 + y` start in `q`.
    fn start(&self, y: usize, i: usize, j: usize) -> usize {
        let sw = self.s.stride[1];
        ((j % sw) * self.rows + y * self.s.stride[0] + i) * self.width + j / sw
    }

    /// The input row of padded row `r`, if it lies inside the image.
    fn input_row(&self, r: usize) -> Option<usize> {
        (self.first + r)
            .checked_sub(self.s.pad[0])
            .filter(|&iy| iy < self.s.h_in)
    }

    /// The entries `lo..hi` of phase `b`'s rows that lie inside the image, and the input
    /// column of entry `lo` (entry `v` reads column `v·s_w + b − p_w`; 0 when none does).
    fn valid(&self, b: usize) -> (usize, usize, usize) {
        let (sw, pw) = (self.s.stride[1], self.s.pad[1]);
        let (lo, hi) = valid_columns(b, sw, pw, self.s.w_in, self.width);
        (lo, hi, if lo < hi { lo * sw + b - pw } else { 0 })
    }

    /// Fills `q` from one input plane `[H_in, W_in]`.
    fn gather(&self, plane: &[f32], q: &mut [f32]) {
        let sw = self.s.stride[1];
        for (b, phase) in q.chunks_exact_mut(self.rows * self.width).enumerate() {
            let (lo, hi, x0) = self.valid(b);
            for (r, q_row) in phase.chunks_exact_mut(self.width).enumerate() {
                let Some(iy) = self.input_row(r) else {
                    q_row.fill(0.0);
                    continue;
                };
                let src = &plane[iy * self.s.w_in..][..self.s.w_in];
                q_row[..lo].fill(0.0);
                q_row[hi..].fill(0.0);
                for (d, &v) in q_row[lo..hi].iter_mut().zip(src[x0..].iter().step_by(sw)) {
                    *d = v;
                }
            }
        }
    }

    /// Adds `q` onto the input plane it would be gathered from: the adjoint of
    /// [`gather`](Self::gather).
    fn scatter_add(&self, q: &[f32], plane: &mut [f32]) {
        let sw = self.s.stride[1];
        for (b, phase) in q.chunks_exact(self.rows * self.width).enumerate() {
            let (lo, hi, x0) = self.valid(b);
            for (r, q_row) in phase.chunks_exact(self.width).enumerate() {
                let Some(iy) = self.input_row(r) else {
                    continue;
                };
                let dst = &mut plane[iy * self.s.w_in..][..self.s.w_in];
                for (d, &v) in dst[x0..].iter_mut().step_by(sw).zip(&q_row[lo..hi]) {
                    *d += v;
                }
            }
        }
    }
}

/// One patch-matrix row of a stride-1 convolution that keeps the width, over the output
/// rows `rows`: the plane shifted by `(i − p_h, j − p_w)`, which is one contiguous copy
/// (`row[q − rows.start·W] = plane[q + d]`, `d = (i − p_h)·W + j − p_w`, `q = y·W + x`),
/// then zeros where the shift leaves the image: the rows above and below, and the
/// `lo`/`hi` border columns of each row.
#[allow(clippy::too_many_arguments)]
fn shifted_plane(
    s: &ConvShape,
    plane: &[f32],
    row: &mut [f32],
    rows: Range<usize>,
    i: usize,
    j: usize,
    lo: usize,
    hi: usize,
) {
    let w = s.w_in;
    let [ph, pw] = s.pad;
    // Rows of `rows` whose input row y + i − p_h lies inside the image.
    let y0 = ph.saturating_sub(i).clamp(rows.start, rows.end);
    let y1 = (s.h_in + ph).saturating_sub(i).clamp(y0, rows.end);
    let d = (i as isize - ph as isize) * w as isize + j as isize - pw as isize;
    let (start, end) = (y0 * w, y1 * w);
    // Clip the copy to the plane; what is cut off lies in the border columns.
    let a = start.max((-d).max(0) as usize).min(end);
    let b = end.min((plane.len() as isize - d).max(0) as usize).max(a);
    let offset = rows.start * w;
    row[..a - offset].fill(0.0);
    if b > a {
        row[a - offset..b - offset]
            .copy_from_slice(&plane[(a as isize + d) as usize..(b as isize + d) as usize]);
    }
    row[b - offset..].fill(0.0);
    for y in y0..y1 {
        let r = (y - rows.start) * w;
        row[r..r + lo].fill(0.0);
        row[r + hi..r + w].fill(0.0);
    }
}

/// Output rows per patch matrix in the forward pass: as many as keep the matrix within
/// about 384 KB (so it stays in a core's L2 cache while gemm reads it), at least one.
/// On the DDPM U-Net this makes the widest convolution (`C_in·9 = 864` rows) 25% faster
/// than one matrix per image.
fn rows_per_tile(s: &ConvShape) -> usize {
    const BUDGET: usize = 96 * 1024;
    (BUDGET / (s.patch_len() * s.w_out).max(1)).clamp(1, s.h_out.max(1))
}

/// The adjoint of [`im2col`] over all output rows: adds every patch-matrix entry back onto
/// the input pixel it was read from (`dx` is `[C_in, H_in, W_in]`, zeroed by the caller).
fn col2im(s: &ConvShape, cols: &[f32], dx: &mut [f32]) {
    let [kh, kw] = s.kernel;
    let plane_len = s.h_in * s.w_in;
    let pixels = s.out_pixels();
    if pixels == 0 {
        return;
    }
    let phases = ColumnPhases::new(s, 0..s.h_out);
    let mut q = vec![0.0; phases.len()];
    for c in 0..s.c_in {
        q.fill(0.0);
        for i in 0..kh {
            for j in 0..kw {
                let row = &cols[((c * kh + i) * kw + j) * pixels..][..pixels];
                for (y, src) in row.chunks_exact(s.w_out).enumerate() {
                    let dst = &mut q[phases.start(y, i, j)..][..s.w_out];
                    for (d, v) in dst.iter_mut().zip(src) {
                        *d += v;
                    }
                }
            }
        }
        phases.scatter_add(&q, &mut dx[c * plane_len..(c + 1) * plane_len]);
    }
}

/// Images per parallel task: about four tasks per thread, so a busy core does not hold
/// the others up, and one patch buffer per task.
fn images_per_task(batch: usize) -> usize {
    batch.div_ceil(4 * rayon::current_num_threads()).max(1)
}

/// Runs `f(image index, output image, patch buffer)` over the images of `out` (chunks
/// of `out_len`): in parallel over images when there are enough of them, else one image
/// at a time with the matrix products themselves parallel (`f`'s last argument).
fn for_each_image(
    out: &mut [f32],
    out_len: usize,
    buffer_len: usize,
    f: impl Fn(usize, &mut [f32], &mut Vec<f32>, bool) + Sync,
) {
    if out_len == 0 {
        // Empty images (an empty input's gradient): nothing to write.
        return;
    }
    let batch = out.len() / out_len;
    if batch >= rayon::current_num_threads() {
        let per_task = images_per_task(batch);
        out.par_chunks_mut(per_task * out_len)
            .enumerate()
            .for_each(|(task, images)| {
                let mut buffer = vec![0.0; buffer_len];
                for (i, image) in images.chunks_mut(out_len).enumerate() {
                    f(task * per_task + i, image, &mut buffer, false);
                }
            });
    } else {
        let mut buffer = vec![0.0; buffer_len];
        for (b, image) in out.chunks_mut(out_len).enumerate() {
            f(b, image, &mut buffer, true);
        }
    }
}

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
    forward_in_tiles(s, x, weight, bias, rows_per_tile(s))
}

/// [`forward`] with a patch matrix of `tile` output rows at a time.
fn forward_in_tiles(
    s: &ConvShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    tile: usize,
) -> Vec<f32> {
    let (k, p) = (s.patch_len(), s.out_pixels());
    let mut y = vec![0.0; s.batch * s.out_len()];
    let buffer_len = if s.is_pointwise() {
        0
    } else {
        k * tile * s.w_out
    };
    for_each_image(&mut y, s.out_len(), buffer_len, |b, y_b, cols, parallel| {
        let x_b = &x[b * s.in_len()..(b + 1) * s.in_len()];
        if let Some(bias) = bias {
            for (row, &value) in y_b.chunks_mut(p).zip(bias) {
                row.fill(value);
            }
        }
        let w = MatRef::row_major(weight, k);
        if s.is_pointwise() {
            let patches = MatRef::row_major(x_b, p);
            matmul(y_b, p, bias.is_some(), w, patches, s.c_out, p, k, parallel);
            return;
        }
        for y0 in (0..s.h_out).step_by(tile) {
            let rows = y0..(y0 + tile).min(s.h_out);
            let n = rows.len() * s.w_out;
            im2col(s, x_b, rows, cols);
            let patches = MatRef::row_major(&cols[..k * n], n);
            let dst = &mut y_b[y0 * s.w_out..];
            matmul(dst, p, bias.is_some(), w, patches, s.c_out, n, k, parallel);
        }
    });
    y
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

/// The input gradient `dx = col2im(Wᵀ · dy)` (`dy` `[B, C_out, H_out, W_out]`), shape
/// `[B, C_in, H_in, W_in]`; for stride 1, the equal convolution of [`flipped`].
pub(crate) fn backward_input(s: &ConvShape, dy: &[f32], weight: &[f32]) -> Vec<f32> {
    if !s.is_pointwise()
        && let Some((shape, w)) = flipped(s, weight)
    {
        return forward(&shape, dy, &w, None);
    }
    if channels_last::applies(s) {
        return channels_last::backward_input(s, dy, weight);
    }
    let (k, p) = (s.patch_len(), s.out_pixels());
    let mut dx = vec![0.0; s.batch * s.in_len()];
    let buffer_len = if s.is_pointwise() { 0 } else { k * p };
    for_each_image(
        &mut dx,
        s.in_len(),
        buffer_len,
        |b, dx_b, dcols, parallel| {
            let dy_b = MatRef::row_major(&dy[b * s.out_len()..(b + 1) * s.out_len()], p);
            let w_t = MatRef::transposed(weight, k);
            if s.is_pointwise() {
                matmul(dx_b, p, false, w_t, dy_b, k, p, s.c_out, parallel);
            } else {
                matmul(dcols, p, false, w_t, dy_b, k, p, s.c_out, parallel);
                col2im(s, dcols, dx_b);
            }
        },
    );
    dx
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
        weight_gradient_and_forward(s, x, dy, with_bias, None)
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
        weight_gradient_and_forward(s, x, g, false, Some(weight))
    };
    (y.unwrap_or_default(), dw)
}

/// [`backward_weight`], and with `weight` also the convolution `W ⋆ x` (no bias) from the
/// same patch matrices.
///
/// The weight gradient is accumulated as its transpose, `dWᵀ = Σ_b cols_b · dy_bᵀ`
/// (`[C_in·k_h·k_w, C_out]`), and transposed once at the end: gemm runs that product, whose
/// long side is the patch length, 1.2–3.8× faster than `dy_b · cols_bᵀ` on the U-Net's and
/// the conv VAE's shapes (its packing of the transposed patch matrix was the cost).
fn weight_gradient_and_forward(
    s: &ConvShape,
    x: &[f32],
    dy: &[f32],
    with_bias: bool,
    weight: Option<&[f32]>,
) -> (Vec<f32>, Option<Vec<f32>>, Option<Vec<f32>>) {
    let (k, p) = (s.patch_len(), s.out_pixels());
    let per_task = images_per_task(s.batch);
    let tasks = s.batch.div_ceil(per_task);
    let parallel_products = tasks < rayon::current_num_threads();
    let mut y = vec![
        0.0f32;
        if weight.is_some() {
            s.batch * s.out_len()
        } else {
            0
        }
    ];
    // Each task sums its images into its own transposed gradient (and writes its images'
    // outputs into its part of `y`); the partial sums are added after.
    let partials: Vec<(Vec<f32>, Vec<f64>)> =
        map_tasks(tasks, &mut y, per_task * s.out_len(), |task, mut y| {
            let images = task * per_task..((task + 1) * per_task).min(s.batch);
            let (first, n_images) = (images.start, images.len());
            let mut dw_t = vec![0.0f32; k * s.c_out];
            let mut cols = vec![0.0f32; if s.is_pointwise() { 0 } else { k * p }];
            for (n, b) in images.enumerate() {
                let x_b = &x[b * s.in_len()..(b + 1) * s.in_len()];
                let dy_b = &dy[b * s.out_len()..(b + 1) * s.out_len()];
                let patches = if s.is_pointwise() {
                    x_b
                } else {
                    im2col(s, x_b, 0..s.h_out, &mut cols);
                    cols.as_slice()
                };
                let patches = MatRef::row_major(patches, p);
                if let (Some(weight), Some(y)) = (weight, y.as_deref_mut()) {
                    let y_b = &mut y[n * s.out_len()..(n + 1) * s.out_len()];
                    let w = MatRef::row_major(weight, k);
                    matmul(y_b, p, false, w, patches, s.c_out, p, k, parallel_products);
                }
                let dy_t = MatRef::transposed(dy_b, p);
                matmul(
                    &mut dw_t,
                    s.c_out,
                    true,
                    patches,
                    dy_t,
                    k,
                    s.c_out,
                    p,
                    parallel_products,
                );
            }
            let dy_task = &dy[first * s.out_len()..][..n_images * s.out_len()];
            (dw_t, bias_sums(s, dy_task, with_bias))
        });
    let (dw_t, db) = add_partials(partials, k * s.c_out, s, with_bias);
    let mut dw = vec![0.0f32; s.c_out * k];
    for (i, row) in dw_t.chunks_exact(s.c_out).enumerate() {
        for (o, &v) in row.iter().enumerate() {
            dw[o * k + i] = v;
        }
    }
    (dw, db, weight.is_some().then_some(y))
}

/// `work(task, its part of out)` for `tasks` tasks in parallel, collected in task order:
/// the parts are consecutive pieces of `chunk_len` values of `out`, or `None` for every
/// task when `out` is empty (a pass that writes no output).
pub(super) fn map_tasks<R: Send>(
    tasks: usize,
    out: &mut [f32],
    chunk_len: usize,
    work: impl Fn(usize, Option<&mut [f32]>) -> R + Sync + Send,
) -> Vec<R> {
    if out.is_empty() {
        (0..tasks).into_par_iter().map(|t| work(t, None)).collect()
    } else {
        out.par_chunks_mut(chunk_len)
            .enumerate()
            .map(|(t, part)| work(t, Some(part)))
            .collect()
    }
}

/// One task's share of a bias gradient: `Σ_b Σ_pixels dy[b, o, ·]` per output channel over
/// the images `dy` (`[n, C_out, H_out, W_out]`), in f64; empty without a bias.
pub(super) fn bias_sums(s: &ConvShape, dy: &[f32], with_bias: bool) -> Vec<f64> {
    let mut sums = vec![0.0f64; if with_bias { s.c_out } else { 0 }];
    for image in dy.chunks_exact(s.out_len()) {
        for (sum, plane) in sums.iter_mut().zip(image.chunks_exact(s.out_pixels())) {
            *sum += sum_by(plane, |v| v);
        }
    }
    sums
}

/// The tasks' partial weight gradients (`dw_len` values each) and bias gradients (as
/// [`bias_sums`]) added up: `(Σ dW, Σ db)`, the latter as f32 when there is a bias.
pub(super) fn add_partials(
    partials: Vec<(Vec<f32>, Vec<f64>)>,
    dw_len: usize,
    s: &ConvShape,
    with_bias: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let mut dw = vec![0.0f32; dw_len];
    let mut db = vec![0.0f64; if with_bias { s.c_out } else { 0 }];
    for (part_w, part_b) in partials {
        dw.iter_mut().zip(part_w).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(part_b).for_each(|(a, b)| *a += b);
    }
    (
        dw,
        with_bias.then(|| db.into_iter().map(|v| v as f32).collect()),
    )
}

/// `Σ_b Σ_pixels t[b, c, ·]` for `t` `[batch, channels, pixels]`: the bias gradient of a
/// transposed convolution.
pub(crate) fn channel_sums(t: &[f32], batch: usize, channels: usize, pixels: usize) -> Vec<f32> {
    let mut sums = vec![0.0f64; channels];
    for image in t.chunks(channels * pixels).take(batch) {
        for (sum, row) in sums.iter_mut().zip(image.chunks(pixels)) {
            *sum += sum_by(row, |v| v);
        }
    }
    sums.into_iter().map(|v| v as f32).collect()
}

/// The tests' reference: a convolution and its weight gradient as direct sums in f64.
#[cfg(test)]
pub(super) mod direct {
    use super::ConvShape;

    /// Calls `f(output index, weight index, input index)` for every term of every output:
    /// `y[b, o, y, x]` reads `W[o, c, i, j] · x[b, c, y·s_h + i − p_h, x·s_w + j − p_w]`
    /// for the `(c, i, j)` whose input pixel lies inside the image.
    fn for_each_term(s: &ConvShape, mut f: impl FnMut(usize, usize, usize)) {
        let [kh, kw] = s.kernel;
        for b in 0..s.batch {
            for o in 0..s.c_out {
                for oy in 0..s.h_out {
                    for ox in 0..s.w_out {
                        let at = ((b * s.c_out + o) * s.h_out + oy) * s.w_out + ox;
                        for c in 0..s.c_in {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let iy = (oy * s.stride[0] + i).checked_sub(s.pad[0]);
                                    let ix = (ox * s.stride[1] + j).checked_sub(s.pad[1]);
                                    let (Some(iy), Some(ix)) = (iy, ix) else {
                                        continue;
                                    };
                                    if iy < s.h_in && ix < s.w_in {
                                        let wi = ((o * s.c_in + c) * kh + i) * kw + j;
                                        let xi = ((b * s.c_in + c) * s.h_in + iy) * s.w_in + ix;
                                        f(at, wi, xi);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `y[b, o, y, x] = bias[o] + Σ_{c,i,j} W[o, c, i, j] x[b, c, y·s_h + i − p_h, …]`.
    pub(in crate::kernels) fn forward(
        s: &ConvShape,
        x: &[f32],
        w: &[f32],
        bias: &[f32],
    ) -> Vec<f64> {
        let mut y = vec![0.0f64; s.batch * s.out_len()];
        for (at, y_at) in y.iter_mut().enumerate() {
            *y_at = bias[at / s.out_pixels() % s.c_out] as f64;
        }
        for_each_term(s, |at, wi, xi| y[at] += w[wi] as f64 * x[xi] as f64);
        y
    }

    /// `dW[o, c, i, j] = Σ_{b,y,x} dy[b, o, y, x] x[b, c, y·s_h + i − p_h, …]`.
    pub(in crate::kernels) fn weight_gradient(s: &ConvShape, x: &[f32], dy: &[f32]) -> Vec<f64> {
        let mut dw = vec![0.0f64; s.c_out * s.patch_len()];
        for_each_term(s, |at, wi, xi| dw[wi] += dy[at] as f64 * x[xi] as f64);
        dw
    }

    /// Values in [−1, 1] that differ from entry to entry.
    pub(in crate::kernels) fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 0.754).sin()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::direct::values;
    use super::*;

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
                let tiled = forward_in_tiles(&s, &x, &w, Some(&bias), tile);
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
