//! PNG grids of images: prior samples, reconstructions next to their inputs, latent
//! interpolations (feature `png`).
//!
//! Images are rows of a `[n, height·width]` tensor with values in `[0, 1]` (grey levels or
//! Bernoulli means); they are tiled left to right, top to bottom, with a 2-pixel grey
//! border. Files are encoded in memory and written atomically.

use std::path::Path;

use burn::tensor::Tensor;

use crate::atomic_write::write_atomic;
use crate::{Error, Result};

const PAD: usize = 2;
const BORDER: u8 = 128;

fn image_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Image {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Saves the rows of `images` (`[n, height·width]`, values in `[0, 1]`) as a PNG grid with
/// `columns` images per row.
///
/// # Errors
/// [`Error::ShapeMismatch`] if a row is not `height·width` long or there are no images;
/// [`Error::InvalidConfig`] if `columns == 0`; [`Error::Image`] / [`Error::Io`] if the file
/// cannot be written.
///
/// ```no_run
/// use burn::tensor::Tensor;
/// let images = Tensor::<2>::zeros([16, 28 * 28], &elbo::device::default_device());
/// elbo::image::save_grid("grid.png", images, 28, 28, 4)?;
/// # Ok::<(), elbo::Error>(())
/// ```
pub fn save_grid(
    path: impl AsRef<Path>,
    images: Tensor<2>,
    height: usize,
    width: usize,
    columns: usize,
) -> Result<()> {
    let path = path.as_ref();
    let [n, d] = images.dims();
    if d != height * width || n == 0 {
        return Err(Error::shape(
            "image grid",
            format!("[n >= 1, {height} × {width} = {}]", height * width),
            [n, d],
        ));
    }
    if columns == 0 {
        return Err(Error::config("columns", 0, "at least 1"));
    }
    let values: Vec<f32> = images
        .try_into_vec_as::<f32>()
        .map_err(|e| image_error(path, format!("reading the images: {e:?}")))?;
    let rows = n.div_ceil(columns);
    let grid_w = columns * (width + PAD) + PAD;
    let grid_h = rows * (height + PAD) + PAD;
    let mut pixels = vec![BORDER; grid_w * grid_h];
    for (i, image) in values.chunks(d).enumerate() {
        let (gy, gx) = (i / columns, i % columns);
        let (oy, ox) = (PAD + gy * (height + PAD), PAD + gx * (width + PAD));
        for y in 0..height {
            for x in 0..width {
                let v = image[y * width + x];
                let v = if v.is_finite() {
                    v.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                pixels[(oy + y) * grid_w + ox + x] = (v * 255.0).round() as u8;
            }
        }
    }
    let buffer = image::GrayImage::from_raw(grid_w as u32, grid_h as u32, pixels)
        .ok_or_else(|| image_error(path, "grid buffer has the wrong size"))?;
    let mut png = Vec::new();
    buffer
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| image_error(path, format!("encoding PNG: {e}")))?;
    write_atomic(path, &png)
}

/// Saves inputs next to their reconstructions: each pair is (input, reconstruction), with
/// `pairs_per_row` pairs per grid row.
///
/// # Errors
/// [`Error::ShapeMismatch`] if the two tensors differ in shape; otherwise as [`save_grid`].
pub fn save_reconstructions(
    path: impl AsRef<Path>,
    inputs: Tensor<2>,
    reconstructions: Tensor<2>,
    height: usize,
    width: usize,
    pairs_per_row: usize,
) -> Result<()> {
    if inputs.dims() != reconstructions.dims() {
        return Err(Error::shape(
            "reconstruction grid",
            format!("reconstructions of the inputs' shape {:?}", inputs.dims()),
            reconstructions.dims(),
        ));
    }
    let [n, d] = inputs.dims();
    // Interleave: row 2i is input i, row 2i+1 its reconstruction.
    let pairs = Tensor::stack::<3>(vec![inputs, reconstructions], 1).reshape([2 * n, d]);
    save_grid(path, pairs, height, width, 2 * pairs_per_row)
}

/// Saves one or more latent interpolations, each a row of `steps` images (as produced by
/// [`Vae::interpolate`](crate::models::Vae::interpolate), concatenated).
///
/// # Errors
/// As [`save_grid`]; [`Error::ShapeMismatch`] if the number of images is not a multiple of
/// `steps`.
pub fn save_interpolations(
    path: impl AsRef<Path>,
    paths: Tensor<2>,
    height: usize,
    width: usize,
    steps: usize,
) -> Result<()> {
    let [n, _] = paths.dims();
    if steps == 0 || n % steps != 0 {
        return Err(Error::shape(
            "interpolation grid",
            format!("a multiple of steps = {steps} images"),
            n,
        ));
    }
    save_grid(path, paths, height, width, steps)
}
