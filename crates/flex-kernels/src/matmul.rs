//! A safe wrapper around the `gemm` crate's strided f32 matrix product, the one
//! primitive the convolution kernels are built on.

/// A read-only strided matrix: element `(r, c)` is `data[r · row_stride + c · col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `[rows, cols]` matrix.
    pub fn row_major(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major `[cols, rows]` matrix, read as `[rows, cols]`.
    pub fn transposed(data: &'a [f32], rows: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: rows,
        }
    }

    /// Whether every element of an `[rows, cols]` view lies inside `data`.
    fn covers(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

use rayon::prelude::*;

/// The fewest multiply-adds (`m·n·k`) a product is split over the thread pool for: below
/// about this, waking a sleeping worker costs more than the half of the product it takes
/// (the MLP VAE's step, whose 400 → 40 and 20 → 400 products are this small, was 6% faster
/// with them serial).
const PARALLEL_MIN_PRODUCTS: usize = 1 << 21;

/// Rows of a part of a parallel product are a multiple of this.
const ROWS_PER_PART_MULTIPLE: usize = 8;

/// `dst = a · b` (or `dst += a · b` with `accumulate`), `a`: `[m, k]`, `b`: `[k, n]`, `dst`:
/// `[m, n]` with rows `dst_row_stride` apart (`n` for a plain row-major matrix).
/// `parallel` lets gemm split the product over the rayon pool (for calls that are not
/// already inside a parallel loop).
///
/// # Panics
/// If a view does not cover its matrix or `dst` is too short (internal invariants: the
/// kernels size every buffer from the same shape).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    dst: &mut [f32],
    dst_row_stride: usize,
    accumulate: bool,
    a: MatRef,
    b: MatRef,
    m: usize,
    n: usize,
    k: usize,
    parallel: bool,
) {
    assert!(
        dst_row_stride >= n && (m == 0 || dst.len() >= (m - 1) * dst_row_stride + n),
        "matmul: destination too short"
    );
    assert!(
        a.covers(m, k) && b.covers(k, n),
        "matmul: operand views out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in dst.chunks_mut(dst_row_stride).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    let threads = rayon::current_num_threads();
    let parallel = parallel && m * n * k >= PARALLEL_MIN_PRODUCTS;
    if parallel && threads > 1 && m >= 2 * ROWS_PER_PART_MULTIPLE {
        // One serial product per part of `dst`'s rows, one part per thread (rows in
        // multiples of 8): gemm's own split, over blocks of the output, runs the linear
        // layers' products (a short output side and a long inner one, or the reverse)
        // 1.2–1.7× slower than these in a training step.
        let rows = m.div_ceil(threads).next_multiple_of(ROWS_PER_PART_MULTIPLE);
        dst[..(m - 1) * dst_row_stride + n]
            .par_chunks_mut(rows * dst_row_stride)
            .enumerate()
            .for_each(|(part, dst)| {
                let first = part * rows;
                let a = MatRef {
                    data: &a.data[first * a.row_stride..],
                    ..a
                };
                let m = rows.min(m - first);
                matmul(dst, dst_row_stride, accumulate, a, b, m, n, k, false);
            });
        return;
    }
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index gemm forms inside the three slices:
    // dst (i, j) at i·dst_row_stride + j ≤ (m − 1)·dst_row_stride + n − 1; a (i, l) and
    // b (l, j) inside their views' bounds.
    // `dst` is borrowed mutably, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the triple loop, in f64, for accumulated products of a plain and a
    /// transposed operand into a destination with padded rows: small products (serial
    /// whatever is asked) and one above the parallel threshold, split over a pool of 3
    /// threads by parts of rows that do not divide its 61 rows evenly. Tolerance: the f32
    /// rounding of a sum of `k` products, `k · 2⁻²³` of the sum of their magnitudes.
    #[test]
    fn matches_the_triple_loop() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for (m, n, k, parallel) in [(5, 7, 3, false), (37, 9, 40, true), (61, 130, 270, true)] {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let bt: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.91).cos()).collect(); // [n, k]
            let stride = n + 2;
            let mut dst = vec![1.0f32; m * stride];
            pool.install(|| {
                matmul(
                    &mut dst,
                    stride,
                    true,
                    MatRef::row_major(&a, k),
                    MatRef::transposed(&bt, k),
                    m,
                    n,
                    k,
                    parallel,
                )
            });
            for i in 0..m {
                for j in 0..stride {
                    // The padding columns keep their 1.
                    let terms = (0..k)
                        .filter(|_| j < n)
                        .map(|l| a[i * k + l] as f64 * bt[j * k + l] as f64);
                    let want = 1.0 + terms.clone().sum::<f64>();
                    let magnitude = 1.0 + terms.map(f64::abs).sum::<f64>();
                    let got = dst[i * stride + j] as f64;
                    let tolerance = (k as f64 + 1.0) * magnitude / (1u64 << 23) as f64;
                    assert!((got - want).abs() <= tolerance, "{m}×{n}×{k}, ({i}, {j})");
                }
            }
        }
    }
}
