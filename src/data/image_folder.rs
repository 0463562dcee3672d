//! A folder of PNG and JPEG files of one size, read as one set of 8-bit images (feature
//! `png`).

use std::path::{Path, PathBuf};

use super::images::Images;
use crate::{Error, Result};

/// How the files' pixels become planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorMode {
    /// One grey plane (luma of colour files: `0.2126 R + 0.7152 G + 0.0722 B`, as the
    /// `image` crate computes it).
    Grey,
    /// Red, green and blue planes (grey files repeat their one plane three times).
    Rgb,
}

/// The extensions read, lower-cased; other files in the folder are left alone.
const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Reads every `.png`, `.jpg` and `.jpeg` file of `folder` (not its subfolders), in the
/// order of their names, as one set of images: `channels` 1 or 3 by `color`, the size of
/// the files. Transparency is dropped (the colour channels are kept as stored).
///
/// ```
/// # fn main() -> elbo::Result<()> {
/// let folder = std::env::temp_dir().join(format!("elbo-doc-images-{}", std::process::id()));
/// std::fs::create_dir_all(&folder).unwrap();
/// for (i, grey) in [0u8, 128, 255].into_iter().enumerate() {
///     let image = image::GrayImage::from_pixel(4, 3, image::Luma([grey]));
///     image.save(folder.join(format!("{i}.png"))).unwrap();
/// }
/// let images = elbo::data::read_image_folder(&folder, elbo::data::ColorMode::Grey)?;
/// assert_eq!((images.count, images.channels, images.rows, images.cols), (3, 1, 3, 4));
/// assert_eq!(images.pixels[12], 128); // the second file's first pixel
/// # std::fs::remove_dir_all(&folder).unwrap();
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::DataFolder`] if the folder does not exist or holds no such file;
/// [`Error::InvalidData`] naming the file if one cannot be read or decoded, or if its size
/// differs from the first file's.
pub fn read_image_folder(folder: impl AsRef<Path>, color: ColorMode) -> Result<Images> {
    let folder = folder.as_ref();
    let required = || vec!["*.png, *.jpg or *.jpeg files, all of one size".to_string()];
    let entries = std::fs::read_dir(folder).map_err(|_| Error::DataFolder {
        folder: folder.to_path_buf(),
        kind: "image",
        exists: false,
        missing: required(),
        required: required(),
        set_by: None,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::DataFolder {
            folder: folder.to_path_buf(),
            kind: "image",
            exists: true,
            missing: required(),
            required: required(),
            set_by: None,
        });
    }
    let channels = match color {
        ColorMode::Grey => 1,
        ColorMode::Rgb => 3,
    };
    let mut size: Option<(u32, u32, &Path)> = None;
    let mut pixels = Vec::new();
    for path in &paths {
        let invalid = |reason: String| Error::InvalidData {
            path: path.clone(),
            reason,
        };
        let decoded = image::ImageReader::open(path)
            .map_err(|e| Error::io(path, e))?
            .with_guessed_format()
            .map_err(|e| Error::io(path, e))?
            .decode()
            .map_err(|e| invalid(format!("cannot be decoded as an image: {e}")))?;
        let (width, height) = (decoded.width(), decoded.height());
        match size {
            None => size = Some((width, height, path)),
            Some((w, h, first)) if (w, h) != (width, height) => {
                return Err(invalid(format!(
                    "{width}×{height} pixels, but {} is {w}×{h}; every image of a folder \
                     must have one size (resize them first)",
                    first.display()
                )));
            }
            Some(_) => {}
        }
        match color {
            ColorMode::Grey => pixels.extend_from_slice(decoded.to_luma8().as_raw()),
            ColorMode::Rgb => {
                let rgb = decoded.to_rgb8();
                let raw = rgb.as_raw();
                for c in 0..3 {
                    pixels.extend(raw.iter().skip(c).step_by(3));
                }
            }
        }
    }
    let (cols, rows, _) = size.expect("at least one file was read");
    Ok(Images {
        count: paths.len(),
        channels,
        rows: rows as usize,
        cols: cols as usize,
        pixels,
    })
}
