//! Depthwise 2-D convolution (one filter per channel, `groups = C_in = C_out`, stride 1):
//! the kernel behind [`conv2d`](super::conv2d) for such layers on flex, forward and both
//! backward passes, parallel over the `[batch, channels]` planes. burn's flex backend runs
//! the forward pass well but computes the weight gradient as a grouped convolution whose
//! kernel is the whole output map, after transposing copies of the input; NVAE's decoder
//! cells (a 5×5 depthwise convolution each) spent most of their backward pass there.
//!
//! # Formula
//! ```text
//! y[b, c, i, j] = bias_c + Σ_{p, q} w[c, p, q] · x̃[b, c, i + p, j + q]
//! dx = the same correlation of d̃y (padded by k − 1 − pad) with the flipped filter
//! dw[c, p, q] = Σ_b Σ_{i, j} dy[b, c, i, j] · x̃[b, c, i + p, j + q],   dbias_c = Σ dy[b, c, ·]
//! ```
//! where `x̃` is `x` with `pad` zeros around it.
//!
//! Each plane is copied into a zero-padded buffer of width `W̃ = W + left + right` and the
//! output computed on that width: every filter tap is then one contiguous multiply-add
//! over `H_out · W̃` values (the last `k_w − 1` columns of each row are discarded), a loop
//! that vectorises, where rows of 7 or 14 pixels would not.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::fast_math::sigmoid;
use super::uninit::vec_written_by;

/// A depthwise convolution of `x [batch, channels, h_in, w_in]` by `[channels, 1, k_h,
/// k_w]` filters with zero padding `[top, left, bottom, right]`, stride 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DepthwiseShape {
    pub batch: usize,
    pub channels: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub kernel: [usize; 2],
    pub pad: [usize; 4],
}

impl DepthwiseShape {
    pub fn h_out(&self) -> usize {
        self.h_in + self.pad[0] + self.pad[2] + 1 - self.kernel[0]
    }

    pub fn w_out(&self) -> usize {
        self.w_in + self.pad[1] + self.pad[3] + 1 - self.kernel[1]
    }

    /// The correlation that computes the input gradient: from the output's size to the
    /// input's, padded by `k − 1 − pad` on each side (every pad is at most `k − 1`).
    fn adjoint(&self) -> DepthwiseShape {
        let [kh, kw] = self.kernel;
        let [top, left, bottom, right] = self.pad;
        DepthwiseShape {
            h_in: self.h_out(),
            w_in: self.w_out(),
            pad: [kh - 1 - top, kw - 1 - left, kh - 1 - bottom, kw - 1 - right],
            ..*self
        }
    }

    fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }

    /// The padded width `W̃ = W + left + right`, at which the output is computed.
    fn wide(&self) -> usize {
        self.w_in + self.pad[1] + self.pad[3]
    }

    /// One plane's accumulators: the output at the padded width, in whole blocks.
    fn acc_len(&self) -> usize {
        (self.h_out() * self.wide()).div_ceil(BLOCK) * BLOCK
    }

    /// How far into the padded buffer the taps of the last block read: the buffer's least
    /// length for the forward pass.
    fn taps_reach(&self) -> usize {
        let [kh, kw] = self.kernel;
        self.acc_len() + (kh - 1) * self.wide() + kw - 1
    }

    /// The padded buffer's length: the padded plane, `(h_in + top + bottom) × W̃` values
    /// and `k_w − 1` more, or `min_len` if that is longer.
    fn padded_len(&self, min_len: usize) -> usize {
        ((self.h_in + self.pad[0] + self.pad[2]) * self.wide() + self.kernel[1] - 1).max(min_len)
    }
}

/// One plane's buffers: the zero-padded input and the wide output. A task reuses them for
/// every plane of one call (all of one shape), so the zeros around the input, written when
/// a buffer takes its size, stay zero: each plane overwrites only the same interior values.
#[derive(Default)]
struct Scratch {
    padded: Vec<f32>,
    wide: Vec<f32>,
    /// The activated input plane ([`forward_between`] only).
    activated: Vec<f32>,
}

/// Makes `buffer` `len` zeros if it has another length; leaves it as it is otherwise.
fn sized(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() != len {
        buffer.clear();
        buffer.resize(len, 0.0);
    }
}

impl Scratch {
    /// Copies `plane` (`h_in × w_in`) into the padded buffer: `(h_in + top + bottom) ×
    /// W̃` values, then zeros up to `min_len` values, so that taps computed past the last
    /// output row (the discarded columns, and a last block of accumulators rounded up)
    /// read zeros.
    fn pad(&mut self, s: &DepthwiseShape, plane: &[f32], min_len: usize) {
        let [top, left, ..] = s.pad;
        let wide = s.wide();
        sized(&mut self.padded, s.padded_len(min_len));
        for (i, row) in plane.chunks(s.w_in).enumerate() {
            let start = (i + top) * wide + left;
            self.padded[start..start + s.w_in].copy_from_slice(row);
        }
    }
}

/// `out = bias + Σ_taps w · x̃` for one plane (`out` is `h_out × w_out`).
fn correlate_plane(
    s: &DepthwiseShape,
    x: &[f32],
    w: &[f32],
    bias: f32,
    out: &mut [MaybeUninit<f32>],
    scratch: &mut Scratch,
) {
    let (wide, w_out) = (s.wide(), s.w_out());
    scratch.pad(s, x, s.taps_reach());
    sized(&mut scratch.wide, s.acc_len());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        unsafe { taps_avx512(&mut scratch.wide, &scratch.padded, w, bias, s.kernel, wide) };
    } else if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe { taps_avx2(&mut scratch.wide, &scratch.padded, w, bias, s.kernel, wide) };
    } else {
        taps(&mut scratch.wide, &scratch.padded, w, bias, s.kernel, wide);
    }
    #[cfg(not(target_arch = "x86_64"))]
    taps(&mut scratch.wide, &scratch.padded, w, bias, s.kernel, wide);
    for (row, wide_row) in out.chunks_mut(w_out).zip(scratch.wide.chunks(wide)) {
        for (o, &v) in row.iter_mut().zip(wide_row) {
            o.write(v);
        }
    }
}

/// Accumulator values kept in registers while every tap is added (eight 16-lane vectors,
/// enough independent sums to hide the latency of the multiply-adds).
const BLOCK: usize = 128;

/// `acc[t] = bias + Σ_{p,q} w[p, q] · padded[t + p·W̃ + q]`: a block of [`BLOCK`]
/// accumulators at a time through all taps, so that the accumulators stay in registers
/// instead of being loaded and stored once per tap. `acc` is whole blocks, and `padded`
/// holds at least `acc.len() + (k_h − 1)·W̃ + k_w − 1` values.
#[inline(always)]
fn taps(acc: &mut [f32], padded: &[f32], w: &[f32], bias: f32, [kh, kw]: [usize; 2], wide: usize) {
    for (b, block) in acc.chunks_exact_mut(BLOCK).enumerate() {
        let block: &mut [f32; BLOCK] = block.try_into().expect("whole blocks");
        let mut sums = [bias; BLOCK];
        for p in 0..kh {
            for q in 0..kw {
                let tap = w[p * kw + q];
                let src: &[f32; BLOCK] = padded[b * BLOCK + p * wide + q..][..BLOCK]
                    .try_into()
                    .expect("a block of BLOCK values");
                for l in 0..BLOCK {
                    sums[l] = tap.mul_add(src[l], sums[l]);
                }
            }
        }
        *block = sums;
    }
}

/// [`taps`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn taps_avx2(
    acc: &mut [f32],
    padded: &[f32],
    w: &[f32],
    bias: f32,
    kernel: [usize; 2],
    wide: usize,
) {
    taps(acc, padded, w, bias, kernel, wide)
}

/// [`taps`] compiled for AVX-512 (16 lanes).
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn taps_avx512(
    acc: &mut [f32],
    padded: &[f32],
    w: &[f32],
    bias: f32,
    kernel: [usize; 2],
    wide: usize,
) {
    taps(acc, padded, w, bias, kernel, wide)
}

/// The forward pass: `[batch, channels, h_out, w_out]`.
pub(crate) fn forward(s: &DepthwiseShape, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (plane_in, plane_out) = (s.h_in * s.w_in, s.h_out() * s.w_out());
    let fill = |y: &mut [MaybeUninit<f32>]| {
        y.par_chunks_mut(plane_out)
            .zip(x.par_chunks(plane_in))
            .enumerate()
            .for_each_init(Scratch::default, |scratch, (index, (y_c, x_c))| {
                let c = index % s.channels;
                let filter = &w[c * s.taps()..][..s.taps()];
                let b = bias.map_or(0.0, |b| b[c]);
                correlate_plane(s, x_c, filter, b, y_c, scratch);
            });
    };
    // SAFETY: the planes cover the output, and `correlate_plane` writes each value of its
    // plane (every row of `h_out` rows of `w_out`).
    unsafe { vec_written_by(s.batch * s.channels * plane_out, fill) }
}

/// A per-channel inference-mode batch normalisation and its activation,
/// `silu(a_c v + b_c)`, applied by [`forward_between`] as values enter or leave the
/// convolution (`a`, `b` from [`affine_coefficients`](super::batch_norm::affine_coefficients)).
#[derive(Clone, Copy, Debug)]
pub(crate) struct NormSilu<'a> {
    pub a: &'a [f32],
    pub b: &'a [f32],
}

/// `silu(u)` for `u = a v + b`.
#[inline(always)]
fn norm_silu(v: f32, a: f32, b: f32) -> f32 {
    let u = a * v + b;
    u * sigmoid(u)
}

/// `post(w ⋆ up(pre(x)))`, with `pre` and `post` [`NormSilu`] maps and `up` nearest
/// upsampling by 2 when `upsample` (else the identity), in one pass per plane: `pre` (and
/// the upsampling) are applied as the plane is copied into the padded buffer, `post` as
/// the output is copied out, so the activations before and after the convolution are never
/// written out whole. `s` is the convolution's shape on its input, the upsampled map when
/// `upsample`: `x` is then `[batch, channels, h_in / 2, w_in / 2]`.
pub(crate) fn forward_between(
    s: &DepthwiseShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    [pre, post]: [NormSilu; 2],
    upsample: bool,
) -> Vec<f32> {
    let factor = if upsample { 4 } else { 1 };
    let (plane_in, plane_out) = (s.h_in * s.w_in / factor, s.h_out() * s.w_out());
    let fill = |y: &mut [MaybeUninit<f32>]| {
        y.par_chunks_mut(plane_out)
            .zip(x.par_chunks(plane_in))
            .enumerate()
            .for_each_init(Scratch::default, |scratch, (index, (y_c, x_c))| {
                let c = index % s.channels;
                let plane = Plane {
                    x: x_c,
                    filter: &w[c * s.taps()..][..s.taps()],
                    bias: bias.map_or(0.0, |b| b[c]),
                    pre: (pre.a[c], pre.b[c]),
                    post: (post.a[c], post.b[c]),
                    upsample,
                };
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { between_plane_avx512(s, &plane, y_c, scratch) };
                } else if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX2 and FMA.
                    return unsafe { between_plane_avx2(s, &plane, y_c, scratch) };
                }
                between_plane(s, &plane, y_c, scratch)
            });
    };
    // SAFETY: the planes cover the output, and `between_plane` writes each value of its
    // plane (every row of `h_out` rows of `w_out`).
    unsafe { vec_written_by(s.batch * s.channels * plane_out, fill) }
}

/// One plane's input and the per-channel values [`forward_between`] applies to it.
struct Plane<'a> {
    x: &'a [f32],
    filter: &'a [f32],
    bias: f32,
    pre: (f32, f32),
    post: (f32, f32),
    upsample: bool,
}

/// [`forward_between`] on one plane.
#[inline(always)]
fn between_plane(
    s: &DepthwiseShape,
    p: &Plane,
    out: &mut [MaybeUninit<f32>],
    scratch: &mut Scratch,
) {
    let [top, left, ..] = s.pad;
    let (wide, w_out) = (s.wide(), s.w_out());
    // `Scratch::pad`'s length, so the zeros outside the interior (which every plane of the
    // call overwrites alike) stay zero.
    sized(&mut scratch.padded, s.padded_len(s.taps_reach()));
    // `pre` over the whole plane at once (rows of 7 or 14 values would not vectorise),
    // then its rows into the padded buffer, each value twice in each of two rows when
    // upsampling.
    let (a, b) = p.pre;
    // A plain loop over a sized buffer, so that it is compiled here, with the caller's
    // target features (`extend` with a `map` would be a generic function of its own).
    scratch.activated.resize(p.x.len(), 0.0);
    for (o, &v) in scratch.activated.iter_mut().zip(p.x) {
        *o = norm_silu(v, a, b);
    }
    if p.upsample {
        for (i, row) in scratch.activated.chunks(s.w_in / 2).enumerate() {
            let start = (2 * i + top) * wide + left;
            let dst = &mut scratch.padded[start..start + s.w_in];
            for (pair, &v) in dst.chunks_exact_mut(2).zip(row) {
                pair[0] = v;
                pair[1] = v;
            }
            scratch
                .padded
                .copy_within(start..start + s.w_in, start + wide);
        }
    } else {
        for (i, row) in scratch.activated.chunks(s.w_in).enumerate() {
            let start = (i + top) * wide + left;
            scratch.padded[start..start + s.w_in].copy_from_slice(row);
        }
    }
    sized(&mut scratch.wide, s.acc_len());
    taps(
        &mut scratch.wide,
        &scratch.padded,
        p.filter,
        p.bias,
        s.kernel,
        wide,
    );
    // `post` over the whole wide buffer (whole blocks; the discarded columns too), then
    // the output's rows out of it.
    let (a, b) = p.post;
    for v in scratch.wide.iter_mut() {
        *v = norm_silu(*v, a, b);
    }
    for (row, wide_row) in out.chunks_mut(w_out).zip(scratch.wide.chunks(wide)) {
        for (o, &v) in row.iter_mut().zip(wide_row) {
            o.write(v);
        }
    }
}

/// [`between_plane`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn between_plane_avx2(
    s: &DepthwiseShape,
    p: &Plane,
    out: &mut [MaybeUninit<f32>],
    scratch: &mut Scratch,
) {
    between_plane(s, p, out, scratch)
}

/// [`between_plane`] compiled for AVX-512 (16 lanes).
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn between_plane_avx512(
    s: &DepthwiseShape,
    p: &Plane,
    out: &mut [MaybeUninit<f32>],
    scratch: &mut Scratch,
) {
    between_plane(s, p, out, scratch)
}

/// The input gradient from the output gradient `dy`: the correlation of `dy`, padded by
/// `k − 1 − pad`, with each filter turned by 180°.
pub(crate) fn backward_input(s: &DepthwiseShape, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let flipped: Vec<f32> = w
        .chunks(s.taps())
        .flat_map(|filter| filter.iter().rev().copied())
        .collect();
    forward(&s.adjoint(), dy, &flipped, None)
}

/// The weight gradient `[channels, 1, k_h, k_w]` and, with `bias`, the bias gradient
/// `[channels]`, parallel over channels (each sums over the batch in f64).
pub(crate) fn backward_weight(
    s: &DepthwiseShape,
    x: &[f32],
    dy: &[f32],
    bias: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let (plane_in, plane_out) = (s.h_in * s.w_in, s.h_out() * s.w_out());
    let (w_out, wide) = (s.w_out(), s.wide());
    let per_channel: Vec<(Vec<f64>, f64)> = (0..s.channels)
        .into_par_iter()
        .map_init(Scratch::default, |scratch, c| {
            let mut dw = vec![0f64; s.taps()];
            let mut db = 0f64;
            for b in 0..s.batch {
                let plane = b * s.channels + c;
                let dy_c = &dy[plane * plane_out..][..plane_out];
                scratch.pad(s, &x[plane * plane_in..][..plane_in], 0);
                // dy on the padded width, zeros in the discarded columns.
                sized(&mut scratch.wide, s.h_out() * wide);
                for (wide_row, row) in scratch.wide.chunks_mut(wide).zip(dy_c.chunks(w_out)) {
                    wide_row[..w_out].copy_from_slice(row);
                }
                #[cfg(target_arch = "x86_64")]
                let sums = if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX2 and FMA.
                    unsafe { tap_sums_avx2(&scratch.wide, &scratch.padded, s.kernel, wide) }
                } else {
                    tap_sums(&scratch.wide, &scratch.padded, s.kernel, wide)
                };
                #[cfg(not(target_arch = "x86_64"))]
                let sums = tap_sums(&scratch.wide, &scratch.padded, s.kernel, wide);
                for (acc, v) in dw.iter_mut().zip(sums) {
                    *acc += v as f64;
                }
                if bias {
                    db += dy_c.iter().map(|&v| v as f64).sum::<f64>();
                }
            }
            (dw, db)
        })
        .collect();
    let dw = per_channel
        .iter()
        .flat_map(|(dw, _)| dw.iter().map(|&v| v as f32))
        .collect();
    let db = bias.then(|| per_channel.iter().map(|&(_, db)| db as f32).collect());
    (dw, db)
}

/// `Σ_t dy_wide[t] · padded[t + p·W̃ + q]` for every tap `(p, q)`, in f32 over 8 lanes.
#[inline(always)]
fn tap_sums(dy_wide: &[f32], padded: &[f32], [kh, kw]: [usize; 2], wide: usize) -> Vec<f32> {
    let len = dy_wide.len();
    let mut sums = Vec::with_capacity(kh * kw);
    for p in 0..kh {
        for q in 0..kw {
            let src = &padded[p * wide + q..][..len];
            let mut lanes = [0f32; 8];
            let (mut ds, mut xs) = (dy_wide.chunks_exact(8), src.chunks_exact(8));
            for (d, v) in (&mut ds).zip(&mut xs) {
                let d: &[f32; 8] = d.try_into().expect("chunks of 8");
                let v: &[f32; 8] = v.try_into().expect("chunks of 8");
                for l in 0..8 {
                    lanes[l] += d[l] * v[l];
                }
            }
            let rest: f32 = ds
                .remainder()
                .iter()
                .zip(xs.remainder())
                .map(|(d, v)| d * v)
                .sum();
            sums.push(lanes.iter().sum::<f32>() + rest);
        }
    }
    sums
}

/// [`tap_sums`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tap_sums_avx2(
    dy_wide: &[f32],
    padded: &[f32],
    kernel: [usize; 2],
    wide: usize,
) -> Vec<f32> {
    tap_sums(dy_wide, padded, kernel, wide)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 0.754).sin()).collect()
    }

    /// The forward pass in f64 by the definition, reading zeros outside the input.
    fn reference(s: &DepthwiseShape, x: &[f64], w: &[f64], bias: &[f64]) -> Vec<f64> {
        let [kh, kw] = s.kernel;
        let (h_out, w_out) = (s.h_out(), s.w_out());
        let mut y = Vec::new();
        for b in 0..s.batch {
            for c in 0..s.channels {
                for i in 0..h_out {
                    for j in 0..w_out {
                        let mut acc = bias[c];
                        for p in 0..kh {
                            for q in 0..kw {
                                let (r, col) = (i + p, j + q);
                                if r < s.pad[0] || col < s.pad[1] {
                                    continue;
                                }
                                let (r, col) = (r - s.pad[0], col - s.pad[1]);
                                if r >= s.h_in || col >= s.w_in {
                                    continue;
                                }
                                let xi = ((b * s.channels + c) * s.h_in + r) * s.w_in + col;
                                acc += w[(c * kh + p) * kw + q] * x[xi];
                            }
                        }
                        y.push(acc);
                    }
                }
            }
        }
        y
    }

    /// Forward against the definition, and the three gradients against the definition's
    /// adjoint: for the linear map `y(x, w, b)`, `⟨dy, y⟩` is linear in each argument, so
    /// each gradient entry is `⟨dy, y(e_i)⟩` for the unit vector `e_i` of that argument
    /// (exact in f64; tolerance 1e-5 of f32 sums of at most 25 products of values in
    /// [−1, 1]). Square and asymmetric padding, odd and even filters, rows narrower than
    /// 8 lanes and wider than 16.
    #[test]
    fn forward_and_gradients_match_the_definition() {
        for (h, w_in, kernel, pad) in [
            (7, 7, [5, 5], [2, 2, 2, 2]),
            (5, 19, [3, 3], [1, 1, 1, 1]),
            (6, 4, [3, 2], [0, 1, 2, 0]),
        ] {
            let s = DepthwiseShape {
                batch: 2,
                channels: 3,
                h_in: h,
                w_in,
                kernel,
                pad,
            };
            let n_x = s.batch * s.channels * h * w_in;
            let n_y = s.batch * s.channels * s.h_out() * s.w_out();
            let (x, w, b) = (
                values(n_x, 0.1),
                values(s.channels * s.taps(), 3.0),
                values(s.channels, 5.0),
            );
            let dy = values(n_y, 9.0);
            let f64s = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
            let (xd, wd, bd) = (f64s(&x), f64s(&w), f64s(&b));
            let y = forward(&s, &x, &w, Some(&b));
            for (got, want) in y.iter().zip(reference(&s, &xd, &wd, &bd)) {
                assert!(
                    (*got as f64 - want).abs() < 1e-5,
                    "{pad:?}: {got} vs {want}"
                );
            }
            let pair = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
                reference(&s, x, w, b)
                    .iter()
                    .zip(&dy)
                    .map(|(y, &d)| y * d as f64)
                    .sum()
            };
            let unit = |n: usize, i: usize| {
                let mut e = vec![0.0; n];
                e[i] = 1.0;
                e
            };
            let zeros = |n: usize| vec![0.0; n];
            let dx = backward_input(&s, &dy, &w);
            for (i, &got) in dx.iter().enumerate() {
                let want = pair(&unit(n_x, i), &wd, &zeros(s.channels));
                assert!(
                    (got as f64 - want).abs() < 1e-5,
                    "{pad:?}: dx[{i}] {got} vs {want}"
                );
            }
            let (dw, db) = backward_weight(&s, &x, &dy, true);
            for (i, &got) in dw.iter().enumerate() {
                let want = pair(&xd, &unit(w.len(), i), &zeros(s.channels));
                assert!(
                    (got as f64 - want).abs() < 1e-5,
                    "{pad:?}: dw[{i}] {got} vs {want}"
                );
            }
            for (i, &got) in db.unwrap().iter().enumerate() {
                let want = pair(&zeros(n_x), &zeros(w.len()), &unit(s.channels, i));
                assert!(
                    (got as f64 - want).abs() < 1e-5,
                    "{pad:?}: db[{i}] {got} vs {want}"
                );
            }
        }
    }

    /// `forward_between` against the definition composed in f64: `silu(a v + b)` per
    /// channel, nearest upsampling by index arithmetic, the f64 reference convolution,
    /// `silu(a v + b)` again. Tolerance 1e-5: the kernel's sigmoid is within 3 ulp, and
    /// the sums are of at most 25 products of values below 1.5 in size. Both with and
    /// without upsampling, square and asymmetric padding, 5×5 and 3×2 filters.
    #[test]
    fn forward_between_matches_the_composition() {
        let silu = |v: f64, a: f64, b: f64| {
            let u = a * v + b;
            u / (1.0 + (-u).exp())
        };
        for (upsample, h, w_in, kernel, pad) in [
            (false, 7, 7, [5, 5], [2, 2, 2, 2]),
            (true, 7, 7, [5, 5], [2, 2, 2, 2]),
            (true, 3, 9, [3, 2], [0, 1, 2, 0]),
        ] {
            let f = if upsample { 2 } else { 1 };
            let s = DepthwiseShape {
                batch: 2,
                channels: 3,
                h_in: f * h,
                w_in: f * w_in,
                kernel,
                pad,
            };
            let n_x = s.batch * s.channels * h * w_in;
            let (x, w, bias) = (
                values(n_x, 0.1),
                values(s.channels * s.taps(), 3.0),
                values(s.channels, 5.0),
            );
            let (a_pre, b_pre) = (values(3, 7.0), values(3, 8.0));
            let (a_post, b_post) = (values(3, 11.0), values(3, 13.0));
            let got = forward_between(
                &s,
                &x,
                &w,
                Some(&bias),
                [
                    NormSilu {
                        a: &a_pre,
                        b: &b_pre,
                    },
                    NormSilu {
                        a: &a_post,
                        b: &b_post,
                    },
                ],
                upsample,
            );
            let mut input = Vec::new();
            for plane in 0..s.batch * s.channels {
                let c = plane % s.channels;
                for i in 0..s.h_in {
                    for j in 0..s.w_in {
                        let v = x[(plane * h + i / f) * w_in + j / f] as f64;
                        input.push(silu(v, a_pre[c] as f64, b_pre[c] as f64));
                    }
                }
            }
            let f64s = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
            let conv = reference(&s, &input, &f64s(&w), &f64s(&bias));
            let plane_out = s.h_out() * s.w_out();
            assert_eq!(got.len(), conv.len());
            for (i, (g, v)) in got.iter().zip(conv).enumerate() {
                let c = (i / plane_out) % s.channels;
                let want = silu(v, a_post[c] as f64, b_post[c] as f64);
                assert!(
                    (*g as f64 - want).abs() < 1e-5,
                    "upsample {upsample}, {pad:?}: y[{i}] {g} vs {want}"
                );
            }
        }
    }
}
