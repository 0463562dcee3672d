//! PNG grids of images: prior samples, reconstructions next to their inputs, latent
//! interpolations (feature `png`).
//!
//! Images are rows of a `[n, channels·height·width]` tensor with values in `[0, 1]` (grey
//! levels, Bernoulli means, or RGB planes one after the other, as `Images` stores them);
//! [`GridImage`] says their shape and how much to enlarge them. They are tiled left to
//! right, top to bottom, with a 2-pixel grey border. Files are encoded in memory and
//! written atomically.

use std::path::Path;

use burn::tensor::Tensor;

use crate::atomic_write::write_atomic;
use crate::data::Images;
use crate::{Error, Result};

const PAD: usize = 2;
const BORDER: u8 = 128;

/// The side, in screen pixels, that [`GridImage::new`] enlarges an image to at least.
const READABLE_SIDE: usize = 56;

fn image_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Image {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The shape of the images of a grid and how much to enlarge them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridImage {
    /// 1 (grey) or 3 (RGB, as three planes).
    pub channels: usize,
    /// Rows of one image.
    pub height: usize,
    /// Columns of one image.
    pub width: usize,
    /// Every pixel is drawn as a `scale × scale` block (nearest neighbour).
    pub scale: usize,
}

impl GridImage {
    /// Images of `channels × height × width`, enlarged to a readable size: by the smallest
    /// whole factor that makes the longer side at least 56 pixels (2× for 28-pixel MNIST
    /// digits and 32-pixel CIFAR images; 1× from 56 pixels up).
    ///
    /// ```
    /// use elbo::image::GridImage;
    /// assert_eq!(GridImage::new(1, 28, 28).scale, 2);
    /// assert_eq!(GridImage::new(3, 64, 64).scale, 1);
    /// assert_eq!(GridImage::new(1, 28, 28).with_scale(4).scale, 4);
    /// ```
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        let side = height.max(width).max(1);
        Self {
            channels,
            height,
            width,
            scale: READABLE_SIDE.div_ceil(side).max(1),
        }
    }

    /// The shape of `images`, enlarged as [`new`](Self::new) does.
    pub fn of(images: &Images) -> Self {
        Self::new(images.channels, images.rows, images.cols)
    }

    /// The same images drawn `scale` times larger (1 draws them at their size).
    pub fn with_scale(self, scale: usize) -> Self {
        Self { scale, ..self }
    }

    /// Values per image, `channels · height · width`.
    fn len(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// Saves the rows of `images` (`[n, channels·height·width]`, values in `[0, 1]`) as a PNG
/// grid with `columns` images per row, each drawn `shape.scale` times larger: grey for one
/// channel, RGB for three.
///
/// # Errors
/// [`Error::ShapeMismatch`] if a row is not `channels·height·width` long or there are no
/// images; [`Error::InvalidConfig`] if `columns` or `scale` is 0 or `channels` is not 1 or
/// 3; [`Error::Image`] / [`Error::Io`] if the file cannot be written.
///
/// ```no_run
/// use burn::tensor::Tensor;
/// use elbo::image::GridImage;
/// let images = Tensor::<2>::zeros([16, 28 * 28], &elbo::device::default_device());
/// elbo::image::save_grid("grid.png", images, GridImage::new(1, 28, 28), 4)?;
/// # Ok::<(), elbo::Error>(())
/// ```
pub fn save_grid(
    path: impl AsRef<Path>,
    images: Tensor<2>,
    shape: GridImage,
    columns: usize,
) -> Result<()> {
    let path = path.as_ref();
    let [n, d] = images.dims();
    let GridImage {
        channels,
        height,
        width,
        scale,
    } = shape;
    if channels != 1 && channels != 3 {
        return Err(Error::config("channels", channels, "1 (grey) or 3 (RGB)"));
    }
    if d != shape.len() || n == 0 {
        return Err(Error::shape(
            "image grid",
            format!(
                "[n >= 1, {channels} × {height} × {width} = {}]",
                shape.len()
            ),
            [n, d],
        ));
    }
    if columns == 0 {
        return Err(Error::config("columns", 0, "at least 1"));
    }
    if scale == 0 {
        return Err(Error::config("scale", 0, "at least 1"));
    }
    let values: Vec<f32> = images
        .try_into_vec_as::<f32>()
        .map_err(|e| image_error(path, format!("reading the images: {e:?}")))?;
    let rows = n.div_ceil(columns);
    let (cell_h, cell_w) = (height * scale, width * scale);
    let grid_w = columns * (cell_w + PAD) + PAD;
    let grid_h = rows * (cell_h + PAD) + PAD;
    // Interleaved samples (1 or 3 per pixel), as the PNG encoder takes them.
    let mut pixels = vec![BORDER; grid_w * grid_h * channels];
    let plane = height * width;
    for (i, image) in values.chunks(d).enumerate() {
        let (gy, gx) = (i / columns, i % columns);
        let (oy, ox) = (PAD + gy * (cell_h + PAD), PAD + gx * (cell_w + PAD));
        for y in 0..cell_h {
            for x in 0..cell_w {
                let source = (y / scale) * width + x / scale;
                let target = ((oy + y) * grid_w + ox + x) * channels;
                for c in 0..channels {
                    let v = image[c * plane + source];
                    let v = if v.is_finite() {
                        v.clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    pixels[target + c] = (v * 255.0).round() as u8;
                }
            }
        }
    }
    let (w, h) = (grid_w as u32, grid_h as u32);
    let mut png = Vec::new();
    let mut cursor = std::io::Cursor::new(&mut png);
    let encoded = if channels == 1 {
        image::GrayImage::from_raw(w, h, pixels)
            .map(|buffer| buffer.write_to(&mut cursor, image::ImageFormat::Png))
    } else {
        image::RgbImage::from_raw(w, h, pixels)
            .map(|buffer| buffer.write_to(&mut cursor, image::ImageFormat::Png))
    };
    encoded
        .ok_or_else(|| image_error(path, "grid buffer has the wrong size"))?
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
    shape: GridImage,
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
    save_grid(path, pairs, shape, 2 * pairs_per_row)
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
    shape: GridImage,
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
    save_grid(path, paths, shape, steps)
}
