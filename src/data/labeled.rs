//! Labelled data: a batch of inputs with one class label per row, and labelled greyscale
//! images for supervised models (the variational information bottleneck).

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;

use super::batches::TrainData;
use super::images::{Images, flat_tensor, load_labels};
use crate::traits::Batch;
use crate::{Error, Result};

/// A batch of flat inputs `x: [batch, d]` and their class labels `y: [batch]`.
///
/// Row `i` of `x` is labelled `y[i]`; the [`Batch`] operations (repeat, narrow, select)
/// move the rows of both together, so the shared estimators can tile a labelled batch as
/// they tile images. The fields are public; [`new`](Self::new) checks that they have the
/// same number of rows (models check again, and check the label range, before use).
///
/// ```
/// use burn::tensor::{Int, Tensor};
/// use elbo::Batch;
/// use elbo::data::LabeledBatch;
///
/// let device = elbo::device::default_device();
/// let x = Tensor::<2>::ones([3, 4], &device);
/// let y = Tensor::<1, Int>::from_ints([0, 2, 1], &device);
/// let batch = LabeledBatch::new(x, y)?;
/// let tiled = batch.repeat_rows(2);
/// assert_eq!(tiled.x.dims(), [6, 4]);
/// assert_eq!(tiled.y.try_into_vec_as::<i64>().unwrap(), vec![0, 2, 1, 0, 2, 1]);
/// assert_eq!(batch.narrow_rows(1, 2).labels()?, vec![2, 1]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct LabeledBatch {
    /// The inputs, `[batch, d]`.
    pub x: Tensor<2>,
    /// The class of each row, `[batch]`, in `0..num_classes`.
    pub y: Tensor<1, Int>,
}

impl LabeledBatch {
    /// Pairs inputs with their labels.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `x` and `y` do not have the same number of rows.
    pub fn new(x: Tensor<2>, y: Tensor<1, Int>) -> Result<Self> {
        let batch = Self { x, y };
        batch.check_rows()?;
        Ok(batch)
    }

    /// A batch from host labels, on the inputs' device.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_labels(x: Tensor<2>, labels: &[i64]) -> Result<Self> {
        let y = Tensor::from_data(
            TensorData::new(labels.to_vec(), [labels.len()]),
            &x.device(),
        );
        Self::new(x, y)
    }

    /// Checks that `x` and `y` have the same number of rows.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if they do not.
    pub fn check_rows(&self) -> Result<()> {
        let rows = self.x.dims()[0];
        let labels = self.y.dims()[0];
        if rows != labels {
            return Err(Error::shape(
                "LabeledBatch (labels y)",
                format!("one label per row of x, {rows}"),
                format!("{labels} labels"),
            ));
        }
        Ok(())
    }

    /// Checks that `x` and `y` have the same number of rows and every label is a class
    /// in `0..num_classes` (reads the labels back to the host).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for a label count that differs from the rows of `x`;
    /// [`Error::InvalidConfig`] for a label out of range.
    pub fn check_labels(&self, num_classes: usize) -> Result<()> {
        self.check_rows()?;
        check_class_labels(&self.y, num_classes)
    }

    /// The labels, read back to the host.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if the device cannot hand them back.
    pub fn labels(&self) -> Result<Vec<i64>> {
        read_ints(self.y.clone(), "reading the labels back from the device")
    }
}

/// Checks that every label of `y` is a class in `0..num_classes` (reads them back to the
/// host).
///
/// # Errors
/// [`Error::InvalidConfig`] naming the first label out of range and its row.
pub fn check_class_labels(y: &Tensor<1, Int>, num_classes: usize) -> Result<()> {
    let classes = num_classes as i64;
    let labels = read_ints(y.clone(), "reading the labels back from the device")?;
    if let Some((i, label)) = labels
        .into_iter()
        .enumerate()
        .find(|&(_, y)| !(0..classes).contains(&y))
    {
        return Err(Error::config(
            "labels",
            format!("{label} (row {i})"),
            format!(
                "a class in 0..{classes}; build the model with num_classes > {label} or \
                 fix the labels"
            ),
        ));
    }
    Ok(())
}

/// A host copy of an integer tensor.
fn read_ints<const D: usize>(t: Tensor<D, Int>, context: &str) -> Result<Vec<i64>> {
    t.try_into_vec_as::<i64>().map_err(|e| Error::NonFinite {
        context: context.into(),
        hint: format!("{e:?}"),
    })
}

impl Batch for LabeledBatch {
    fn batch_size(&self) -> usize {
        self.x.dims()[0]
    }

    fn repeat_rows(&self, k: usize) -> Self {
        if k == 1 {
            return self.clone();
        }
        Self {
            x: self.x.clone().repeat_dim(0, k),
            y: self.y.clone().repeat_dim(0, k),
        }
    }

    fn narrow_rows(&self, start: usize, len: usize) -> Self {
        Self {
            x: self.x.clone().narrow(0, start, len),
            y: self.y.clone().narrow(0, start, len),
        }
    }

    fn select_rows(&self, indices: Tensor<1, Int>) -> Self {
        Self {
            x: self.x.clone().select(0, indices.clone()),
            y: self.y.clone().select(0, indices),
        }
    }

    fn device(&self) -> Device {
        self.x.device()
    }

    fn detach(&self) -> Self {
        Self {
            x: self.x.clone().detach(),
            y: self.y.clone(),
        }
    }
}

/// Greyscale images with class labels, ready for [`fit`](crate::train::fit): batches are
/// [`LabeledBatch`]es of grey levels scaled to `[0, 1]` ([`Images::unit`]).
///
/// ```
/// use elbo::data::{Images, LabeledImageData, TrainData};
/// use rand::SeedableRng;
///
/// let device = elbo::device::default_device();
/// let images = Images { count: 3, channels: 1, rows: 1, cols: 2, pixels: vec![0, 255, 51, 102, 255, 0] };
/// let data = LabeledImageData::new(images, vec![1, 0, 1], 2)?;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let batch = data.batch(&[2, 0], &mut rng, &device)?;
/// assert_eq!(batch.labels()?, vec![1, 1]);
/// assert_eq!(batch.x.try_into_vec_as::<f32>().unwrap(), vec![1.0, 0.0, 0.0, 1.0]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct LabeledImageData {
    images: Images,
    labels: Vec<u8>,
    num_classes: usize,
    unit: Vec<f32>,
}

impl LabeledImageData {
    /// Images with one label each, every label in `0..num_classes`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `num_classes < 2` or a label is `>= num_classes`;
    /// [`Error::ShapeMismatch`] if there is not exactly one label per image.
    pub fn new(images: Images, labels: Vec<u8>, num_classes: usize) -> Result<Self> {
        if num_classes < 2 {
            return Err(Error::config(
                "num_classes",
                num_classes,
                "at least 2 classes",
            ));
        }
        if labels.len() != images.count {
            return Err(Error::shape(
                "LabeledImageData::new (labels)",
                format!("one label per image, {}", images.count),
                format!("{} labels", labels.len()),
            ));
        }
        if let Some((i, &label)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= num_classes)
        {
            return Err(Error::config(
                "labels",
                format!("{label} (image {i})"),
                format!(
                    "a class below num_classes = {num_classes}; raise num_classes or fix \
                     the label file"
                ),
            ));
        }
        let unit = images.unit();
        Ok(Self {
            images,
            labels,
            num_classes,
            unit,
        })
    }

    /// Reads an MNIST-format image file and its label file (see [`Images::load`] and
    /// [`load_labels`]).
    ///
    /// # Errors
    /// As [`Images::load`], [`load_labels`] and [`new`](Self::new).
    pub fn load(
        images: impl AsRef<Path>,
        labels: impl AsRef<Path>,
        num_classes: usize,
    ) -> Result<Self> {
        Self::new(Images::load(images)?, load_labels(labels)?, num_classes)
    }

    /// The underlying images.
    pub fn images(&self) -> &Images {
        &self.images
    }

    /// The label of every image.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The number of classes the labels range over.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The examples `start..start + len` as one batch, in order (for evaluation).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the range is empty or out of bounds.
    pub fn range(&self, start: usize, len: usize, device: &Device) -> Result<LabeledBatch> {
        if len == 0
            || start
                .checked_add(len)
                .is_none_or(|end| end > self.images.count)
        {
            return Err(Error::config(
                "range",
                format!("{start}..{}", start.saturating_add(len)),
                format!("a non-empty range within 0..{}", self.images.count),
            ));
        }
        let indices: Vec<usize> = (start..start + len).collect();
        self.gather(&indices, device)
    }

    fn gather(&self, indices: &[usize], device: &Device) -> Result<LabeledBatch> {
        let d = self.images.dim();
        let mut values = Vec::with_capacity(indices.len() * d);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            if i >= self.images.count {
                return Err(Error::config(
                    "index",
                    i,
                    format!("below the number of images, {}", self.images.count),
                ));
            }
            values.extend_from_slice(&self.unit[i * d..(i + 1) * d]);
            labels.push(self.labels[i] as i64);
        }
        let x = flat_tensor(values, indices.len(), d, device)?;
        let y = Tensor::from_data(TensorData::new(labels, [indices.len()]), device);
        LabeledBatch::new(x, y)
    }
}

impl TrainData for LabeledImageData {
    type Input = LabeledBatch;

    fn len(&self) -> usize {
        self.images.count
    }

    fn batch(&self, indices: &[usize], _rng: &mut StdRng, device: &Device) -> Result<LabeledBatch> {
        self.gather(indices, device)
    }
}
