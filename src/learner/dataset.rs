//! [`ElboDataset`]: burn's `Dataset` over any [`TrainData`], whose items are the
//! examples' indices.

use std::fmt;
use std::sync::Arc;

use burn::data::dataset::{Dataset, DatasetError};

use crate::Error;
use crate::data::TrainData;

/// burn's `Dataset` over a [`TrainData`] (`ImageData`, `SentenceData`,
/// `LabeledImageData`, or a type of the user's): item `i` is the index `i` itself, and
/// [`ElboBatcher`](super::ElboBatcher) reads the examples of a batch of indices in one go.
///
/// Items are indices, not examples, so that reading stays where the data type does it
/// best (a whole batch into one tensor, the binarisation on the batch's device, sentences
/// padded to their batch's longest) and so that burn's index transforms apply unchanged:
/// `DataLoaderBuilder::shuffle`, `PartialDataset` for a split, `SamplerDataset` for
/// sampling with replacement, several loader workers. Do not compose it with a dataset
/// over *other* data (burn's `ComposedDataset`): the batcher reads every index from its own
/// data.
///
/// ```
/// use std::sync::Arc;
/// use burn::data::dataset::Dataset;
/// use elbo::data::{Binarization, ImageData, Images};
/// use elbo::learner::ElboDataset;
///
/// let images = Images { count: 3, channels: 1, rows: 1, cols: 2, pixels: vec![0; 6] };
/// let dataset = ElboDataset::new(Arc::new(ImageData::new(images, Binarization::Dynamic)));
/// assert_eq!(dataset.len(), 3);
/// assert_eq!(dataset.get(2).unwrap(), 2);
/// assert!(dataset.get(3).is_err());
/// ```
pub struct ElboDataset<T> {
    data: Arc<T>,
}

impl<T> ElboDataset<T> {
    /// The dataset of `data`'s indices.
    pub fn new(data: Arc<T>) -> Self {
        Self { data }
    }
}

impl<T> fmt::Debug for ElboDataset<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElboDataset").finish_non_exhaustive()
    }
}

impl<T: TrainData + Send + Sync> Dataset<usize> for ElboDataset<T> {
    /// The index `index`; an error past the end (burn's own datasets panic there).
    fn get(&self, index: usize) -> Result<usize, DatasetError> {
        let len = self.data.len();
        if index < len {
            Ok(index)
        } else {
            Err(DatasetError::new(Error::config(
                "index",
                index,
                format!("below the number of examples, {len}"),
            )))
        }
    }

    fn len(&self) -> usize {
        self.data.len()
    }
}
