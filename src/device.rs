//! Choosing a device: by name (a command-line flag, an environment variable) or the
//! crate's default.
//!
//! Every API of the crate takes a `&Device`; this module only helps a program pick one.
//! The names are those of the cargo features that compile the backends:
//!
//! | name | feature | device |
//! | --- | --- | --- |
//! | `flex` | `flex` (default) | burn's pure-Rust CPU backend, with this crate's kernels |
//! | `wgpu`, `wgpu:N` | `wgpu` | the default wgpu adapter, or discrete GPU `N` |
//! | `cuda`, `cuda:N` | `cuda` | CUDA device 0, or `N` |
//!
//! ```
//! let device = elbo::device::from_name("flex")?;
//! assert!(elbo::device::from_name("tpu").is_err());
//! # Ok::<(), elbo::Error>(())
//! ```

use burn::tensor::Device;

use crate::{Error, Result};

#[cfg(not(any(feature = "flex", feature = "wgpu", feature = "cuda")))]
compile_error!(
    "elbo needs a backend: enable at least one of the features `flex` (CPU, the default), \
     `wgpu` or `cuda`"
);

/// The names [`from_name`] takes in this build, for messages: `"flex, wgpu"` and so on.
pub fn compiled_names() -> String {
    let names: [(&str, bool); 3] = [
        ("flex", cfg!(feature = "flex")),
        ("wgpu", cfg!(feature = "wgpu")),
        ("cuda", cfg!(feature = "cuda")),
    ];
    names
        .iter()
        .filter(|(_, compiled)| *compiled)
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name of [`default_device`] in this build: `flex`, else `cuda`, else `wgpu`.
pub const DEFAULT_NAME: &str = if cfg!(feature = "flex") {
    "flex"
} else if cfg!(feature = "cuda") {
    "cuda"
} else {
    "wgpu"
};

/// The device the examples, tests and doc tests use when none is named
/// ([`DEFAULT_NAME`]): flex when it is compiled (the default build), else CUDA device 0,
/// else the default wgpu device.
///
/// Unlike burn's `Device::default()`, which picks a GPU backend whenever one is compiled
/// (even on a machine without a GPU), this prefers the CPU; name a GPU with
/// [`from_name`] or burn's constructors (`Device::wgpu(..)`, `Device::cuda(..)`).
pub fn default_device() -> Device {
    #[cfg(feature = "flex")]
    return Device::flex();
    #[cfg(all(not(feature = "flex"), feature = "cuda"))]
    return Device::cuda(0);
    #[cfg(all(not(feature = "flex"), not(feature = "cuda"), feature = "wgpu"))]
    return Device::wgpu(Default::default());
}

/// The device called `name`: `flex`, `wgpu` or `wgpu:N` (discrete GPU `N`), `cuda` or
/// `cuda:N`. A backend this build does not compile is an [`Error::InvalidConfig`] that
/// names the feature to enable.
pub fn from_name(name: &str) -> Result<Device> {
    let (backend, index) = match name.split_once(':') {
        Some((backend, index)) => {
            let index = index.parse::<usize>().map_err(|_| {
                Error::config(
                    "device",
                    name,
                    "a device index after the colon, such as cuda:1",
                )
            })?;
            (backend, Some(index))
        }
        None => (name, None),
    };
    let unknown = || {
        Error::config(
            "device",
            name,
            format!(
                "one of this build's devices ({}); the others need elbo built with their \
                 feature (--features wgpu or --features cuda)",
                compiled_names()
            ),
        )
    };
    match (backend, index) {
        #[cfg(feature = "flex")]
        ("flex", None) => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        ("wgpu", None) => Ok(Device::wgpu(Default::default())),
        #[cfg(feature = "wgpu")]
        ("wgpu", Some(i)) => Ok(Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i))),
        #[cfg(feature = "cuda")]
        ("cuda", i) => Ok(Device::cuda(i.unwrap_or(0))),
        _ => Err(unknown()),
    }
}
