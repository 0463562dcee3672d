//! The IDX file format of MNIST, gzipped or raw.
//!
//! ```text
//! magic: u8 0, u8 0, u8 type (0x08 = unsigned byte), u8 ndim      (big-endian u32 2051 for images)
//! dims:  ndim × big-endian u32
//! data:  Π dims bytes, row-major
//! ```
//! The header's counts are checked against the file's real length before anything is
//! sized from them: a truncated file, trailing bytes or absurd counts are errors.

use std::path::Path;

use super::file_bytes::read_bytes;
use crate::{Error, Result};

/// An n-dimensional array of bytes read from an IDX file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first (e.g. `[count, rows, cols]`).
    pub dims: Vec<usize>,
    /// The values, row-major; `data.len() == dims.iter().product()`.
    pub data: Vec<u8>,
}

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::InvalidData {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads an IDX file of unsigned bytes; gzip is detected from the content, not the name.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::InvalidData`] for a wrong magic, an
/// element type other than unsigned byte, a corrupt gzip stream, or a length that does
/// not match the header.
///
/// ```
/// // The repository's MNIST subset (paths relative to the repository's root).
/// let images = elbo::data::read_idx("data/mnist-10k/t10k-images-idx3-ubyte.gz")?;
/// assert_eq!(images.dims, vec![2000, 28, 28]);
/// # Ok::<(), elbo::Error>(())
/// ```
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let bytes = read_bytes(path)?;
    parse_idx(&bytes).map_err(|reason| invalid(path, reason))
}

/// Parses IDX bytes (already decompressed); the error is the reason, in words.
fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!(
            "{} bytes is too short for an IDX header (4-byte magic)",
            bytes.len()
        ));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!(
            "wrong magic number {magic:#010x}: an IDX file starts with two zero bytes \
             (MNIST images have 2051 = 0x00000803, labels 2049 = 0x00000801)"
        ));
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "element type {:#04x} is not supported; only unsigned bytes (0x08) are",
            bytes[2]
        ));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 || ndim > 4 {
        return Err(format!(
            "{ndim} dimensions in the magic number; expected 1 to 4"
        ));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(format!(
            "truncated header: {} bytes, but {ndim} dimensions need {header}",
            bytes.len()
        ));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("dimensions {dims:?} overflow"))?;
    let payload = bytes.len() - header;
    if payload != expected {
        return Err(format!(
            "header dimensions {dims:?} need {expected} data bytes but the file has {payload} \
             ({})",
            if payload < expected {
                "truncated"
            } else {
                "trailing bytes"
            }
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}
