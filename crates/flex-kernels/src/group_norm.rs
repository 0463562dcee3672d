//! Group normalisation (Wu & He 2018), optionally followed by SiLU, as one pass over the
//! data forward and two backward, parallel over (image, group): the kernels behind
//! [`group_norm`](super::group_norm) and [`group_norm_silu`](super::group_norm_silu) on
//! flex, where burn composes about ten tensor operations, each a pass of its own.
//!
//! # Formula
//! ```text
//! μ_bg, σ²_bg = mean and biased variance of x[b, c, ·] over the channels c of group g
//! x̂ = (x − μ_bg) / √(σ²_bg + ε),   u = γ_c x̂ + β_c,   y = u   or   y = silu(u) = u σ(u)
//!
//! du   = dy   or   dy · σ(u) (1 + u (1 − σ(u)))
//! dβ_c = Σ_b Σ_pixels du,   dγ_c = Σ_b Σ_pixels du · x̂
//! dx   = (γ_c du − mean_g(γ du) − x̂ · mean_g(γ du x̂)) / √(σ²_bg + ε)
//! ```
//! where `mean_g` averages over the `N = (C/G) · pixels` values of the group.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::fast_math::sigmoid;
use super::sums::{BLOCK, sum_by};
use super::uninit::vec_written_by;

/// `x [batch, channels, pixels]` in `groups` groups of `channels / groups` channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GroupShape {
    pub batch: usize,
    pub channels: usize,
    pub pixels: usize,
    pub groups: usize,
}

impl GroupShape {
    fn channels_per_group(&self) -> usize {
        self.channels / self.groups
    }

    /// Values per (image, group): contiguous in `[batch, channels, pixels]`.
    fn group_len(&self) -> usize {
        self.channels_per_group() * self.pixels
    }
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

/// Pass 1 of the backward step for one channel, in place: `du` over `dy` in `grad_c`, and
/// `(Σ du, Σ du · x̂)` in f64 (as [`sum_by`]). A map, then a reduction: two simple loops
/// vectorise where one fused loop does not. (`SILU` is a constant for the same reason.)
#[inline(always)]
fn channel_du<const SILU: bool>(
    grad_c: &mut [f32],
    x_c: &[f32],
    mu: f32,
    r: f32,
    g: f32,
    b: f32,
) -> (f64, f64) {
    if SILU {
        for (d, &v) in grad_c.iter_mut().zip(x_c) {
            let u = g * ((v - mu) * r) + b;
            let sig = sigmoid(u);
            *d *= sig * (1.0 + u * (1.0 - sig));
        }
    }
    let sum_du = sum_by(grad_c, |d| d);
    let mut sum_du_xhat = 0f64;
    for (du_block, x_block) in grad_c.chunks(BLOCK).zip(x_c.chunks(BLOCK)) {
        let mut lanes = [0f32; 8];
        let (mut dus, mut xs) = (du_block.chunks_exact(8), x_block.chunks_exact(8));
        for (du, xv) in (&mut dus).zip(&mut xs) {
            let du: &[f32; 8] = du.try_into().expect("chunks of 8");
            let xv: &[f32; 8] = xv.try_into().expect("chunks of 8");
            for l in 0..8 {
                lanes[l] += du[l] * ((xv[l] - mu) * r);
            }
        }
        let rest: f32 = dus
            .remainder()
            .iter()
            .zip(xs.remainder())
            .map(|(&du, &v)| du * ((v - mu) * r))
            .sum();
        sum_du_xhat += lanes.iter().sum::<f32>() as f64 + rest as f64;
    }
    (sum_du, sum_du_xhat)
}

/// The normalised output and the per-(image, group) statistics the backward pass needs.
pub(crate) struct Forward {
    pub y: Vec<f32>,
    /// `μ_bg`, `[batch · groups]`.
    pub mean: Vec<f32>,
    /// `1 / √(σ²_bg + ε)`, `[batch · groups]`.
    pub inv_std: Vec<f32>,
}

/// `y = u` or `silu(u)` with `u = γ_c (x − μ_bg)/√(σ²_bg + ε) + β_c`.
pub(crate) fn forward(
    s: &GroupShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    silu: bool,
) -> Forward {
    let len = s.group_len();
    let mut stats = Vec::new();
    let fill = |y: &mut [MaybeUninit<f32>]| {
        stats = y
            .par_chunks_mut(len)
            .zip(x.par_chunks(len))
            .enumerate()
            .map(|(index, (y_g, x_g))| {
                let group = Group::of(s, index, gamma, beta, silu);
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    return unsafe { group.forward_avx2(y_g, x_g, epsilon) };
                }
                group.forward(y_g, x_g, epsilon)
            })
            .collect();
    };
    // SAFETY: the groups cover the output (its length is `x`'s), and `Group::forward`
    // writes every value of its group: `affine` over each channel's pixels.
    let y = unsafe { vec_written_by(x.len(), fill) };
    let (mean, inv_std) = stats.into_iter().unzip();
    Forward { y, mean, inv_std }
}

/// The gradients of [`forward`]: `grad` holds the output gradient `dy` on entry and the
/// input gradient `dx` on return; returns `(dγ, dβ)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    s: &GroupShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    grad: &mut [f32],
    silu: bool,
) -> (Vec<f32>, Vec<f32>) {
    let (cpg, len) = (s.channels_per_group(), s.group_len());
    // Per (image, group): Σ du and Σ du·x̂ for each of its channels.
    let sums: Vec<Vec<(f64, f64)>> = grad
        .par_chunks_mut(len)
        .zip(x.par_chunks(len))
        .enumerate()
        .map(|(index, (grad_g, x_g))| {
            let group = Group::of(s, index, gamma, beta, silu);
            let (mu, r) = (mean[index], inv_std[index]);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                return unsafe { group.backward_avx2(grad_g, x_g, mu, r) };
            }
            group.backward(grad_g, x_g, mu, r)
        })
        .collect();
    let mut d_gamma = vec![0.0f64; s.channels];
    let mut d_beta = vec![0.0f64; s.channels];
    for (index, channel_sums) in sums.iter().enumerate() {
        let first = (index % s.groups) * cpg;
        for (c, (s1, s2)) in channel_sums.iter().enumerate() {
            d_beta[first + c] += s1;
            d_gamma[first + c] += s2;
        }
    }
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
    (to_f32(d_gamma), to_f32(d_beta))
}

/// One (image, group): its channels' affine parameters and the work on its values.
struct Group<'a> {
    gamma: &'a [f32],
    beta: &'a [f32],
    pixels: usize,
    silu: bool,
}

impl<'a> Group<'a> {
    /// Group `index` of the `batch · groups` groups of `s` (its image is `index / groups`,
    /// its channels those of group `index mod groups`).
    fn of(s: &GroupShape, index: usize, gamma: &'a [f32], beta: &'a [f32], silu: bool) -> Self {
        let cpg = s.channels_per_group();
        let first = (index % s.groups) * cpg;
        Group {
            gamma: &gamma[first..first + cpg],
            beta: &beta[first..first + cpg],
            pixels: s.pixels,
            silu,
        }
    }

    /// The forward step on one group's values; returns `(μ, 1/σ)`.
    #[inline(always)]
    fn forward(&self, y_g: &mut [MaybeUninit<f32>], x_g: &[f32], epsilon: f64) -> (f32, f32) {
        let n = x_g.len() as f64;
        let mean = sum_by(x_g, |v| v) / n;
        let m = mean as f32;
        let var = sum_by(x_g, |v| (v - m) * (v - m)) / n;
        let inv_std = 1.0 / (var + epsilon).sqrt();
        let channels = y_g.chunks_mut(self.pixels).zip(x_g.chunks(self.pixels));
        for ((y_c, x_c), (&g, &b)) in channels.zip(self.gamma.iter().zip(self.beta)) {
            // u = a x + b with a = γ/σ, b = β − μ γ/σ
            let a = (g as f64 * inv_std) as f32;
            let b = (b as f64 - mean * g as f64 * inv_std) as f32;
            affine(y_c, x_c, a, b, self.silu);
        }
        (m, inv_std as f32)
    }

    /// [`forward`](Self::forward) compiled for AVX2 (8 lanes in every loop).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn forward_avx2(
        &self,
        y_g: &mut [MaybeUninit<f32>],
        x_g: &[f32],
        epsilon: f64,
    ) -> (f32, f32) {
        self.forward(y_g, x_g, epsilon)
    }

    /// The backward step on one group, in place (`dy` in, `dx` out); returns each
    /// channel's `(Σ du, Σ du·x̂)`.
    #[inline(always)]
    fn backward(&self, grad_g: &mut [f32], x_g: &[f32], mu: f32, r: f32) -> Vec<(f64, f64)> {
        let p = self.pixels;
        // Pass 1: du over dy, and the channel sums. (A plain loop: an iterator adapter
        // here would be compiled outside this function's target features.)
        let mut channel_sums = Vec::with_capacity(self.gamma.len());
        for (c, (du_c, x_c)) in grad_g.chunks_mut(p).zip(x_g.chunks(p)).enumerate() {
            let (g, b) = (self.gamma[c], self.beta[c]);
            channel_sums.push(if self.silu {
                channel_du::<true>(du_c, x_c, mu, r, g, b)
            } else {
                channel_du::<false>(du_c, x_c, mu, r, g, b)
            });
        }
        // Pass 2: dx over du, from the group means of γ du and γ du x̂.
        let n = x_g.len() as f64;
        let (mut m1, mut m2) = (0f64, 0f64);
        for (&(s1, s2), &g) in channel_sums.iter().zip(self.gamma) {
            m1 += g as f64 * s1;
            m2 += g as f64 * s2;
        }
        let (m1, m2) = ((m1 / n) as f32, (m2 / n) as f32);
        for ((dx_c, x_c), &g) in grad_g.chunks_mut(p).zip(x_g.chunks(p)).zip(self.gamma) {
            for (o, &v) in dx_c.iter_mut().zip(x_c) {
                let xhat = (v - mu) * r;
                *o = r * (g * *o - m1 - xhat * m2);
            }
        }
        channel_sums
    }

    /// [`backward`](Self::backward) compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn backward_avx2(
        &self,
        grad_g: &mut [f32],
        x_g: &[f32],
        mu: f32,
        r: f32,
    ) -> Vec<(f64, f64)> {
        self.backward(grad_g, x_g, mu, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as f32 + seed) * 0.754).sin() * 2.0)
            .collect()
    }

    /// The forward pass in f64, straight from the definition.
    fn reference(s: &GroupShape, x: &[f32], gamma: &[f32], beta: &[f32], silu: bool) -> Vec<f64> {
        let (cpg, len) = (s.channels_per_group(), s.group_len());
        let mut y = vec![0.0f64; x.len()];
        for (index, x_g) in x.chunks(len).enumerate() {
            let mean = x_g.iter().map(|&v| v as f64).sum::<f64>() / len as f64;
            let var = x_g.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / len as f64;
            for (i, &v) in x_g.iter().enumerate() {
                let c = (index % s.groups) * cpg + i / s.pixels;
                let u = gamma[c] as f64 * (v as f64 - mean) / (var + 1e-5).sqrt() + beta[c] as f64;
                y[index * len + i] = if silu { u / (1.0 + (-u).exp()) } else { u };
            }
        }
        y
    }

    /// The loss `L = Σ w · y` in f64, for central differences.
    fn loss(s: &GroupShape, x: &[f32], gamma: &[f32], beta: &[f32], w: &[f32], silu: bool) -> f64 {
        reference(s, x, gamma, beta, silu)
            .iter()
            .zip(w)
            .map(|(y, &w)| y * w as f64)
            .sum()
    }

    /// Forward against the definition (1e-5: f32 rounding of values of order 10) and every
    /// gradient against central differences of the f64 definition (step 1e-3, so the
    /// O(h²) truncation is about 1e-6 here; tolerance 2e-3 relative to the largest
    /// gradient, which leaves room for the kernel's f32 arithmetic).
    #[test]
    fn forward_and_gradients_match_the_definition() {
        for silu in [false, true] {
            let s = GroupShape {
                batch: 3,
                channels: 6,
                pixels: 5,
                groups: 2,
            };
            let n = s.batch * s.channels * s.pixels;
            let x = values(n, 0.1);
            let gamma = values(s.channels, 3.0);
            let beta = values(s.channels, 7.0);
            let w = values(n, 11.0);
            let f = forward(&s, &x, &gamma, &beta, 1e-5, silu);
            for (got, want) in f.y.iter().zip(reference(&s, &x, &gamma, &beta, silu)) {
                assert!((*got as f64 - want).abs() < 1e-5, "{got} vs {want}");
            }
            let mut dx = w.clone();
            let (dg, db) = backward(&s, &x, &gamma, &beta, &f.mean, &f.inv_std, &mut dx, silu);
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
