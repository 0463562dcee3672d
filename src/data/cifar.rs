//! The CIFAR-10 binary format: records of one label byte and a 32×32 RGB image as three
//! planes, and a folder of such files (`data_batch_*.bin`, `test_batch.bin`).
//!
//! ```text
//! record = label: u8, red: 1024 × u8, green: 1024 × u8, blue: 1024 × u8   (3073 bytes)
//!          each plane row-major, 32 rows of 32 pixels
//! file   = record*                                                          (gzipped or raw)
//! ```

use std::path::{Path, PathBuf};

use super::file_bytes::read_bytes;
use super::images::Images;
use crate::{Error, Result};

/// Side of a CIFAR-10 image, in pixels.
pub const CIFAR_SIDE: usize = 32;

/// Bytes per record: the label and `3 · 32 · 32` pixel values.
pub const CIFAR_RECORD_BYTES: usize = 1 + 3 * CIFAR_SIDE * CIFAR_SIDE;

/// Reads one CIFAR-10 binary file: its images (`channels = 3`, 32×32, the planes as
/// stored) and one label per image.
///
/// ```
/// // The repository's emoji-32 set (paths relative to the repository's root).
/// let (images, labels) = elbo::data::read_cifar_batch("data/emoji-32/test_batch.bin.gz")?;
/// assert_eq!((images.count, images.channels, images.rows, images.cols), (300, 3, 32, 32));
/// assert_eq!(labels.len(), 300);
/// # Ok::<(), elbo::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::InvalidData`] naming the file if it
/// is empty, its length is not a whole number of 3073-byte records, or its gzip stream is
/// corrupt.
pub fn read_cifar_batch(path: impl AsRef<Path>) -> Result<(Images, Vec<u8>)> {
    let path = path.as_ref();
    let bytes = read_bytes(path)?;
    if bytes.is_empty() || !bytes.len().is_multiple_of(CIFAR_RECORD_BYTES) {
        return Err(Error::InvalidData {
            path: path.to_path_buf(),
            reason: format!(
                "{} bytes is not a whole, non-zero number of {CIFAR_RECORD_BYTES}-byte CIFAR-10 \
                 records (a label byte and 3 × 32 × 32 pixel values each); the file is \
                 truncated or not in the CIFAR-10 binary format",
                bytes.len()
            ),
        });
    }
    let count = bytes.len() / CIFAR_RECORD_BYTES;
    let mut labels = Vec::with_capacity(count);
    let mut pixels = Vec::with_capacity(count * (CIFAR_RECORD_BYTES - 1));
    for record in bytes.chunks_exact(CIFAR_RECORD_BYTES) {
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    let images = Images {
        count,
        channels: 3,
        rows: CIFAR_SIDE,
        cols: CIFAR_SIDE,
        pixels,
    };
    Ok((images, labels))
}

/// A folder in the layout of CIFAR-10's binary version: training files
/// `data_batch_1.bin`, `data_batch_2.bin`, … (read in that order), `test_batch.bin`, each
/// gzipped (`.bin.gz`) or not, and optionally `batches.meta.txt` with one label name per
/// line.
///
/// ```
/// let emoji = elbo::data::Cifar::load("data/emoji-32")?;
/// assert_eq!((emoji.train.count, emoji.test.count), (1611, 300));
/// assert_eq!(emoji.label_names.len(), 10);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Cifar {
    /// The training images, every training file's in order.
    pub train: Images,
    /// One label per training image.
    pub train_labels: Vec<u8>,
    /// The test images.
    pub test: Images,
    /// One label per test image.
    pub test_labels: Vec<u8>,
    /// The lines of `batches.meta.txt` (label `i` is line `i`), empty without the file.
    pub label_names: Vec<String>,
}

impl Cifar {
    /// Reads the folder's files (see [`Cifar`]).
    ///
    /// # Errors
    /// [`Error::DataFolder`] if the folder does not exist or has no training file or no
    /// test file (checked before anything is read); as [`read_cifar_batch`] for a
    /// malformed file; [`Error::Io`] if `batches.meta.txt` exists but cannot be read.
    pub fn load(folder: impl AsRef<Path>) -> Result<Self> {
        let folder = folder.as_ref();
        let (train_paths, test_path) = cifar_files(folder)?;
        let mut train_labels = Vec::new();
        let mut pixels = Vec::new();
        for path in &train_paths {
            let (images, labels) = read_cifar_batch(path)?;
            pixels.extend(images.pixels);
            train_labels.extend(labels);
        }
        let train = Images {
            count: train_labels.len(),
            channels: 3,
            rows: CIFAR_SIDE,
            cols: CIFAR_SIDE,
            pixels,
        };
        let (test, test_labels) = read_cifar_batch(&test_path)?;
        let meta = folder.join("batches.meta.txt");
        let label_names = if meta.is_file() {
            std::fs::read_to_string(&meta)
                .map_err(|e| Error::io(&meta, e))?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        } else {
            Vec::new()
        };
        Ok(Self {
            train,
            train_labels,
            test,
            test_labels,
            label_names,
        })
    }
}

/// The training files `data_batch_<n>.bin[.gz]` in the order of `n`, and the test file.
fn cifar_files(folder: &Path) -> Result<(Vec<PathBuf>, PathBuf)> {
    let required = || {
        vec![
            "data_batch_1.bin (and data_batch_2.bin, …; each may be .bin.gz)".to_string(),
            "test_batch.bin (or test_batch.bin.gz)".to_string(),
        ]
    };
    let missing_error = |exists: bool, missing: Vec<String>| Error::DataFolder {
        folder: folder.to_path_buf(),
        kind: "CIFAR-10",
        exists,
        missing,
        required: required(),
        set_by: None,
    };
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(_) => return Err(missing_error(false, required())),
    };
    let mut train: Vec<(u64, PathBuf)> = Vec::new();
    let mut test = None;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let stem = name
            .strip_suffix(".bin.gz")
            .or_else(|| name.strip_suffix(".bin"));
        match stem {
            Some("test_batch") => test = Some(path),
            Some(s) => {
                if let Some(n) = s
                    .strip_prefix("data_batch_")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    train.push((n, path));
                }
            }
            None => {}
        }
    }
    train.sort();
    if let Some(pair) = train.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::InvalidData {
            path: folder.to_path_buf(),
            reason: format!(
                "two files for training batch {}: {} and {}; keep one",
                pair[0].0,
                pair[0].1.display(),
                pair[1].1.display()
            ),
        });
    }
    let mut missing = Vec::new();
    if train.is_empty() {
        missing.push(required()[0].clone());
    }
    if test.is_none() {
        missing.push(required()[1].clone());
    }
    match test {
        Some(test) if missing.is_empty() => Ok((train.into_iter().map(|(_, p)| p).collect(), test)),
        _ => Err(missing_error(true, missing)),
    }
}
