//! Batch normalisation (Ioffe & Szegedy 2015), optionally followed by SiLU: the kernels
//! behind [`batch_norm`](super::batch_norm) and [`batch_norm_silu`](super::batch_norm_silu)
//! on flex. burn computes a training-mode batch norm from about ten tensor operations,
//! two of them transposing copies of the whole input (to reduce over the batch), and its
//! backward pass from as many again; here the statistics are one pass over the data, the
//! normalisation (and SiLU) a second, and the backward pass two more, each parallel.
//!
//! # Formula
//! ```text
//! μ_c, σ²_c = mean and biased variance of x[·, c, ·] over the batch and the pixels
//!             (training), or the running statistics (inference)
//! x̂ = (x − μ_c) / √(σ²_c + ε),   u = γ_c x̂ + β_c,   y = u   or   y = silu(u) = u σ(u)
//!
//! du   = dy   or   dy · σ(u) (1 + u (1 − σ(u)))
//! dβ_c = Σ du,   dγ_c = Σ du · x̂                      (sums over the batch and pixels)
//! dx   = (γ_c du − mean_c(γ du) − x̂ · mean_c(γ du x̂)) / √(σ²_c + ε)      (training)
//! ```
//! where `mean_c` averages over the `N = batch · pixels` values of channel `c`.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::fast_math::sigmoid;
use super::sums::sum_by;
use super::uninit::vec_written_by;

/// `x [batch, channels, pixels]`, normalised per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChannelShape {
    pub batch: usize,
    pub channels: usize,
    pub pixels: usize,
}

impl ChannelShape {
    /// Values per channel, `N = batch · pixels`.
    fn per_channel(&self) -> usize {
        self.batch * self.pixels
    }

    /// The channel of plane `index` (planes are `[batch, channels]` in row-major order).
    fn channel_of(&self, index: usize) -> usize {
        index % self.channels
    }
}

/// The mean and biased variance of every channel, `[channels]` each: one parallel pass
/// per channel over its `batch` planes (f64 sums, as [`sum_by`]).
pub(crate) fn statistics(s: &ChannelShape, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let p = s.pixels;
    let plane = |b: usize, c: usize| &x[(b * s.channels + c) * p..][..p];
    (0..s.channels)
        .into_par_iter()
        .map(|c| {
            let n = s.per_channel() as f64;
            let mean = (0..s.batch)
                .map(|b| sum_by(plane(b, c), |v| v))
                .sum::<f64>()
                / n;
            let m = mean as f32;
            let var = (0..s.batch)
                .map(|b| sum_by(plane(b, c), |v| (v - m) * (v - m)))
                .sum::<f64>()
                / n;
            (m, var as f32)
        })
        .unzip()
}

/// The per-channel affine map `u = a_c x + b_c` of the normalisation with statistics
/// `(mean, var)`: `a_c = γ_c / √(σ²_c + ε)`, `b_c = β_c − μ_c a_c` (computed in f64).
pub(crate) fn affine_coefficients(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>) {
    gamma
        .iter()
        .zip(beta)
        .zip(mean.iter().zip(var))
        .map(|((&g, &b), (&m, &v))| {
            let a = g as f64 / (v as f64 + epsilon).sqrt();
            (a as f32, (b as f64 - m as f64 * a) as f32)
        })
        .unzip()
}

/// `y = u` or `silu(u)` with `u = a_c x + b_c`, parallel over the planes.
pub(crate) fn normalise(s: &ChannelShape, x: &[f32], a: &[f32], b: &[f32], silu: bool) -> Vec<f32> {
    let p = s.pixels;
    let fill = |y: &mut [MaybeUninit<f32>]| {
        y.par_chunks_mut(p)
            .zip(x.par_chunks(p))
            .enumerate()
            .for_each(|(index, (y_c, x_c))| {
                let c = s.channel_of(index);
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { affine_avx512(y_c, x_c, a[c], b[c], silu) };
                } else if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    return unsafe { affine_avx2(y_c, x_c, a[c], b[c], silu) };
                }
                affine(y_c, x_c, a[c], b[c], silu)
            });
    };
    // SAFETY: the planes cover the output (its length is `x`'s) and `affine` writes every
    // value of its plane.
    unsafe { vec_written_by(x.len(), fill) }
}

/// `u = a x + b`, then `silu(u)` with `silu`, from `x` into `y`.
#[inline(always)]
fn affine(y: &mut [MaybeUninit<f32>], x: &[f32], a: f32, b: f32, silu: bool) {
    if silu {
        for (o, &v) in y.iter_mut().zip(x) {
            let u = a * v + b;
            o.write(u * sigmoid(u));
        }
    } else {
        for (o, &v) in y.iter_mut().zip(x) {
            o.write(a * v + b);
        }
    }
}

/// [`affine`] compiled for AVX2 (8 lanes, the sigmoid's `exp` included).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn affine_avx2(y: &mut [MaybeUninit<f32>], x: &[f32], a: f32, b: f32, silu: bool) {
    affine(y, x, a, b, silu)
}

/// [`affine`] compiled for AVX-512 (16 lanes).
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn affine_avx512(y: &mut [MaybeUninit<f32>], x: &[f32], a: f32, b: f32, silu: bool) {
    affine(y, x, a, b, silu)
}

/// The gradients of the training-mode forward pass: `grad` holds the output gradient `dy`
/// on entry and the input gradient `dx` on return; returns `(dγ, dβ)`. `mean` and
/// `inv_std` (`1/√(σ²_c + ε)`) are the batch statistics the forward pass used.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    s: &ChannelShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    grad: &mut [f32],
    silu: bool,
) -> (Vec<f32>, Vec<f32>) {
    let p = s.pixels;
    // Pass 1, per plane: du over dy in place, and (Σ du, Σ du·x̂).
    let sums: Vec<(f64, f64)> = grad
        .par_chunks_mut(p)
        .zip(x.par_chunks(p))
        .enumerate()
        .map(|(index, (du, x_c))| {
            let c = s.channel_of(index);
            let args = (mean[c], inv_std[c], gamma[c], beta[c]);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                return unsafe { plane_du_avx512(du, x_c, args, silu) };
            } else if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                return unsafe { plane_du_avx2(du, x_c, args, silu) };
            }
            plane_du(du, x_c, args, silu)
        })
        .collect();
    let mut d_gamma = vec![0f64; s.channels];
    let mut d_beta = vec![0f64; s.channels];
    for (index, (s1, s2)) in sums.into_iter().enumerate() {
        let c = s.channel_of(index);
        d_beta[c] += s1;
        d_gamma[c] += s2;
    }
    // Pass 2, per plane: dx = r (γ du − mean(γ du) − x̂ mean(γ du x̂)).
    let n = s.per_channel() as f64;
    let m1: Vec<f32> = (0..s.channels)
        .map(|c| (gamma[c] as f64 * d_beta[c] / n) as f32)
        .collect();
    let m2: Vec<f32> = (0..s.channels)
        .map(|c| (gamma[c] as f64 * d_gamma[c] / n) as f32)
        .collect();
    grad.par_chunks_mut(p)
        .zip(x.par_chunks(p))
        .enumerate()
        .for_each(|(index, (dx, x_c))| {
            let c = s.channel_of(index);
            let (mu, r, g) = (mean[c], inv_std[c], gamma[c]);
            let (m1, m2) = (m1[c], m2[c]);
            for (o, &v) in dx.iter_mut().zip(x_c) {
                let xhat = (v - mu) * r;
                *o = r * (g * *o - m1 - xhat * m2);
            }
        });
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
    (to_f32(d_gamma), to_f32(d_beta))
}

/// Pass 1 of [`backward`] on one plane, in place: `du` over `dy`, and `(Σ du, Σ du · x̂)`.
/// `args` is `(μ_c, 1/σ_c, γ_c, β_c)`. A map, then two reductions: simple loops vectorise
/// where one fused loop does not.
#[inline(always)]
fn plane_du(du: &mut [f32], x: &[f32], args: (f32, f32, f32, f32), silu: bool) -> (f64, f64) {
    let (mu, r, g, b) = args;
    if silu {
        for (d, &v) in du.iter_mut().zip(x) {
            let u = g * ((v - mu) * r) + b;
            let sig = sigmoid(u);
            *d *= sig * (1.0 + u * (1.0 - sig));
        }
    }
    let sum_du = sum_by(du, |d| d);
    let mut lanes = [0f32; 8];
    let (mut dus, mut xs) = (du.chunks_exact(8), x.chunks_exact(8));
    for (d, xv) in (&mut dus).zip(&mut xs) {
        let d: &[f32; 8] = d.try_into().expect("chunks of 8");
        let xv: &[f32; 8] = xv.try_into().expect("chunks of 8");
        for l in 0..8 {
            lanes[l] += d[l] * ((xv[l] - mu) * r);
        }
    }
    let rest: f32 = dus
        .remainder()
        .iter()
        .zip(xs.remainder())
        .map(|(&d, &v)| d * ((v - mu) * r))
        .sum();
    (sum_du, lanes.iter().sum::<f32>() as f64 + rest as f64)
}

/// [`plane_du`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn plane_du_avx2(
    du: &mut [f32],
    x: &[f32],
    args: (f32, f32, f32, f32),
    silu: bool,
) -> (f64, f64) {
    plane_du(du, x, args, silu)
}

/// [`plane_du`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn plane_du_avx512(
    du: &mut [f32],
    x: &[f32],
    args: (f32, f32, f32, f32),
    silu: bool,
) -> (f64, f64) {
    plane_du(du, x, args, silu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as f32 + seed) * 0.754).sin() * 2.0 + 0.3)
            .collect()
    }

    const EPS: f64 = 1e-5;

    /// The training-mode forward pass in f64, straight from the definition.
    fn reference(s: &ChannelShape, x: &[f32], gamma: &[f32], beta: &[f32], silu: bool) -> Vec<f64> {
        let p = s.pixels;
        let n = s.per_channel() as f64;
        let index = |b: usize, c: usize, i: usize| (b * s.channels + c) * p + i;
        let mut y = vec![0.0f64; x.len()];
        for c in 0..s.channels {
            let all = || (0..s.batch).flat_map(move |b| (0..p).map(move |i| index(b, c, i)));
            let mean = all().map(|j| x[j] as f64).sum::<f64>() / n;
            let var = all().map(|j| (x[j] as f64 - mean).powi(2)).sum::<f64>() / n;
            for j in all() {
                let u =
                    gamma[c] as f64 * (x[j] as f64 - mean) / (var + EPS).sqrt() + beta[c] as f64;
                y[j] = if silu { u / (1.0 + (-u).exp()) } else { u };
            }
        }
        y
    }

    /// The loss `L = Σ w · y` in f64, for central differences.
    fn loss(
        s: &ChannelShape,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        w: &[f32],
        silu: bool,
    ) -> f64 {
        reference(s, x, gamma, beta, silu)
            .iter()
            .zip(w)
            .map(|(y, &w)| y * w as f64)
            .sum()
    }

    /// Forward against the definition (1e-5: f32 rounding of values of order 10) and every
    /// gradient against central differences of the f64 definition (step 1e-3: the O(h²)
    /// truncation is about 1e-6 here; tolerance 2e-3 of the largest gradient, room for the
    /// kernel's f32 arithmetic and far below the O(1) error of a wrong index or term).
    #[test]
    fn forward_and_gradients_match_the_definition() {
        for silu in [false, true] {
            let s = ChannelShape {
                batch: 3,
                channels: 4,
                pixels: 5,
            };
            let n = s.batch * s.channels * s.pixels;
            let x = values(n, 0.1);
            let gamma = values(s.channels, 3.0);
            let beta = values(s.channels, 7.0);
            let w = values(n, 11.0);
            let (mean, var) = statistics(&s, &x);
            let (a, b) = affine_coefficients(&gamma, &beta, &mean, &var, EPS);
            let y = normalise(&s, &x, &a, &b, silu);
            for (got, want) in y.iter().zip(reference(&s, &x, &gamma, &beta, silu)) {
                assert!((*got as f64 - want).abs() < 1e-5, "{got} vs {want}");
            }
            let inv_std: Vec<f32> = var
                .iter()
                .map(|&v| (1.0 / (v as f64 + EPS).sqrt()) as f32)
                .collect();
            let mut dx = w.clone();
            let (dg, db) = backward(&s, &x, &gamma, &beta, &mean, &inv_std, &mut dx, silu);
            let h = 1e-3f32;
            let numeric = |which: usize, i: usize| {
                let mut v = [x.clone(), gamma.clone(), beta.clone()];
                v[which][i] += h;
                let up = loss(&s, &v[0], &v[1], &v[2], &w, silu);
                v[which][i] -= 2.0 * h;
                let down = loss(&s, &v[0], &v[1], &v[2], &w, silu);
                (up - down) / (2.0 * h as f64)
            };
            let scale = dx
                .iter()
                .chain(&dg)
                .chain(&db)
                .fold(0f32, |m, v| m.max(v.abs())) as f64;
            for (which, grad) in [(0, &dx), (1, &dg), (2, &db)] {
                for (i, &g) in grad.iter().enumerate() {
                    let want = numeric(which, i);
                    assert!(
                        (g as f64 - want).abs() < 2e-3 * scale,
                        "silu {silu}, input {which}[{i}]: {g} vs {want}"
                    );
                }
            }
        }
    }
}
