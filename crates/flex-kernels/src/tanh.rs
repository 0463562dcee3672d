//! The hyperbolic tangent, scaled, as one parallel pass forward and one backward: the
//! kernel behind [`tanh`](super::tanh) (`c = 1`) and [`soft_clamp`](super::soft_clamp) on
//! flex, where burn calls glibc's scalar `tanhf` once per element on one thread, and a
//! soft clamp composed of burn's ops takes three passes. NVAE's soft clamp `5 tanh(x / 5)`
//! of every latent group's parameters goes through it.
//!
//! # Formula
//! ```text
//! y = c · tanh(x / c) = c (1 − 2 / (e^{2x/c} + 1))        dx = dy (1 − (y / c)²)
//! ```
//! The form with `e^{2x}` is exact at both ends in f32 (`e^{2x}` overflows to the clamp of
//! [`exp`], giving 1; underflows to ~0, giving −1) and accurate to about 1e-7 absolute near
//! 0, where `tanh x ≈ x`; relative accuracy for `|x| < 1e-4` is not needed here.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::fast_math::exp;
use super::uninit::vec_written_by;

/// Values per parallel task.
const CHUNK: usize = 1 << 14;

/// `y = c · tanh(x / c)` (`c > 0`; `c = 1` is `tanh` itself, bit for bit).
pub(crate) fn forward(x: &[f32], c: f32) -> Vec<f32> {
    let fill = |y: &mut [MaybeUninit<f32>]| {
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| {
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { forward_chunk_avx512(y, x, c) };
                } else if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    return unsafe { forward_chunk_avx2(y, x, c) };
                }
                forward_chunk(y, x, c)
            });
    };
    // SAFETY: the chunks cover the output and `forward_chunk` writes each of its values.
    unsafe { vec_written_by(x.len(), fill) }
}

#[inline(always)]
fn forward_chunk(y: &mut [MaybeUninit<f32>], x: &[f32], c: f32) {
    // 2 / c is exactly 2 at c = 1, and multiplying by c = 1 is exact.
    let two_over_c = 2.0 / c;
    for (o, &v) in y.iter_mut().zip(x) {
        o.write(c * (1.0 - 2.0 / (exp(two_over_c * v) + 1.0)));
    }
}

/// [`forward_chunk`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn forward_chunk_avx2(y: &mut [MaybeUninit<f32>], x: &[f32], c: f32) {
    forward_chunk(y, x, c)
}

/// [`forward_chunk`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn forward_chunk_avx512(y: &mut [MaybeUninit<f32>], x: &[f32], c: f32) {
    forward_chunk(y, x, c)
}

/// The input gradient from the output gradient `grad` (in place) and the output `y` of
/// [`forward`] with the same `c`.
pub(crate) fn backward(grad: &mut [f32], y: &[f32], c: f32) {
    // 1 / c is exactly 1 at c = 1.
    let inv_c = 1.0 / c;
    grad.par_chunks_mut(CHUNK)
        .zip(y.par_chunks(CHUNK))
        .for_each(|(g, y)| {
            for (d, &v) in g.iter_mut().zip(y) {
                let t = v * inv_c;
                *d *= 1.0 - t * t;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values against f64 `c tanh(x / c)` for `c = 1` and NVAE's `c = 5` (absolute 2e-7
    /// for `tanh`, from `exp`'s 2 ulp and one division, plus half an ulp of the product by
    /// `c`, together 3.2e-7 times `c`), including
    /// arguments that overflow `e^{2x/c}` (±100 c) and NaN; the gradient against
    /// `1 − tanh²(x / c)` in f64 (4e-7 plus the rounding of `y / c`).
    #[test]
    fn values_and_gradient_match_the_definition() {
        for c in [1.0f32, 5.0] {
            let mut x: Vec<f32> = (0..40_000)
                .map(|i| (i as f32 * 0.37).sin() * 9.0 * c)
                .collect();
            x.extend([100.0 * c, -100.0 * c, 0.0, 1e-6]);
            let y = forward(&x, c);
            let tanh = |v: f32| (v as f64 / c as f64).tanh();
            for (&v, &got) in x.iter().zip(&y) {
                let want = c as f64 * tanh(v);
                let tol = 3.2e-7 * c as f64;
                assert!(
                    (got as f64 - want).abs() < tol,
                    "c {c}, x {v}: {got} vs {want}"
                );
            }
            assert!(forward(&[f32::NAN], c)[0].is_nan());
            let mut grad = vec![1.0f32; x.len()];
            backward(&mut grad, &y, c);
            for (&v, &got) in x.iter().zip(&grad) {
                let want = 1.0 - tanh(v).powi(2);
                assert!(
                    (got as f64 - want).abs() < 5e-7,
                    "c {c}, x {v}: {got} vs {want}"
                );
            }
        }
    }
}
