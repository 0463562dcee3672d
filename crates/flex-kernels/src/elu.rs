//! The exponential linear unit (Clevert et al. 2016) as one parallel pass forward and one
//! backward: the kernel behind [`elu`](super::elu) on flex, where burn computes it with a
//! mask, a scalar `expf` per element and a select, on one thread. NVAE applies it before
//! its prior heads and its image head (a `[draws, 16, 28, 28]` map on MNIST).
//!
//! # Formula
//! ```text
//! y = x               for x > 0,      α (eˣ − 1)   otherwise
//! dx = dy             for x > 0,      dy (y + α)   otherwise      (since α eˣ = y + α)
//! ```
//! For `α > 0`, `y > 0` exactly where `x > 0`, so the backward pass needs only `y`.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::fast_math::exp;
use super::uninit::vec_written_by;

/// Values per parallel task.
const CHUNK: usize = 1 << 14;

/// `y = elu(x)`.
pub(crate) fn forward(x: &[f32], alpha: f32) -> Vec<f32> {
    let fill = |y: &mut [MaybeUninit<f32>]| {
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| {
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { forward_chunk_avx512(y, x, alpha) };
                } else if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    return unsafe { forward_chunk_avx2(y, x, alpha) };
                }
                forward_chunk(y, x, alpha)
            });
    };
    // SAFETY: the chunks cover the output and `forward_chunk` writes each of its values.
    unsafe { vec_written_by(x.len(), fill) }
}

#[inline(always)]
fn forward_chunk(y: &mut [MaybeUninit<f32>], x: &[f32], alpha: f32) {
    for (o, &v) in y.iter_mut().zip(x) {
        // exp of min(x, 0), so that the unused branch cannot overflow.
        let negative = alpha * (exp(v.min(0.0)) - 1.0);
        o.write(if v > 0.0 { v } else { negative });
    }
}

/// [`forward_chunk`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn forward_chunk_avx2(y: &mut [MaybeUninit<f32>], x: &[f32], alpha: f32) {
    forward_chunk(y, x, alpha)
}

/// [`forward_chunk`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn forward_chunk_avx512(y: &mut [MaybeUninit<f32>], x: &[f32], alpha: f32) {
    forward_chunk(y, x, alpha)
}

/// The input gradient from the output gradient `grad` (in place) and the output `y`.
pub(crate) fn backward(grad: &mut [f32], y: &[f32], alpha: f32) {
    grad.par_chunks_mut(CHUNK)
        .zip(y.par_chunks(CHUNK))
        .for_each(|(g, y)| {
            for (d, &v) in g.iter_mut().zip(y) {
                *d *= if v > 0.0 { 1.0 } else { v + alpha };
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values against `x` or `α(eˣ − 1)` in f64 (3e-7: `exp`'s 2 ulp on values below 1),
    /// and the gradient against central differences of the f64 function (step 1e-4 away
    /// from the kink at 0; tolerance 1e-4 for the O(h²) truncation and f32 rounding).
    #[test]
    fn values_and_gradient_match_the_definition() {
        let alpha = 1.3f32;
        let x: Vec<f32> = (0..40_000).map(|i| (i as f32 * 0.37).sin() * 6.0).collect();
        let f = |v: f64| {
            if v > 0.0 {
                v
            } else {
                alpha as f64 * (v.exp() - 1.0)
            }
        };
        let y = forward(&x, alpha);
        for (&v, &got) in x.iter().zip(&y) {
            assert!((got as f64 - f(v as f64)).abs() < 3e-7 * (1.0 + v.abs() as f64));
        }
        let mut grad = vec![1.0f32; x.len()];
        backward(&mut grad, &y, alpha);
        let h = 1e-4;
        for ((&v, &got), _) in x
            .iter()
            .zip(&grad)
            .zip(0..)
            .filter(|((v, _), _)| v.abs() > 1e-3)
        {
            let want = (f(v as f64 + h) - f(v as f64 - h)) / (2.0 * h);
            assert!((got as f64 - want).abs() < 1e-4, "x {v}: {got} vs {want}");
        }
    }
}
