//! Matrix transposes in 8 × 8 blocks: the layout changes between channels-first tensors
//! and the channels-last scratch of [`channels_last`](super::channels_last).
//!
//! Element by element, a transpose writes (or reads) one float per cache line it touches
//! and checks a bound per float; that was 9% of the conv VAE's training step. A block is
//! read as 8 runs of 8 floats and written as 8 runs of 8.

/// Rows and columns of a block.
const B: usize = 8;

/// `dst[c · dst_stride + r] = src[r · src_stride + c]` for `r < rows`, `c < cols`: the
/// transpose of the `[rows, cols]` matrix whose rows start `src_stride` apart, into one
/// whose rows start `dst_stride` apart.
///
/// # Panics
/// If either slice is too short for its matrix (an internal invariant).
pub(super) fn transpose_strided(
    src: &[f32],
    src_stride: usize,
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    dst_stride: usize,
) {
    for r0 in (0..rows).step_by(B) {
        let rn = B.min(rows - r0);
        for c0 in (0..cols).step_by(B) {
            let cn = B.min(cols - c0);
            if rn == B && cn == B {
                let mut block = [[0.0f32; B]; B];
                for (i, row) in block.iter_mut().enumerate() {
                    row.copy_from_slice(&src[(r0 + i) * src_stride + c0..][..B]);
                }
                for j in 0..B {
                    let out = &mut dst[(c0 + j) * dst_stride + r0..][..B];
                    for (i, v) in out.iter_mut().enumerate() {
                        *v = block[i][j];
                    }
                }
            } else {
                for i in 0..rn {
                    for j in 0..cn {
                        dst[(c0 + j) * dst_stride + r0 + i] = src[(r0 + i) * src_stride + c0 + j];
                    }
                }
            }
        }
    }
}

/// `dst[c · rows + r] = src[r · cols + c]`: the transpose of a row-major `[rows, cols]`
/// matrix.
pub(super) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    transpose_strided(src, cols, rows, cols, dst, rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the definition, element by element, for sizes with and without partial
    /// blocks and for padded strides (the padding is left untouched). Exact: values are
    /// only moved.
    #[test]
    fn matches_the_definition() {
        for (rows, cols, src_pad, dst_pad) in [
            (8, 8, 0, 0),
            (17, 9, 3, 0),
            (5, 21, 0, 2),
            (1, 1, 1, 1),
            (0, 4, 0, 0),
        ] {
            let (src_stride, dst_stride) = (cols + src_pad, rows + dst_pad);
            let src: Vec<f32> = (0..rows * src_stride).map(|i| i as f32).collect();
            let mut dst = vec![-1.0f32; cols * dst_stride];
            transpose_strided(&src, src_stride, rows, cols, &mut dst, dst_stride);
            for c in 0..cols {
                for r in 0..dst_stride {
                    let want = if r < rows {
                        src[r * src_stride + c]
                    } else {
                        -1.0
                    };
                    assert_eq!(dst[c * dst_stride + r], want, "{rows}×{cols}: ({r}, {c})");
                }
            }
        }
    }
}
