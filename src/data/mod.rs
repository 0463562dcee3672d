//! Data: folders of MNIST-format files and of sentences, the IDX reader, binarisation
//! and shuffled batching.

mod batches;
mod corpus;
mod folder;
mod idx;
mod images;
mod labeled;
mod mnist;
mod text;

pub use batches::{BUCKET_POOL_BATCHES, TrainData, bucketed_batches, shuffled_batches};
pub use corpus::SentenceCorpus;
pub use idx::{IdxArray, read_idx};
pub use images::{Binarization, ImageData, Images, load_labels};
pub use labeled::{LabeledBatch, LabeledImageData};
pub use mnist::Mnist;
pub(crate) use text::next_char;
pub use text::{CharVocab, SentenceData, TokenBatch, read_sentences};
