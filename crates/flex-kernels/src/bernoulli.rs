//! The Bernoulli log-likelihood of binary data given logits, in one pass per row (where
//! the composed tensor version takes about ten), and its gradient: the kernels behind
//! [`bernoulli_log_prob`](super::bernoulli_log_prob) on flex.
//!
//! # Formula
//! ```text
//! log p(x | l) = Σ_i x_i l_i − softplus(l_i),   softplus(l) = max(l, 0) + ln(1 + e^{−|l|})
//! ∂/∂l_i = x_i − σ(l_i),   ∂/∂x_i = l_i
//! ```

use rayon::prelude::*;

use super::fast_math::{sigmoid, softplus};

/// Rows per parallel task: enough work per task to outweigh the scheduling.
fn rows_per_task(rows: usize, n: usize) -> usize {
    (16_384 / n.max(1)).clamp(1, rows.max(1))
}

/// `Σ_i x_i l_i − softplus(l_i)` for every row of `logits` and `x` (`[rows, n]`), in f64
/// from f32 partial sums over 16 lanes.
pub(crate) fn log_prob(logits: &[f32], x: &[f32], n: usize) -> Vec<f32> {
    let rows = logits.len() / n.max(1);
    let per_task = rows_per_task(rows, n);
    let mut out = vec![0.0f32; rows];
    out.par_chunks_mut(per_task)
        .zip(logits.par_chunks(per_task * n))
        .zip(x.par_chunks(per_task * n))
        .for_each(|((out, l), x)| {
            for ((o, l), x) in out.iter_mut().zip(l.chunks(n)).zip(x.chunks(n)) {
                *o = row_log_prob(l, x) as f32;
            }
        });
    out
}

#[inline]
fn row_log_prob(l: &[f32], x: &[f32]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { row_log_prob_avx512(l, x) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { row_log_prob_avx2(l, x) };
    }
    row_log_prob_generic(l, x)
}

/// [`row_log_prob_generic`] compiled for AVX-512 (sixteen values per instruction).
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn row_log_prob_avx512(l: &[f32], x: &[f32]) -> f64 {
    row_log_prob_generic(l, x)
}

/// [`row_log_prob_generic`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn row_log_prob_avx2(l: &[f32], x: &[f32]) -> f64 {
    row_log_prob_generic(l, x)
}

#[inline(always)]
fn row_log_prob_generic(l: &[f32], x: &[f32]) -> f64 {
    let mut total = 0f64;
    for (l_block, x_block) in l.chunks(256).zip(x.chunks(256)) {
        let mut lanes = [0f32; 16];
        let (mut ls, mut xs) = (l_block.chunks_exact(16), x_block.chunks_exact(16));
        for (lv, xv) in (&mut ls).zip(&mut xs) {
            let lv: &[f32; 16] = lv.try_into().expect("chunks of 16");
            let xv: &[f32; 16] = xv.try_into().expect("chunks of 16");
            for k in 0..16 {
                lanes[k] += xv[k] * lv[k] - softplus(lv[k]);
            }
        }
        let rest: f32 = ls
            .remainder()
            .iter()
            .zip(xs.remainder())
            .map(|(&l, &x)| x * l - softplus(l))
            .sum();
        total += lanes.iter().sum::<f32>() as f64 + rest as f64;
    }
    total
}

/// The gradients for the row gradients `g` (`[rows]`): `∂/∂l = g (x − σ(l))` and, with
/// `with_x`, `∂/∂x = g l`.
pub(crate) fn backward(
    logits: &[f32],
    x: &[f32],
    n: usize,
    g: &[f32],
    with_x: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let mut dl = vec![0.0f32; logits.len()];
    dl.par_chunks_mut(n)
        .zip(logits.par_chunks(n))
        .zip(x.par_chunks(n))
        .zip(g.par_iter())
        .for_each(|(((dl, l), x), &g)| logit_gradient(dl, l, x, g));
    let dx = with_x.then(|| {
        let mut dx = logits.to_vec();
        dx.par_chunks_mut(n)
            .zip(g.par_iter())
            .for_each(|(row, &g)| row.iter_mut().for_each(|v| *v *= g));
        dx
    });
    (dl, dx)
}

#[inline]
fn logit_gradient(dl: &mut [f32], l: &[f32], x: &[f32], g: f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { logit_gradient_avx2(dl, l, x, g) };
    }
    logit_gradient_generic(dl, l, x, g)
}

/// [`logit_gradient_generic`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn logit_gradient_avx2(dl: &mut [f32], l: &[f32], x: &[f32], g: f32) {
    logit_gradient_generic(dl, l, x, g)
}

#[inline(always)]
fn logit_gradient_generic(dl: &mut [f32], l: &[f32], x: &[f32], g: f32) {
    for ((d, &l), &x) in dl.iter_mut().zip(l).zip(x) {
        *d = g * (x - sigmoid(l));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the f64 definition, on logits from −40 to 40 and 0/1 data, 37 pixels a row
    /// (not a multiple of 8, so the remainders are used). Tolerance: 3e-7 absolute per
    /// pixel (the softplus error) times the 37 pixels.
    #[test]
    fn matches_the_definition() {
        let n = 37;
        let rows = 50;
        let l: Vec<f32> = (0..rows * n)
            .map(|i| 40.0 * ((i as f32) * 0.618).sin())
            .collect();
        let x: Vec<f32> = (0..rows * n)
            .map(|i| ((i * 7) % 3 == 0) as u8 as f32)
            .collect();
        let got = log_prob(&l, &x, n);
        for (r, &got) in got.iter().enumerate() {
            let want: f64 = (0..n)
                .map(|i| {
                    let (l, x) = (l[r * n + i] as f64, x[r * n + i] as f64);
                    x * l - (l.max(0.0) + (-l.abs()).exp().ln_1p())
                })
                .sum();
            assert!(
                (got as f64 - want).abs() < 3e-7 * n as f64 + 1e-6 * want.abs(),
                "row {r}: {got} vs {want}"
            );
        }
        let g: Vec<f32> = (0..rows).map(|r| 0.5 + r as f32 * 0.1).collect();
        let (dl, dx) = backward(&l, &x, n, &g, true);
        let dx = dx.unwrap();
        for i in 0..rows * n {
            let gr = g[i / n] as f64;
            let sig = 1.0 / (1.0 + (-(l[i] as f64)).exp());
            assert!((dl[i] as f64 - gr * (x[i] as f64 - sig)).abs() < 1e-6 * (1.0 + gr));
            assert!((dx[i] as f64 - gr * l[i] as f64).abs() < 1e-5);
        }
    }
}
