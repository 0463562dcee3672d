//! 8-bit images (grey or colour) and their binarisation; the IDX reader's images.

use std::path::Path;

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::batches::TrainData;
use super::idx::read_idx;
use crate::{Error, Result};

/// A set of 8-bit images: `count` images of `channels` planes (1 for grey, 3 for RGB) of
/// `rows × cols` pixels, stored image by image, plane by plane, row-major
/// (`[count, channels, rows, cols]`: burn's NCHW order and CIFAR-10's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// Number of images.
    pub count: usize,
    /// Planes per image: 1 (grey) or 3 (red, green, blue).
    pub channels: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count · channels · rows · cols` bytes.
    pub pixels: Vec<u8>,
}

impl Images {
    /// Reads an MNIST-format image file (3-dimensional IDX, magic 2051), gzipped or raw.
    ///
    /// # Errors
    /// As [`read_idx`], and [`Error::InvalidData`] if the file is not 3-dimensional or has
    /// no images.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let array = read_idx(path)?;
        if array.dims.len() != 3 {
            return Err(Error::InvalidData {
                path: path.to_path_buf(),
                reason: format!(
                    "{} dimensions {:?}; an image file has 3 (count, rows, cols; magic 2051)",
                    array.dims.len(),
                    array.dims
                ),
            });
        }
        if array.dims.contains(&0) {
            return Err(Error::InvalidData {
                path: path.to_path_buf(),
                reason: format!("empty image set {:?}", array.dims),
            });
        }
        Ok(Self {
            count: array.dims[0],
            channels: 1,
            rows: array.dims[1],
            cols: array.dims[2],
            pixels: array.data,
        })
    }

    /// Values per image, `channels · rows · cols`.
    pub fn dim(&self) -> usize {
        self.channels * self.rows * self.cols
    }

    /// The images `start..start + len`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the range is empty or out of bounds.
    pub fn slice(&self, start: usize, len: usize) -> Result<Self> {
        if len == 0 || start.checked_add(len).is_none_or(|end| end > self.count) {
            return Err(Error::config(
                "range",
                format!("{start}..{}", start.saturating_add(len)),
                format!("a non-empty range within 0..{}", self.count),
            ));
        }
        let d = self.dim();
        Ok(Self {
            count: len,
            channels: self.channels,
            rows: self.rows,
            cols: self.cols,
            pixels: self.pixels[start * d..(start + len) * d].to_vec(),
        })
    }

    /// Grey levels scaled to `[0, 1]` (`v / 255`).
    pub fn unit(&self) -> Vec<f32> {
        self.pixels.iter().map(|&v| v as f32 / 255.0).collect()
    }

    /// The raw byte values as floats, for files that already hold 0/1 (such as the fixed
    /// binarised MNIST test file).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if a value is not 0 or 1.
    pub fn binary(&self) -> Result<Vec<f32>> {
        if let Some(v) = self.pixels.iter().find(|&&v| v > 1) {
            return Err(Error::config(
                "pixels",
                v,
                "0 or 1 in an already binarised file; use `binarize_fixed` for grey images",
            ));
        }
        Ok(self.pixels.iter().map(|&v| v as f32).collect())
    }

    /// Each pixel 1 with probability `grey/255`, from `rng` (dynamic binarisation draws a
    /// fresh one per epoch).
    pub fn binarize_with(&self, rng: &mut StdRng) -> Vec<f32> {
        binarize(&self.pixels, rng)
    }

    /// A fixed binarisation: each pixel 1 with probability `grey/255`, seeded.
    pub fn binarize_fixed(&self, seed: u64) -> Vec<f32> {
        binarize(&self.pixels, &mut StdRng::seed_from_u64(seed))
    }

    /// All images as a `[count, channels·rows·cols]` tensor of the given values.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `values` is not `count · rows · cols` long.
    pub fn to_tensor(&self, values: Vec<f32>, device: &Device) -> Result<Tensor<2>> {
        flat_tensor(values, self.count, self.dim(), device)
    }
}

/// `[rows, dim]` tensor from a host vector.
pub(crate) fn flat_tensor(
    values: Vec<f32>,
    rows: usize,
    dim: usize,
    device: &Device,
) -> Result<Tensor<2>> {
    if values.len() != rows * dim {
        return Err(Error::shape(
            "images to tensor",
            format!("{rows} × {dim} = {} values", rows * dim),
            values.len(),
        ));
    }
    Ok(Tensor::from_data(
        TensorData::new(values, [rows, dim]),
        device,
    ))
}

fn binarize(pixels: &[u8], rng: &mut StdRng) -> Vec<f32> {
    pixels
        .iter()
        .map(|&v| {
            let u: f32 = rng.random();
            if u < v as f32 / 255.0 { 1.0 } else { 0.0 }
        })
        .collect()
}

/// Reads an MNIST-format label file (1-dimensional IDX, magic 2049).
///
/// # Errors
/// As [`read_idx`], and [`Error::InvalidData`] if the file is not 1-dimensional.
pub fn load_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let array = read_idx(path)?;
    if array.dims.len() != 1 {
        return Err(Error::InvalidData {
            path: path.to_path_buf(),
            reason: format!(
                "{} dimensions {:?}; a label file has 1 (magic 2049)",
                array.dims.len(),
                array.dims
            ),
        });
    }
    Ok(array.data)
}

/// How training images become model inputs.
#[derive(Clone, Debug, PartialEq)]
pub enum Binarization {
    /// A fresh Bernoulli draw of every pixel each time an image is batched (so each
    /// epoch sees a new binarisation), drawn on the host from the batch's generator.
    Dynamic,
    /// The same fresh draw made on the batch's device: the grey levels `p = v / 255` go to
    /// the device and each pixel is `1[u < p]` for uniform `u` from the device's random
    /// stream, so a GPU draws its own and each device of a multi-device run draws from its
    /// own seed ([`fit`](crate::train::fit) and the Learner's loader seed every device at
    /// the start of each epoch). The draws differ from [`Dynamic`](Self::Dynamic)'s, whose
    /// stream is the host's.
    DynamicOnDevice,
    /// One seeded binarisation, drawn once.
    Fixed {
        /// The seed of the draw.
        seed: u64,
    },
    /// Grey levels in `[0, 1]`, not binarised.
    Grey,
}

/// Flat images ready for [`fit`](crate::train::fit): `[batch, rows·cols]` tensors.
#[derive(Clone, Debug)]
pub struct ImageData {
    images: Images,
    binarization: Binarization,
    fixed: Option<Vec<f32>>,
}

impl ImageData {
    /// Images served with the given binarisation.
    pub fn new(images: Images, binarization: Binarization) -> Self {
        let fixed = match &binarization {
            Binarization::Fixed { seed } => Some(images.binarize_fixed(*seed)),
            Binarization::Grey | Binarization::DynamicOnDevice => Some(images.unit()),
            Binarization::Dynamic => None,
        };
        Self {
            images,
            binarization,
            fixed,
        }
    }

    /// The underlying images.
    pub fn images(&self) -> &Images {
        &self.images
    }

    /// The binarisation in use.
    pub fn binarization(&self) -> &Binarization {
        &self.binarization
    }
}

impl TrainData for ImageData {
    type Input = Tensor<2>;

    fn len(&self) -> usize {
        self.images.count
    }

    fn batch(&self, indices: &[usize], rng: &mut StdRng, device: &Device) -> Result<Tensor<2>> {
        let d = self.images.dim();
        let mut values = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            if i >= self.images.count {
                return Err(Error::config(
                    "index",
                    i,
                    format!("below the number of images, {}", self.images.count),
                ));
            }
            match &self.fixed {
                Some(v) => values.extend_from_slice(&v[i * d..(i + 1) * d]),
                None => values.extend(binarize(&self.images.pixels[i * d..(i + 1) * d], rng)),
            }
        }
        let x = flat_tensor(values, indices.len(), d, device)?;
        if self.binarization == Binarization::DynamicOnDevice {
            // u ∈ [0, 1): p = 0 never gives 1, p = 1 always does.
            let u = Tensor::random(x.dims(), Distribution::Uniform(0.0, 1.0), device);
            return Ok(u.lower(x).float());
        }
        Ok(x)
    }
}
