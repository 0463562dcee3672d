//! A folder of MNIST-format files: the official four (gzipped IDX), and optionally the
//! fixed binarisation of the test images that binary models are evaluated on.

use std::path::Path;

use super::folder::require;
use super::images::{Images, load_labels};
use crate::{Error, Result};

/// The training and test images and labels of an MNIST-format folder.
///
/// The folder holds the official file names ([`Mnist::FILES`]), gzipped or not as
/// [`read_idx`](super::read_idx) allows, so a folder of the official MNIST files loads as
/// it is; so do the repository's 10,000-digit subset (`data/mnist-10k`) and Fashion-MNIST.
///
/// ```
/// // The repository's subset (paths relative to the repository's root).
/// let mnist = elbo::data::Mnist::load("data/mnist-10k")?;
/// assert_eq!((mnist.train.count, mnist.test.count), (8000, 2000));
/// assert_eq!(mnist.train_labels.len(), 8000);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Mnist {
    /// `train-images-idx3-ubyte`: 8-bit grey training images.
    pub train: Images,
    /// `train-labels-idx1-ubyte`: one class per training image.
    pub train_labels: Vec<u8>,
    /// `t10k-images-idx3-ubyte`: 8-bit grey test images.
    pub test: Images,
    /// `t10k-labels-idx1-ubyte`: one class per test image.
    pub test_labels: Vec<u8>,
    /// [`Mnist::BINARIZED_TEST_FILE`], where the folder has it: the test images binarised
    /// once (0/1 bytes), so that NLLs of binary models compare across implementations
    /// without binarisation noise.
    pub test_binarized: Option<Images>,
}

impl Mnist {
    /// The files an MNIST folder must hold: training images and labels, test images and
    /// labels.
    pub const FILES: [&'static str; 4] = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ];

    /// The optional fixed binarisation of the test images (each pixel drawn once as 1 with
    /// probability grey/255, seed 1234), as the repository's `data/mnist-10k` ships it.
    pub const BINARIZED_TEST_FILE: &'static str = "t10k-images-binarized-seed1234-idx3-ubyte.gz";

    /// Reads the folder's files (see [`Mnist::FILES`]; [`Mnist::BINARIZED_TEST_FILE`] too
    /// where present).
    ///
    /// # Errors
    /// [`Error::DataFolder`] if the folder does not exist or lacks a file of
    /// [`Mnist::FILES`] (checked before anything is read; [`Error::set_by`] adds the flag
    /// that chose the folder to the message); [`Error::InvalidData`] naming the file if
    /// one is malformed, if the labels do not match the images one to one, or if the
    /// training, test and binarised test images differ in size.
    pub fn load(folder: impl AsRef<Path>) -> Result<Self> {
        let folder = folder.as_ref();
        let paths = require(folder, "MNIST", &Self::FILES)?;
        let train = Images::load(&paths[0])?;
        let train_labels = load_labels(&paths[1])?;
        let test = Images::load(&paths[2])?;
        let test_labels = load_labels(&paths[3])?;
        for (labels, images, path) in [
            (&train_labels, &train, &paths[1]),
            (&test_labels, &test, &paths[3]),
        ] {
            if labels.len() != images.count {
                return Err(Error::InvalidData {
                    path: path.clone(),
                    reason: format!(
                        "{} labels for {} images; the label file must have one per image",
                        labels.len(),
                        images.count
                    ),
                });
            }
        }
        let binarized_path = folder.join(Self::BINARIZED_TEST_FILE);
        let test_binarized = if binarized_path.is_file() {
            let binarized = Images::load(&binarized_path)?;
            if (binarized.count, binarized.rows, binarized.cols)
                != (test.count, test.rows, test.cols)
            {
                return Err(Error::InvalidData {
                    path: binarized_path,
                    reason: format!(
                        "{} images of {}×{}; the binarised test file must match the test \
                         images ({} of {}×{})",
                        binarized.count,
                        binarized.rows,
                        binarized.cols,
                        test.count,
                        test.rows,
                        test.cols
                    ),
                });
            }
            Some(binarized)
        } else {
            None
        };
        if (train.rows, train.cols) != (test.rows, test.cols) {
            return Err(Error::InvalidData {
                path: paths[2].clone(),
                reason: format!(
                    "test images are {}×{}, training images {}×{}; they must be one size",
                    test.rows, test.cols, train.rows, train.cols
                ),
            });
        }
        Ok(Self {
            train,
            train_labels,
            test,
            test_labels,
            test_binarized,
        })
    }

    /// The binarised test images: [`Mnist::BINARIZED_TEST_FILE`]'s where the folder has it,
    /// else the test images binarised once here (seed 1234; not the same draws as the
    /// file's, so NLLs on the two do not compare to the last decimal).
    pub fn binarized_test(&self) -> Images {
        match &self.test_binarized {
            Some(images) => images.clone(),
            None => {
                log::warn!(
                    "no {}: binarising the test images once with seed 1234",
                    Self::BINARIZED_TEST_FILE
                );
                let pixels = self
                    .test
                    .binarize_fixed(1234)
                    .into_iter()
                    .map(|v| v as u8)
                    .collect();
                Images {
                    count: self.test.count,
                    channels: self.test.channels,
                    rows: self.test.rows,
                    cols: self.test.cols,
                    pixels,
                }
            }
        }
    }
}
