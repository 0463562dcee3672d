//! 2-D convolution on the CPU by im2col and one matrix product per image, with both
//! backward passes: the general path of [`conv2d`](crate::conv2d), for every shape the
//! other paths do not take.
//!
//! # Formula
//! ```text
//! cols_b[(c, i, j), (y, x)] = x_b[c, y·s_h + i − p_h, x·s_w + j − p_w]   (0 outside the image)
//! y_b  = W · cols_b + bias                      W: [C_out, C_in·k_h·k_w]
//! dW   = Σ_b dy_b · cols_bᵀ,   dbias = Σ_b Σ_(y,x) dy_b
//! dx_b = col2im(Wᵀ · dy_b)                      col2im: the adjoint of im2col
//! ```

use std::ops::Range;

use rayon::prelude::*;

use crate::conv::{ConvShape, add_partials, bias_sums, map_tasks};
use crate::matmul::{MatRef, matmul};

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
pub(crate) fn rows_per_tile(s: &ConvShape) -> usize {
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

/// The convolution `y = W ⋆ x + bias` by im2col, with a patch matrix of `tile` output
/// rows at a time ([`rows_per_tile`] by default).
pub(crate) fn forward_in_tiles(
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

/// The input gradient `dx = col2im(Wᵀ · dy)` (`dy` `[B, C_out, H_out, W_out]`), shape
/// `[B, C_in, H_in, W_in]`.
pub(crate) fn backward_input(s: &ConvShape, dy: &[f32], weight: &[f32]) -> Vec<f32> {
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

/// The weight gradient `dW = Σ_b dy_b · cols_bᵀ` (`[C_out, C_in, k_h, k_w]`), with
/// `with_bias` the bias gradient, and with `weight` also the convolution `W ⋆ x` (no bias) from the
/// same patch matrices.
///
/// The weight gradient is accumulated as its transpose, `dWᵀ = Σ_b cols_b · dy_bᵀ`
/// (`[C_in·k_h·k_w, C_out]`), and transposed once at the end: gemm runs that product, whose
/// long side is the patch length, 1.2–3.8× faster than `dy_b · cols_bᵀ` on the U-Net's and
/// the conv VAE's shapes (its packing of the transposed patch matrix was the cost).
pub(crate) fn weight_gradient_and_forward(
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
