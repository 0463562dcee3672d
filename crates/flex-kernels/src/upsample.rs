//! Nearest-neighbour upsampling by 2 and its adjoint, one pass each: the kernels behind
//! [`upsample_nearest2`](super::upsample_nearest2) on flex, where burn's
//! `reshape → expand → reshape` copies the expanded view element by element through a
//! generic strided iterator (5% of a U-Net sampling step).
//!
//! # Formula
//! ```text
//! y[p, 2i + a, 2j + b] = x[p, i, j]                     a, b ∈ {0, 1}
//! dx[p, i, j] = Σ_{a,b} dy[p, 2i + a, 2j + b]            (the adjoint: 2×2 sum pooling)
//! ```
//! for every plane `p` (image and channel) of `h × w` pixels.

use rayon::prelude::*;

/// Planes per parallel task: enough pixels that scheduling costs little.
fn planes_per_task(plane_len: usize) -> usize {
    (16_384 / plane_len.max(1)).max(1)
}

/// `y` (`[planes, 2h, 2w]`) from `x` (`[planes, h, w]`).
pub(crate) fn forward(x: &[f32], h: usize, w: usize) -> Vec<f32> {
    let plane = h * w;
    let mut y = vec![0.0f32; 4 * x.len()];
    let per_task = planes_per_task(plane);
    y.par_chunks_mut(4 * plane * per_task)
        .zip(x.par_chunks(plane * per_task))
        .for_each(|(y, x)| {
            for (y_row_pair, x_row) in y.chunks_exact_mut(4 * w).zip(x.chunks_exact(w)) {
                let (top, bottom) = y_row_pair.split_at_mut(2 * w);
                for (pair, &v) in top.chunks_exact_mut(2).zip(x_row) {
                    pair[0] = v;
                    pair[1] = v;
                }
                bottom.copy_from_slice(top);
            }
        });
    y
}

/// `dx` (`[planes, h, w]`) from `dy` (`[planes, 2h, 2w]`).
pub(crate) fn backward(dy: &[f32], h: usize, w: usize) -> Vec<f32> {
    let plane = h * w;
    let mut dx = vec![0.0f32; dy.len() / 4];
    let per_task = planes_per_task(plane);
    dx.par_chunks_mut(plane * per_task)
        .zip(dy.par_chunks(4 * plane * per_task))
        .for_each(|(dx, dy)| {
            for (dx_row, dy_row_pair) in dx.chunks_exact_mut(w).zip(dy.chunks_exact(4 * w)) {
                let (top, bottom) = dy_row_pair.split_at(2 * w);
                for ((d, t), b) in dx_row
                    .iter_mut()
                    .zip(top.chunks_exact(2))
                    .zip(bottom.chunks_exact(2))
                {
                    *d = (t[0] + t[1]) + (b[0] + b[1]);
                }
            }
        });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both passes against the definitions, entry by entry, on planes of odd sizes and
    /// more planes than one task holds; and the adjoint identity
    /// `⟨dy, up(x)⟩ = ⟨down(dy), x⟩` in f64, to 1e-6 of `Σ |dy · up(x)|` (each entry of
    /// `down(dy)` is rounded to f32 once, 6e-8 relative).
    #[test]
    fn passes_match_the_definitions() {
        for (planes, h, w) in [(3, 1, 1), (2, 3, 5), (700, 5, 7)] {
            let x: Vec<f32> = (0..planes * h * w)
                .map(|i| (i as f32 * 0.37).sin())
                .collect();
            let dy: Vec<f32> = (0..4 * x.len()).map(|i| (i as f32 * 0.91).cos()).collect();
            let y = forward(&x, h, w);
            let dx = backward(&dy, h, w);
            assert_eq!((y.len(), dx.len()), (4 * x.len(), x.len()));
            for p in 0..planes {
                for r in 0..2 * h {
                    for c in 0..2 * w {
                        let at = (p * 2 * h + r) * 2 * w + c;
                        assert_eq!(y[at], x[(p * h + r / 2) * w + c / 2]);
                    }
                }
                for i in 0..h {
                    for j in 0..w {
                        let at = |a: usize, b: usize| (p * 2 * h + 2 * i + a) * 2 * w + 2 * j + b;
                        let want = (dy[at(0, 0)] + dy[at(0, 1)]) + (dy[at(1, 0)] + dy[at(1, 1)]);
                        assert_eq!(dx[(p * h + i) * w + j], want);
                    }
                }
            }
            let lhs: f64 = dy.iter().zip(&y).map(|(a, b)| *a as f64 * *b as f64).sum();
            let rhs: f64 = dx.iter().zip(&x).map(|(a, b)| *a as f64 * *b as f64).sum();
            let scale: f64 = dy
                .iter()
                .zip(&y)
                .map(|(a, b)| (*a as f64 * *b as f64).abs())
                .sum();
            assert!((lhs - rhs).abs() < 1e-6 * scale, "{lhs} vs {rhs}");
        }
    }
}
