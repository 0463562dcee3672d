//! Writing files so that a crash never leaves half of one: a temporary name in the same
//! folder, synced to disk, then a rename (atomic on POSIX file systems), then the folder
//! synced so that the rename itself is on disk.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, its contents
/// synced, then renamed over `path`, then the folder synced. A crash at any moment leaves
/// either the old file or the new one, never a mix.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let written = File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .map_err(|e| Error::io(&tmp, e));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    rename_synced(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Renames `from` to `to` (files or folders in one folder) with the folder synced before
/// (so the new entry's contents are complete on disk, for folders whose files were synced)
/// and after (so the rename is).
pub(crate) fn rename_synced(from: &Path, to: &Path) -> Result<()> {
    let parent = to.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        sync_dir(parent)?;
    }
    std::fs::rename(from, to).map_err(|e| Error::io(to, e))?;
    if let Some(parent) = parent {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Syncs a folder's entries to disk (a no-op where folders cannot be opened as files, as
/// on Windows, whose renames are durable by themselves).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Syncs a file's contents to disk.
pub(crate) fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// `dir/.name.tmp-<pid>` next to `path`.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}
