//! A data folder that must hold known files: all of them are checked before any is read,
//! so a missing or misplaced folder is one [`Error::DataFolder`] that names the folder,
//! what it must hold and what it lacks.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Checks that `folder` is a folder holding every file of `required`; returns their paths
/// in the same order.
///
/// # Errors
/// [`Error::DataFolder`] (with no `set_by`) if the folder does not exist or lacks any of
/// the files.
pub(crate) fn require(
    folder: &Path,
    kind: &'static str,
    required: &[&str],
) -> Result<Vec<PathBuf>> {
    let exists = folder.is_dir();
    let paths: Vec<PathBuf> = required.iter().map(|name| folder.join(name)).collect();
    let missing: Vec<String> = required
        .iter()
        .zip(&paths)
        .filter(|(_, path)| !path.is_file())
        .map(|(name, _)| name.to_string())
        .collect();
    if !exists || !missing.is_empty() {
        return Err(Error::DataFolder {
            folder: folder.to_path_buf(),
            kind,
            exists,
            missing,
            required: required.iter().map(|name| name.to_string()).collect(),
            set_by: None,
        });
    }
    Ok(paths)
}
