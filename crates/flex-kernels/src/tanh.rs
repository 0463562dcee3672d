//! The hyperbolic tangent as one parallel pass forward and one backward: the kernel behind
//! [`tanh`](super::tanh) on flex, where burn calls glibc's scalar `tanhf` once per element
//! on one thread. NVAE's soft clamp `5 tanh(x / 5)` of every latent group's parameters goes
//! through it.
//!
//! # Formula
//! ```text
//! y = tanh(x) = 1 − 2 / (e^{2x} + 1)        dx = dy (1 − y²)
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

/// `y = tanh(x)`.
pub(crate) fn forward(x: &[f32]) -> Vec<f32> {
    let fill = |y: &mut [MaybeUninit<f32>]| {
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| {
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { forward_chunk_avx512(y, x) };
                } else if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    return unsafe { forward_chunk_avx2(y, x) };
                }
                forward_chunk(y, x)
            });
    };
    // SAFETY: the chunks cover the output and `forward_chunk` writes each of its values.
    unsafe { vec_written_by(x.len(), fill) }
}

#[inline(always)]
fn forward_chunk(y: &mut [MaybeUninit<f32>], x: &[f32]) {
    for (o, &v) in y.iter_mut().zip(x) {
        o.write(1.0 - 2.0 / (exp(2.0 * v) + 1.0));
    }
}

/// [`forward_chunk`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn forward_chunk_avx2(y: &mut [MaybeUninit<f32>], x: &[f32]) {
    forward_chunk(y, x)
}

/// [`forward_chunk`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn forward_chunk_avx512(y: &mut [MaybeUninit<f32>], x: &[f32]) {
    forward_chunk(y, x)
}

/// The input gradient from the output gradient `grad` (in place) and the output `y`.
pub(crate) fn backward(grad: &mut [f32], y: &[f32]) {
    grad.par_chunks_mut(CHUNK)
        .zip(y.par_chunks(CHUNK))
        .for_each(|(g, y)| {
            for (d, &v) in g.iter_mut().zip(y) {
                *d *= 1.0 - v * v;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values against f64 `tanh` (2e-7 absolute: `exp`'s 2 ulp and one division), including
    /// arguments that overflow `e^{2x}` (±100) and NaN; the gradient against `1 − tanh²` in
    /// f64 (4e-7).
    #[test]
    fn values_and_gradient_match_the_definition() {
        let mut x: Vec<f32> = (0..40_000).map(|i| (i as f32 * 0.37).sin() * 9.0).collect();
        x.extend([100.0, -100.0, 0.0, 1e-6]);
        let y = forward(&x);
        for (&v, &got) in x.iter().zip(&y) {
            let want = (v as f64).tanh();
            assert!((got as f64 - want).abs() < 2e-7, "x {v}: {got} vs {want}");
        }
        assert!(forward(&[f32::NAN])[0].is_nan());
        let mut grad = vec![1.0f32; x.len()];
        backward(&mut grad, &y);
        for (&v, &got) in x.iter().zip(&grad) {
            let want = 1.0 - (v as f64).tanh().powi(2);
            assert!((got as f64 - want).abs() < 4e-7, "x {v}: {got} vs {want}");
        }
    }
}
