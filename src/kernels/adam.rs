//! One Adam / AdamW update of a parameter in a single pass over its values, moments and
//! gradient (burn's Adam takes about a dozen element-wise passes, each with a fresh
//! buffer): the kernel behind [`FusedAdam`](crate::optim::FusedAdam) on flex.
//!
//! # Formula
//! The last line of [`optim`](crate::optim)'s formula, per value:
//! ```text
//! m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²,   θ ← (1 − η λ) θ − s m / (√v + ε')
//! ```

use rayon::prelude::*;

use crate::optim::AdamStep;

/// Values per parallel task: large enough that scheduling costs little next to a pass
/// over them.
const CHUNK: usize = 32 * 1024;

/// Updates `theta`, `m` and `v` in place from the gradient `g` (all of one length).
pub(crate) fn update(s: &AdamStep, theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    debug_assert!(theta.len() == g.len() && m.len() == g.len() && v.len() == g.len());
    if g.len() <= CHUNK {
        update_chunk(s, theta, m, v, g);
        return;
    }
    theta
        .par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK))
        .for_each(|(((theta, m), v), g)| update_chunk(s, theta, m, v, g));
}

fn update_chunk(s: &AdamStep, theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        unsafe { update_avx2(s, theta, m, v, g) };
        return;
    }
    update_generic(s, theta, m, v, g);
}

/// [`update_generic`] compiled for AVX2 (eight values per instruction).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn update_avx2(s: &AdamStep, theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    update_generic(s, theta, m, v, g);
}

#[inline(always)]
fn update_generic(s: &AdamStep, theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    let (b1, b2) = (s.beta_1, s.beta_2);
    let (c1, c2) = (1.0 - b1, 1.0 - b2);
    for (((theta, m), v), &g) in theta.iter_mut().zip(m).zip(v).zip(g) {
        *m = b1 * *m + c1 * g;
        *v = b2 * *v + c2 * (g * g);
        *theta = s.decay * *theta - s.step_size * *m / (v.sqrt() + s.epsilon);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three steps of the kernel against algorithm 1 written out in f64 with the bias
    /// corrections applied to the moments (the paper's form, not the folded one), on
    /// more values than one chunk so the parallel path runs. Tolerance: the f32 moments
    /// carry a relative rounding error of a few ulp per step, so the update agrees to
    /// 1e-5 of the step size η plus 1e-6 of |θ|.
    #[test]
    fn matches_algorithm_1_in_f64() {
        let n = 3 * CHUNK + 17;
        let (lr, b1, b2, eps, wd) = (1e-2f64, 0.9f32, 0.999f32, 1e-8f32, 0.1f32);
        let adam = crate::optim::FusedAdamConfig::new()
            .with_weight_decay(wd)
            .build()
            .unwrap();
        let mut theta: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
        let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        let mut theta64: Vec<f64> = theta.iter().map(|&x| x as f64).collect();
        let (mut m64, mut v64) = (vec![0.0f64; n], vec![0.0f64; n]);
        for t in 1..=3 {
            let g: Vec<f32> = (0..n)
                .map(|i| ((i * t) as f32 * 0.11).cos() * if i % 7 == 0 { 1e-4 } else { 1.0 })
                .collect();
            update(&adam.step_scalars(lr, t), &mut theta, &mut m, &mut v, &g);
            for i in 0..n {
                let gi = g[i] as f64;
                m64[i] = b1 as f64 * m64[i] + (1.0 - b1 as f64) * gi;
                v64[i] = b2 as f64 * v64[i] + (1.0 - b2 as f64) * gi * gi;
                let m_hat = m64[i] / (1.0 - (b1 as f64).powi(t as i32));
                let v_hat = v64[i] / (1.0 - (b2 as f64).powi(t as i32));
                theta64[i] =
                    (1.0 - lr * wd as f64) * theta64[i] - lr * m_hat / (v_hat.sqrt() + eps as f64);
            }
        }
        for i in 0..n {
            let err = (theta[i] as f64 - theta64[i]).abs();
            assert!(
                err < 1e-5 * lr + 1e-6 * theta64[i].abs(),
                "value {i}: {} vs {}",
                theta[i],
                theta64[i]
            );
        }
    }
}
