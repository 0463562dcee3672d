//! Data: the MNIST-format IDX reader, binarisation and shuffled batching.

mod batches;
mod idx;
mod images;

pub use batches::{TrainData, shuffled_batches};
pub use idx::{IdxArray, read_idx};
pub use images::{Binarization, ImageData, Images, load_labels};
