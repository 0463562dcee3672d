//! Output buffers that are written in full without being zeroed first.
//!
//! With [`retain_freed_memory`](crate::retain_freed_memory) a kernel's output comes from
//! memory freed by an earlier step, so `vec![0.0; n]` has to clear it (`calloc` skips that
//! only for fresh pages), and for a kernel that then overwrites every value the clearing is
//! wasted: 2–4% of a DDPM U-Net step, most of it in the Winograd convolution's output.

use std::mem::MaybeUninit;

/// A vector of `len` floats whose values are those `fill` writes into the slice it is
/// given (with [`MaybeUninit::write`]), without clearing the memory first.
///
/// # Safety
/// `fill` must write every element of the slice before returning; an element left
/// unwritten would be read as an uninitialised float.
pub(super) unsafe fn vec_written_by(
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<f32>]),
) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    fill(&mut values.spare_capacity_mut()[..len]);
    // SAFETY: the capacity is at least `len`, and the caller guarantees that `fill` wrote
    // all of the first `len` elements.
    unsafe { values.set_len(len) };
    values
}
