//! 3×3 stride-1 convolutions by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray
//! 2016): each 2×2 block of outputs from a 4×4 block of inputs with 16 multiplications
//! per (input, output) channel pair instead of 36, so the matrix products do 2.25× fewer
//! flops than im2col's. The forward pass (and with it the input gradient, itself a 3×3
//! stride-1 convolution: see `conv2d::flipped`) and the weight gradient.
//!
//! # Formula
//! For a 4×4 input tile `d` (rows `2t_y − p_h ..`, columns `2t_x − p_w ..`, zero outside
//! the image) and a 3×3 kernel `g`, the 2×2 output tile of the correlation is
//! ```text
//! Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
//!
//!      ⎡1  0 −1  0⎤        ⎡ 1    0    0 ⎤
//! Bᵀ = ⎢0  1  1  0⎥    G = ⎢1/2  1/2  1/2⎥    Aᵀ = ⎡1  1  1  0⎤
//!      ⎢0 −1  1  0⎥        ⎢1/2 −1/2  1/2⎥         ⎣0  1 −1 −1⎦
//!      ⎣0  1  0 −1⎦        ⎣ 0    0    1 ⎦
//! ```
//! Summed over input channels, each of the 16 entries ξ of the transformed tiles is a
//! matrix product over all tiles `t`: `M_ξ[o, t] = Σ_c U_ξ[o, c] V_ξ[c, t]` with
//! `U = G g Gᵀ`, `V = Bᵀ d B`. The weight gradient follows by the chain rule through the
//! same transforms:
//! ```text
//! ∂L/∂U_ξ[o, c] = Σ_t V_ξ[c, t] · (A dY_t Aᵀ)_ξ[o, t],    ∂L/∂g[o, c] = Gᵀ (∂L/∂U[o, c]) G
//! ```
//! The transforms' entries are 0, ±1 and ±1/2, so the results agree with the direct sum
//! to a few f32 roundings (`tests/kernels.rs`, and the unit test below).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::conv::{ConvShape, add_partials, bias_sums};
use super::matmul::{MatRef, matmul};
use super::scratch;
use super::uninit::vec_written_by;

/// Entries of a transformed 4×4 tile.
const XI: usize = 16;

/// Whether Winograd's F(2×2, 3×3) computes `s` here: a 3×3 kernel at stride 1 (any
/// padding) with enough channels on both sides that the matrix products, not the
/// transforms, dominate (with one or a few channels im2col's single product is cheaper).
pub(crate) fn applies(s: &ConvShape) -> bool {
    s.kernel == [3, 3] && s.stride == [1, 1] && s.c_in >= 8 && s.c_out >= 8 && s.out_pixels() > 0
}

/// The tiling of one image's output into 2×2 tiles: `rows × cols` tiles, stored `stride =
/// cols + 1` to a row (the extra tile of each row is never written out), so that every
/// transform is one unit-stride loop over all tiles of a plane.
#[derive(Clone, Copy, Debug)]
struct Tiles {
    rows: usize,
    cols: usize,
    stride: usize,
}

impl Tiles {
    fn new(s: &ConvShape) -> Self {
        let cols = s.w_out.div_ceil(2);
        Self {
            rows: s.h_out.div_ceil(2),
            cols,
            stride: cols + 1,
        }
    }

    /// Stored tiles per image: `rows · stride`.
    fn per_image(&self) -> usize {
        self.rows * self.stride
    }

    /// Entries of one quarter plane of a padded input image (see [`transform_inputs`]):
    /// `rows + 1` rows of `stride`, and one more for the last tile's right neighbour.
    fn quarter_len(&self) -> usize {
        (self.rows + 1) * self.stride + 1
    }
}

/// Images transformed together: as many as keep their transformed tiles (inputs and
/// outputs, 16 values per tile and channel) within about 1 MB, so they stay in a core's L2
/// cache between the transforms and the products; at least one.
fn images_per_chunk(s: &ConvShape, tiles: Tiles) -> usize {
    const BUDGET: usize = 1 << 20;
    let per_image = XI * (s.c_in + s.c_out) * tiles.per_image() * 4;
    (BUDGET / per_image.max(1)).clamp(1, s.batch.max(1))
}

/// Images per parallel task, a whole number of chunks: about four tasks per thread, so a
/// busy core does not hold the others up, each with one scratch buffer.
fn images_per_task(s: &ConvShape, chunk: usize) -> usize {
    let balanced = s.batch.div_ceil(4 * rayon::current_num_threads()).max(1);
    balanced.div_ceil(chunk) * chunk
}

/// `U_ξ[o, c] = (G g[o, c] Gᵀ)_ξ`: `[16, C_out, C_in]` from `W` `[C_out, C_in, 3, 3]`.
fn transform_weights(s: &ConvShape, weight: &[f32]) -> Vec<f32> {
    let pairs = s.c_out * s.c_in;
    let mut u = vec![0.0f32; XI * pairs];
    let g_times = |[g0, g1, g2]: [f32; 3]| [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2];
    for (pair, g) in weight.chunks_exact(9).enumerate() {
        // G g along the columns (4×3), then G along the rows of the result (4×4).
        let cols: [[f32; 4]; 3] = std::array::from_fn(|j| g_times([g[j], g[3 + j], g[6 + j]]));
        for i in 0..4 {
            for (j, v) in g_times([cols[0][i], cols[1][i], cols[2][i]])
                .into_iter()
                .enumerate()
            {
                u[(i * 4 + j) * pairs + pair] = v;
            }
        }
    }
    u
}

/// `∂L/∂g[o, c] = Gᵀ (∂L/∂U[o, c]) G` from `dUᵀ` (`[16, C_in, C_out]`): `[C_out, C_in, 3, 3]`.
fn weight_gradient_from_transformed(s: &ConvShape, du_t: &[f32]) -> Vec<f32> {
    let pairs = s.c_out * s.c_in;
    let mut dw = vec![0.0f32; 9 * pairs];
    let gt_times =
        |[w0, w1, w2, w3]: [f32; 4]| [w0 + 0.5 * (w1 + w2), 0.5 * (w1 - w2), 0.5 * (w1 + w2) + w3];
    for o in 0..s.c_out {
        for c in 0..s.c_in {
            let du = |xi: usize| du_t[(xi * s.c_in + c) * s.c_out + o];
            // Gᵀ along the columns (3×4), then along the rows (3×3).
            let cols: [[f32; 3]; 4] =
                std::array::from_fn(|j| gt_times([du(j), du(4 + j), du(8 + j), du(12 + j)]));
            let g = &mut dw[(o * s.c_in + c) * 9..][..9];
            for i in 0..3 {
                let row = gt_times([cols[0][i], cols[1][i], cols[2][i], cols[3][i]]);
                g[3 * i..3 * i + 3].copy_from_slice(&row);
            }
        }
    }
    dw
}

/// Scratch space of one task, borrowed from its thread's buffer (see [`with_scratch`]).
struct Scratch<'a> {
    /// The four quarter planes of one padded input plane, then the eight rows of `Bᵀ`
    /// along their rows: `[12, quarter_len]` (see [`transform_inputs`]).
    planes: &'a mut [f32],
    /// `V`: `[16, C_in, tiles]`.
    v: &'a mut [f32],
    /// `M` `[16, C_out, tiles]` (forward) or `A dy Aᵀ` (weight gradient).
    m: &'a mut [f32],
    /// One plane's output tiles before they are interleaved (or its output gradient split
    /// by parity), and the transform's intermediate rows: `[12, tiles of one plane]`.
    y: &'a mut [f32],
}

impl<'a> Scratch<'a> {
    /// The four parts in [`with_scratch`]'s order.
    fn new([planes, v, m, y]: [&'a mut [f32]; 4]) -> Self {
        Scratch { planes, v, m, y }
    }
}

/// Runs `f` with scratch space for `images` images of `s`, from this thread's buffer
/// (see [`scratch::with_scratch`]).
fn with_scratch<R>(s: &ConvShape, tiles: Tiles, images: usize, f: impl FnOnce(Scratch) -> R) -> R {
    let t_all = images * tiles.per_image();
    let lens = [
        12 * tiles.quarter_len(),
        XI * s.c_in * t_all,
        XI * s.c_out * t_all,
        12 * tiles.per_image(),
    ];
    scratch::with_scratch(lens, |parts| f(Scratch::new(parts)))
}

/// `V_ξ[c, t] = (Bᵀ d_t B)_ξ` for the images `x` (`[n, C_in, H_in, W_in]`) into `v`
/// (`[16, C_in, n · tiles]`).
///
/// # Formula
/// Each padded image (padded row `r`, column `q` hold input pixel `(r − p_h, q − p_w)`, 0
/// outside) is split into four quarter planes by row and column parity,
/// `P_{pr,pc}[a, k] = padded(2a + pr, 2k + pc)`, so tile `(t_y, k)`'s 4×4 block is
/// `P_{·,·}[t_y .. t_y + 2, k .. k + 2]` and, at flat index `u = t_y · stride + k`, its
/// neighbours are `u + 1` (right) and `u + stride` (below). `Bᵀ` along the rows of each
/// row parity (`e = P_{pr,0}`, `o = P_{pr,1}`):
/// ```text
/// w₀ = e[u] − e[u+1],   w₁ = o[u] + e[u+1],   w₂ = e[u+1] − o[u],   w₃ = o[u] − o[u+1]
/// ```
/// then along the columns (`W_e`, `W_o`: the row parities' `w_j`):
/// ```text
/// V_j = W_e[u] − W_e[u+s],  V_{4+j} = W_o[u] + W_e[u+s],  V_{8+j} = W_e[u+s] − W_o[u],
/// V_{12+j} = W_o[u] − W_o[u+s]          (s = stride)
/// ```
fn transform_inputs(s: &ConvShape, tiles: Tiles, x: &[f32], scratch: &mut Scratch<'_>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        unsafe { transform_inputs_avx2(s, tiles, x, scratch) };
        return;
    }
    transform_inputs_generic(s, tiles, x, scratch);
}

/// [`transform_inputs_generic`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn transform_inputs_avx2(s: &ConvShape, tiles: Tiles, x: &[f32], scratch: &mut Scratch<'_>) {
    transform_inputs_generic(s, tiles, x, scratch);
}

#[inline(always)]
fn transform_inputs_generic(s: &ConvShape, tiles: Tiles, x: &[f32], scratch: &mut Scratch<'_>) {
    let n = x.len() / s.in_len();
    let t_all = n * tiles.per_image();
    let plane_len = s.h_in * s.w_in;
    let (q_len, t) = (tiles.quarter_len(), tiles.per_image());
    let lanes = (tiles.rows + 1) * tiles.stride;
    let (quarters, rows_t) = scratch.planes.split_at_mut(4 * q_len);
    for b in 0..n {
        for c in 0..s.c_in {
            let plane = &x[(b * s.c_in + c) * plane_len..][..plane_len];
            // The quarter planes P_{pr,pc} at quarters[(2·pr + pc) · q_len ..].
            quarters.fill(0.0);
            for (iy, row) in plane.chunks_exact(s.w_in).enumerate() {
                let r = iy + s.pad[0];
                if r >= 2 * (tiles.rows + 1) {
                    break;
                }
                let (a, pr) = (r / 2, r % 2);
                // Input column ix sits at padded column q = ix + p_w (< 2·stride): the even
                // input columns land in the quarter of parity p_w mod 2 from entry ⌊p_w/2⌋,
                // the odd ones in the other quarter from entry ⌈p_w/2⌉.
                let len = s.w_in.min((2 * tiles.stride).saturating_sub(s.pad[1]));
                let (even_q, odd_q) = quarters[2 * pr * q_len..][..2 * q_len].split_at_mut(q_len);
                let (from_even, from_odd) = if s.pad[1].is_multiple_of(2) {
                    (even_q, odd_q)
                } else {
                    (odd_q, even_q)
                };
                let row_start = a * tiles.stride;
                let from_even = &mut from_even[row_start + s.pad[1] / 2..][..len.div_ceil(2)];
                let from_odd = &mut from_odd[row_start + s.pad[1].div_ceil(2)..][..len / 2];
                let pairs = row[..len].chunks_exact(2);
                if let [last] = pairs.remainder() {
                    from_even[len / 2] = *last;
                }
                for ((e, o), pair) in from_even.iter_mut().zip(from_odd.iter_mut()).zip(pairs) {
                    *e = pair[0];
                    *o = pair[1];
                }
            }
            // Bᵀ along the rows of each row parity.
            for pr in 0..2 {
                let e = &quarters[2 * pr * q_len..][..lanes + 1];
                let o = &quarters[(2 * pr + 1) * q_len..][..lanes + 1];
                let [w0, w1, w2, w3] = scratch::split(&mut rows_t[4 * pr * q_len..], [q_len; 4]);
                let (w0, w1, w2, w3) = (
                    &mut w0[..lanes],
                    &mut w1[..lanes],
                    &mut w2[..lanes],
                    &mut w3[..lanes],
                );
                for u in 0..lanes {
                    w0[u] = e[u] - e[u + 1];
                    w1[u] = o[u] + e[u + 1];
                    w2[u] = e[u + 1] - o[u];
                    w3[u] = o[u] - o[u + 1];
                }
            }
            // Bᵀ along the columns.
            let t0 = b * t;
            for j in 0..4 {
                let we = &rows_t[j * q_len..][..lanes];
                let wo = &rows_t[(4 + j) * q_len..][..lanes];
                let (we0, we1, wo0, wo1) = (
                    &we[..t],
                    &we[tiles.stride..][..t],
                    &wo[..t],
                    &wo[tiles.stride..][..t],
                );
                let row = |xi: usize| (xi * s.c_in + c) * t_all + t0;
                let v = &mut scratch.v;
                for (out, (a, b)) in v[row(j)..][..t].iter_mut().zip(we0.iter().zip(we1)) {
                    *out = a - b;
                }
                for (out, (a, b)) in v[row(4 + j)..][..t].iter_mut().zip(wo0.iter().zip(we1)) {
                    *out = a + b;
                }
                for (out, (a, b)) in v[row(8 + j)..][..t].iter_mut().zip(we1.iter().zip(wo0)) {
                    *out = a - b;
                }
                for (out, (a, b)) in v[row(12 + j)..][..t].iter_mut().zip(wo0.iter().zip(wo1)) {
                    *out = a - b;
                }
            }
        }
    }
}

/// `y[o] = Aᵀ M_t A (+ bias)` for every tile of the images `y` (`[n, C_out, H_out, W_out]`)
/// from `m` (`[16, C_out, n · tiles]`).
///
/// # Formula
/// `Aᵀ` along the tiles' rows, `z_{i,0} = m_{4i} + m_{4i+1} + m_{4i+2}`,
/// `z_{i,1} = m_{4i+1} − m_{4i+2} − m_{4i+3}`, then along their columns,
/// `Y_{0,j} = z_{0,j} + z_{1,j} + z_{2,j}`, `Y_{1,j} = z_{1,j} − z_{2,j} − z_{3,j}`; output
/// pixel `(2t_y + a, 2k + j)` is `Y_{a,j}` of tile `(t_y, k)`.
fn transform_outputs(
    s: &ConvShape,
    tiles: Tiles,
    m: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
    scratch_y: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        unsafe { transform_outputs_avx2(s, tiles, m, bias, y, scratch_y) };
        return;
    }
    transform_outputs_generic(s, tiles, m, bias, y, scratch_y);
}

/// [`transform_outputs_generic`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn transform_outputs_avx2(
    s: &ConvShape,
    tiles: Tiles,
    m: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
    scratch_y: &mut [f32],
) {
    transform_outputs_generic(s, tiles, m, bias, y, scratch_y);
}

#[inline(always)]
fn transform_outputs_generic(
    s: &ConvShape,
    tiles: Tiles,
    m: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
    scratch_y: &mut [f32],
) {
    let n = y.len() / s.out_len();
    let t = tiles.per_image();
    let t_all = n * t;
    let plane_len = s.out_pixels();
    // z_{i,j} for the four rows i and two columns j of the tiles, then the outputs Y_{a,j}.
    let [y00, y01, y10, y11, z00, z01, z10, z11, z20, z21, z30, z31] =
        scratch::split(scratch_y, [t; 12]);
    for b in 0..n {
        for o in 0..s.c_out {
            let row = |xi: usize| &m[(xi * s.c_out + o) * t_all + b * t..][..t];
            let z_rows = [
                (&mut *z00, &mut *z01),
                (&mut *z10, &mut *z11),
                (&mut *z20, &mut *z21),
                (&mut *z30, &mut *z31),
            ];
            for (i, (z0, z1)) in z_rows.into_iter().enumerate() {
                let (m0, m1, m2, m3) = (row(4 * i), row(4 * i + 1), row(4 * i + 2), row(4 * i + 3));
                for ((z0, z1), ((m0, m1), (m2, m3))) in z0
                    .iter_mut()
                    .zip(z1.iter_mut())
                    .zip(m0.iter().zip(m1).zip(m2.iter().zip(m3)))
                {
                    *z0 = m0 + m1 + m2;
                    *z1 = m1 - m2 - m3;
                }
            }
            let columns = [
                ((&mut *y00, &mut *y10), [&*z00, &*z10, &*z20, &*z30]),
                ((&mut *y01, &mut *y11), [&*z01, &*z11, &*z21, &*z31]),
            ];
            for ((top, bottom), [z0, z1, z2, z3]) in columns {
                for ((top, bottom), ((z0, z1), (z2, z3))) in top
                    .iter_mut()
                    .zip(bottom.iter_mut())
                    .zip(z0.iter().zip(z1).zip(z2.iter().zip(z3)))
                {
                    *top = z0 + z1 + z2;
                    *bottom = z1 - z2 - z3;
                }
            }
            let beta = bias.map_or(0.0, |bias| bias[o]);
            let plane = &mut y[(b * s.c_out + o) * plane_len..][..plane_len];
            for (yy, out) in plane.chunks_exact_mut(s.w_out).enumerate() {
                let (ty, a) = (yy / 2, yy % 2);
                let (even, odd) = if a == 0 {
                    (&*y00, &*y01)
                } else {
                    (&*y10, &*y11)
                };
                let (even, odd) = (
                    &even[ty * tiles.stride..][..tiles.cols],
                    &odd[ty * tiles.stride..][..tiles.cols],
                );
                for (k, pair) in out.chunks_mut(2).enumerate() {
                    pair[0].write(even[k] + beta);
                    if let Some(second) = pair.get_mut(1) {
                        second.write(odd[k] + beta);
                    }
                }
            }
        }
    }
}

/// `(A dY_t Aᵀ)_ξ` for every tile of the output gradients `dy` (`[n, C_out, H_out,
/// W_out]`) into `m` (`[16, C_out, n · tiles]`): the adjoint of [`transform_outputs`], 0
/// for the stored tiles past the last column.
///
/// # Formula
/// With `A u = (u₀, u₀ + u₁, u₀ − u₁, −u₁)` for a pair `u`, along the tiles' rows and then
/// their columns.
fn transform_output_gradients(
    s: &ConvShape,
    tiles: Tiles,
    dy: &[f32],
    m: &mut [f32],
    scratch_y: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        unsafe { transform_output_gradients_avx2(s, tiles, dy, m, scratch_y) };
        return;
    }
    transform_output_gradients_generic(s, tiles, dy, m, scratch_y);
}

/// [`transform_output_gradients_generic`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn transform_output_gradients_avx2(
    s: &ConvShape,
    tiles: Tiles,
    dy: &[f32],
    m: &mut [f32],
    scratch_y: &mut [f32],
) {
    transform_output_gradients_generic(s, tiles, dy, m, scratch_y);
}

#[inline(always)]
fn transform_output_gradients_generic(
    s: &ConvShape,
    tiles: Tiles,
    dy: &[f32],
    m: &mut [f32],
    scratch_y: &mut [f32],
) {
    let n = dy.len() / s.out_len();
    let t = tiles.per_image();
    let t_all = n * t;
    let plane_len = s.out_pixels();
    // The output gradient split by row and column parity, per tile (d_{a,j}), and A along
    // the tiles' rows (q_{a,i}).
    let [d00, d01, d10, d11, q00, q01, q02, q03, q10, q11, q12, q13] =
        scratch::split(scratch_y, [t; 12]);
    for b in 0..n {
        for o in 0..s.c_out {
            for d in [&mut *d00, &mut *d01, &mut *d10, &mut *d11] {
                d.fill(0.0);
            }
            let plane = &dy[(b * s.c_out + o) * plane_len..][..plane_len];
            for (yy, row) in plane.chunks_exact(s.w_out).enumerate() {
                let (ty, a) = (yy / 2, yy % 2);
                let (even, odd) = if a == 0 {
                    (&mut *d00, &mut *d01)
                } else {
                    (&mut *d10, &mut *d11)
                };
                let (even, odd) = (
                    &mut even[ty * tiles.stride..][..tiles.cols],
                    &mut odd[ty * tiles.stride..][..tiles.cols],
                );
                for (k, pair) in row.chunks(2).enumerate() {
                    even[k] = pair[0];
                    odd[k] = pair.get(1).copied().unwrap_or(0.0);
                }
            }
            // q_a = A (d_{a,0}, d_{a,1}).
            let rows = [
                ((&*d00, &*d01), [&mut *q00, &mut *q01, &mut *q02, &mut *q03]),
                ((&*d10, &*d11), [&mut *q10, &mut *q11, &mut *q12, &mut *q13]),
            ];
            for ((d0, d1), [q0, q1, q2, q3]) in rows {
                for ((q0, q1), ((q2, q3), (d0, d1))) in q0
                    .iter_mut()
                    .zip(q1.iter_mut())
                    .zip(q2.iter_mut().zip(q3.iter_mut()).zip(d0.iter().zip(d1)))
                {
                    *q0 = *d0;
                    *q1 = d0 + d1;
                    *q2 = d0 - d1;
                    *q3 = -d1;
                }
            }
            // A along the columns, into the 16 rows of m.
            let columns = [
                (&*q00, &*q10),
                (&*q01, &*q11),
                (&*q02, &*q12),
                (&*q03, &*q13),
            ];
            for (j, (q0, q1)) in columns.into_iter().enumerate() {
                let row = |xi: usize| (xi * s.c_out + o) * t_all + b * t;
                for (out, q0) in m[row(j)..][..t].iter_mut().zip(q0) {
                    *out = *q0;
                }
                for (out, (q0, q1)) in m[row(4 + j)..][..t].iter_mut().zip(q0.iter().zip(q1)) {
                    *out = q0 + q1;
                }
                for (out, (q0, q1)) in m[row(8 + j)..][..t].iter_mut().zip(q0.iter().zip(q1)) {
                    *out = q0 - q1;
                }
                for (out, q1) in m[row(12 + j)..][..t].iter_mut().zip(q1) {
                    *out = -q1;
                }
            }
        }
    }
}

/// The convolution `y = W ⋆ x + bias` of a shape that [`applies`].
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let tiles = Tiles::new(s);
    let u = transform_weights(s, weight);
    let chunk = images_per_chunk(s, tiles);
    let per_task = images_per_task(s, chunk);
    let fill = |y: &mut [MaybeUninit<f32>]| {
        y.par_chunks_mut(per_task * s.out_len())
            .enumerate()
            .for_each(|(task, y_task)| {
                with_scratch(s, tiles, chunk, |mut scratch| {
                    let first = task * per_task;
                    for (i, y_chunk) in y_task.chunks_mut(chunk * s.out_len()).enumerate() {
                        let n = y_chunk.len() / s.out_len();
                        let x_chunk = &x[(first + i * chunk) * s.in_len()..][..n * s.in_len()];
                        let t_all = n * tiles.per_image();
                        transform_inputs(s, tiles, x_chunk, &mut scratch);
                        for xi in 0..XI {
                            let u_xi = MatRef::row_major(
                                &u[xi * s.c_out * s.c_in..][..s.c_out * s.c_in],
                                s.c_in,
                            );
                            let v_xi = MatRef::row_major(
                                &scratch.v[xi * s.c_in * t_all..][..s.c_in * t_all],
                                t_all,
                            );
                            let m_xi = &mut scratch.m[xi * s.c_out * t_all..][..s.c_out * t_all];
                            matmul(
                                m_xi, t_all, false, u_xi, v_xi, s.c_out, t_all, s.c_in, false,
                            );
                        }
                        let m = &scratch.m[..XI * s.c_out * t_all];
                        transform_outputs(s, tiles, m, bias, y_chunk, scratch.y);
                    }
                })
            });
    };
    // SAFETY: the chunks cover the output, and `transform_outputs` writes every value of
    // its chunk (every row of every channel plane of every image in it).
    unsafe { vec_written_by(s.batch * s.out_len(), fill) }
}

/// The weight gradient `dW` (`[C_out, C_in, 3, 3]`) of a shape that [`applies`] and, with
/// `with_bias`, the bias gradient `Σ_b Σ_pixels dy_b` (`[C_out]`).
pub(crate) fn backward_weight(
    s: &ConvShape,
    x: &[f32],
    dy: &[f32],
    with_bias: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let tiles = Tiles::new(s);
    let chunk = images_per_chunk(s, tiles);
    let per_task = images_per_task(s, chunk);
    let tasks = s.batch.div_ceil(per_task);
    let pairs = s.c_in * s.c_out;
    // Each task sums its images into its own transposed gradient dUᵀ [16, C_in, C_out] and
    // its own bias gradient (in f64).
    let partials: Vec<(Vec<f32>, Vec<f64>)> = (0..tasks)
        .into_par_iter()
        .map(|task| {
            let mut du_t = vec![0.0f32; XI * pairs];
            let images = task * per_task..((task + 1) * per_task).min(s.batch);
            with_scratch(s, tiles, chunk, |mut scratch| {
                for first in images.clone().step_by(chunk) {
                    let n = chunk.min(images.end - first);
                    let x_chunk = &x[first * s.in_len()..][..n * s.in_len()];
                    let dy_chunk = &dy[first * s.out_len()..][..n * s.out_len()];
                    let t_all = n * tiles.per_image();
                    transform_inputs(s, tiles, x_chunk, &mut scratch);
                    transform_output_gradients(s, tiles, dy_chunk, scratch.m, scratch.y);
                    for xi in 0..XI {
                        let v_xi = MatRef::row_major(
                            &scratch.v[xi * s.c_in * t_all..][..s.c_in * t_all],
                            t_all,
                        );
                        let dm_t = MatRef::transposed(
                            &scratch.m[xi * s.c_out * t_all..][..s.c_out * t_all],
                            t_all,
                        );
                        let du_xi = &mut du_t[xi * pairs..][..pairs];
                        matmul(
                            du_xi, s.c_out, true, v_xi, dm_t, s.c_in, s.c_out, t_all, false,
                        );
                    }
                }
            });
            let dy_task = &dy[images.start * s.out_len()..images.end * s.out_len()];
            (du_t, bias_sums(s, dy_task, with_bias))
        })
        .collect();
    let (du_t, db) = add_partials(partials, XI * pairs, s, with_bias);
    (weight_gradient_from_transformed(s, &du_t), db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::direct::{self, values};

    /// Forward pass and weight gradient against the direct sums for even and odd sizes,
    /// paddings 0, 1 and 2 (the input gradient's flipped convolution of a padding-0
    /// convolution pads by 2) and unequal ones, batches that split into several tasks.
    /// Tolerance: sums of `N = 9 · C_in` (forward) or `B · H_out · W_out` (gradient)
    /// products of values in [−1, 1], through transforms whose entries are 0, ±1 and ±½:
    /// `2e-5 · N`, about 100 f32 roundings of the largest possible sum.
    #[test]
    fn forward_and_weight_gradient_match_direct_sums() {
        // (batch, C_in, H_in, W_in, C_out, pad, H_out, W_out)
        let shapes = [
            (3, 8, 6, 6, 9, [1, 1], 6, 6),
            (2, 9, 7, 5, 8, [1, 1], 7, 5),
            (5, 8, 6, 7, 8, [0, 0], 4, 5),
            (2, 8, 4, 5, 10, [2, 2], 6, 7),
            (1, 8, 1, 3, 8, [1, 1], 1, 3),
            (9, 12, 5, 4, 8, [1, 0], 5, 2),
        ];
        for (batch, c_in, h_in, w_in, c_out, pad, h_out, w_out) in shapes {
            let s = ConvShape {
                batch,
                c_in,
                h_in,
                w_in,
                c_out,
                h_out,
                w_out,
                kernel: [3, 3],
                stride: [1, 1],
                pad,
            };
            assert!(applies(&s));
            let x = values(batch * s.in_len(), 0.3);
            let w = values(c_out * c_in * 9, 1.7);
            let bias = values(c_out, 5.0);
            let dy = values(batch * s.out_len(), 9.1);
            let want_y = direct::forward(&s, &x, &w, &bias);
            let want_dw = direct::weight_gradient(&s, &x, &dy);
            let y = forward(&s, &x, &w, Some(&bias));
            let scale_y = 9.0 * c_in as f64;
            for (i, (got, want)) in y.iter().zip(&want_y).enumerate() {
                assert!(
                    (*got as f64 - want).abs() < 2e-5 * scale_y,
                    "{s:?}: y[{i}] {got} vs {want}"
                );
            }
            assert_eq!(y.len(), want_y.len());
            let (dw, db) = backward_weight(&s, &x, &dy, true);
            let scale_w = (batch * h_out * w_out) as f64;
            for (i, (got, want)) in dw.iter().zip(&want_dw).enumerate() {
                assert!(
                    (*got as f64 - want).abs() < 2e-5 * scale_w,
                    "{s:?}: dW[{i}] {got} vs {want}"
                );
            }
            let db_want = crate::conv::channel_sums(&dy, batch, c_out, h_out * w_out);
            for (got, want) in db.unwrap().iter().zip(db_want) {
                assert!(
                    (got - want).abs() < 1e-5,
                    "{s:?}: bias gradient {got} vs {want}"
                );
            }
        }
    }
}
