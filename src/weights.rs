//! A model's weights to and from a [safetensors](https://huggingface.co/docs/safetensors)
//! file, through burn's store: the format PyTorch (`safetensors.torch.load_file`), JAX and
//! most frameworks read and write, so weights can move between them and this crate.
//!
//! Tensors are named by their module path (`encoder.head.mean.weight`, …), as burn's
//! records name them. burn stores a `Linear` weight as `[d_in, d_out]`, the transpose of
//! PyTorch's `nn.Linear.weight`; a PyTorch program reading the file transposes it.
//!
//! ```
//! use elbo::models::GaussianVaeConfig;
//! # fn main() -> elbo::Result<()> {
//! let device = elbo::device::default_device();
//! let config = GaussianVaeConfig::new(16, 2).with_hidden(vec![8]);
//! let path = std::env::temp_dir().join(format!("elbo-doc-{}.safetensors", std::process::id()));
//! elbo::weights::save_safetensors(&config.init(&device)?, &path)?;
//! let restored = elbo::weights::load_safetensors(config.init(&device)?, &path)?;
//! # std::fs::remove_file(&path).unwrap();
//! # let _ = restored;
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};

use crate::atomic_write::write_atomic;
use crate::{Error, Result};

fn weights_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Writes every parameter of `model` to `path` as a safetensors file (atomically: a
/// temporary file, synced, then renamed).
///
/// # Errors
/// [`Error::Checkpoint`] if the weights cannot be serialised; [`Error::Io`] if the file
/// cannot be written.
pub fn save_safetensors<M: Module>(model: &M, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let mut store = SafetensorsStore::from_bytes(None);
    model
        .save_into(&mut store)
        .map_err(|e| weights_error(path, format!("serialising the weights: {e}")))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| weights_error(path, format!("serialising the weights: {e}")))?;
    write_atomic(path, &bytes)
}

/// Loads the weights of the safetensors file `path` into `model`, which must have exactly
/// the file's tensors (same names and shapes); returns the model with them.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Checkpoint`] if it is not a
/// safetensors file, lacks a tensor of the model, has a tensor of another shape, or has
/// tensors the model does not (the message lists them).
pub fn load_safetensors<M: Module>(mut model: M, path: impl AsRef<Path>) -> Result<M> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .allow_partial(true)
        .validate(false);
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.load_from(&mut store)))
            .map_err(|_| weights_error(path, "not a readable safetensors file"))?
            .map_err(|e| weights_error(path, format!("not a readable safetensors file: {e}")))?;
    let mut problems = Vec::new();
    if !result.missing.is_empty() {
        let names: Vec<&str> = result.missing.iter().map(|(n, _)| n.as_str()).collect();
        problems.push(format!("it lacks {}", names.join(", ")));
    }
    if !result.errors.is_empty() {
        let errors: Vec<String> = result.errors.iter().map(|e| format!("{e:?}")).collect();
        problems.push(format!("it does not fit the model: {}", errors.join("; ")));
    }
    if !result.unused.is_empty() {
        problems.push(format!(
            "it has tensors the model does not: {}",
            result.unused.join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(weights_error(
            path,
            format!(
                "{}; load it into a model built from the config it was saved from",
                problems.join("; ")
            ),
        ));
    }
    Ok(model)
}
