//! A data file's bytes, gunzipped when the content is gzip (detected from the magic bytes,
//! not the name), with a cap against gzip bombs.

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// The largest decompressed file accepted (1 GiB).
const MAX_BYTES: u64 = 1 << 30;

/// The bytes of `path`, decompressed if they are a gzip stream.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::InvalidData`] for a corrupt gzip
/// stream or one that decompresses to more than 1 GiB.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let invalid = |reason: String| Error::InvalidData {
        path: path.to_path_buf(),
        reason,
    };
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .take(MAX_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| invalid(format!("corrupt gzip stream: {e}")))?;
    if out.len() as u64 > MAX_BYTES {
        return Err(invalid("decompresses to more than 1 GiB".into()));
    }
    Ok(out)
}
