//! Keeping freed memory in the process, so that a training loop does not pay for fresh
//! pages on every step.
//!
//! A training step allocates and frees buffers of a few megabytes per op (activations,
//! patch matrices, gradients). With its default, adaptive settings, glibc's allocator
//! often hands such memory back to the kernel as soon as it is freed (`munmap`, or
//! trimming the top of a heap), and the next step faults every page in again, zeroed by
//! the kernel. [`retain_freed_memory`] fixes the two thresholds so that freed buffers stay
//! in the process for reuse: the process keeps its peak footprint instead of shrinking
//! between steps. It is opt-in because it is a process-wide setting, which a library
//! should not change behind a program's back. What it saves on the elbo models is
//! measured in elbo's `docs/results.md` (the speed passes of issue 6: "The allocator",
//! "Freed memory kept in the process").

/// Allocations from this size up are mapped on their own (and unmapped when freed):
/// 32 MiB, the largest value glibc accepts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 32 << 20;

/// Free memory at the top of a heap is handed back to the kernel only beyond 1 GiB.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Sets glibc's `M_MMAP_THRESHOLD` to 32 MiB and `M_TRIM_THRESHOLD` to 1 GiB for the
/// whole process (the same as starting it with `MALLOC_MMAP_THRESHOLD_=33554432
/// MALLOC_TRIM_THRESHOLD_=1073741824`), so that memory freed by one training step is
/// reused by the next instead of being returned to the kernel and faulted in again.
/// Call it once at the start of `main`, before training (the examples and benches do).
///
/// Returns whether both settings took effect: `false` on platforms without glibc (other
/// allocators keep their own policies, and nothing is changed).
///
/// ```
/// let applied = flex_kernels::retain_freed_memory();
/// assert_eq!(applied, cfg!(all(target_os = "linux", target_env = "gnu")));
/// ```
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes the allocator's tuning parameters (it takes the
        // allocator's own lock); it returns 1 on success and 0 for a value it rejects.
        let mmap = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        let trim = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) };
        mmap == 1 && trim == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
