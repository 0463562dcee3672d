//! What every convolution path shares: the shape of one convolution ([`ConvShape`]), the
//! parallel map over tasks that write consecutive parts of an output, the bias gradient's
//! per-task sums and the addition of the tasks' partial gradients; and, for the tests, the
//! convolution as direct f64 sums.
//!
//! The paths themselves are [`im2col`](crate::im2col), [`channels_last`](crate::channels_last),
//! [`winograd`](crate::winograd) and [`few_outputs`](crate::few_outputs); which one a shape
//! takes is decided in [`conv2d`](crate::conv2d).

use rayon::prelude::*;

use crate::sums::sum_by;

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
    pub(crate) fn patch_len(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }

    /// Output pixels of one image (columns of the patch matrix).
    pub(crate) fn out_pixels(&self) -> usize {
        self.h_out * self.w_out
    }

    pub(crate) fn in_len(&self) -> usize {
        self.c_in * self.h_in * self.w_in
    }

    pub(crate) fn out_len(&self) -> usize {
        self.c_out * self.out_pixels()
    }

    /// A 1×1 convolution that keeps the image: the patch matrix is the image itself.
    pub(crate) fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.pad == [0, 0]
            && (self.h_out, self.w_out) == (self.h_in, self.w_in)
    }
}

/// `work(task, its part of out)` for `tasks` tasks in parallel, collected in task order:
/// the parts are consecutive pieces of `chunk_len` values of `out`, or `None` for every
/// task when `out` is empty (a pass that writes no output).
pub(crate) fn map_tasks<R: Send>(
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
pub(crate) fn bias_sums(s: &ConvShape, dy: &[f32], with_bias: bool) -> Vec<f64> {
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
pub(crate) fn add_partials(
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
pub(crate) mod direct {
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
    pub(crate) fn forward(s: &ConvShape, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f64> {
        let mut y = vec![0.0f64; s.batch * s.out_len()];
        for (at, y_at) in y.iter_mut().enumerate() {
            *y_at = bias[at / s.out_pixels() % s.c_out] as f64;
        }
        for_each_term(s, |at, wi, xi| y[at] += w[wi] as f64 * x[xi] as f64);
        y
    }

    /// `dW[o, c, i, j] = Σ_{b,y,x} dy[b, o, y, x] x[b, c, y·s_h + i − p_h, …]`.
    pub(crate) fn weight_gradient(s: &ConvShape, x: &[f32], dy: &[f32]) -> Vec<f64> {
        let mut dw = vec![0.0f64; s.c_out * s.patch_len()];
        for_each_term(s, |at, wi, xi| dw[wi] += dy[at] as f64 * x[xi] as f64);
        dw
    }

    /// Values in [−1, 1] that differ from entry to entry.
    pub(crate) fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 0.754).sin()).collect()
    }
}
