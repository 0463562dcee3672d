//! Per-thread scratch space for the convolution kernels, kept between calls.

use std::cell::RefCell;

thread_local! {
    /// Each thread's scratch buffer, kept between calls and only ever grown: allocating and
    /// zeroing a fresh megabyte per task was 5% of a U-Net sampling step. Its contents are
    /// whatever the last user left: every kernel writes the entries it later reads (or
    /// clears them itself).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `N` scratch slices of the lengths `lens`, cut from this thread's buffer
/// (or from a fresh one, should the buffer already be in use further up this thread's
/// stack).
pub(super) fn with_scratch<const N: usize, R>(
    lens: [usize; N],
    f: impl FnOnce([&mut [f32]; N]) -> R,
) -> R {
    let total = lens.iter().sum();
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            if buffer.len() < total {
                buffer.resize(total, 0.0);
            }
            f(split(&mut buffer, lens))
        }
        Err(_) => f(split(&mut vec![0.0; total], lens)),
    })
}

/// Consecutive slices of the lengths `lens` from the start of `buffer`.
///
/// # Panics
/// If `buffer` is shorter than the lengths' sum (an internal invariant).
pub(super) fn split<const N: usize>(buffer: &mut [f32], lens: [usize; N]) -> [&mut [f32]; N] {
    let mut rest = buffer;
    lens.map(|len| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        head
    })
}
