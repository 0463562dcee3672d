//! Data: the MNIST-format IDX reader, binarisation and shuffled batching.

mod batches;
mod idx;
mod images;
mod labeled;
mod text;

pub use batches::{BUCKET_POOL_BATCHES, TrainData, bucketed_batches, shuffled_batches};
pub use idx::{IdxArray, read_idx};
pub use images::{Binarization, ImageData, Images, load_labels};
pub use labeled::{LabeledBatch, LabeledImageData};
pub(crate) use text::next_char;
pub use text::{CharVocab, SentenceData, TokenBatch, read_sentences};
