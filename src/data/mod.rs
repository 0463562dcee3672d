//! Data: folders of MNIST-format files, CIFAR-10-format files and sentences, the IDX
//! and CIFAR-10 readers, binarisation and shuffled batching.

mod batches;
mod cifar;
mod corpus;
mod file_bytes;
mod folder;
mod idx;
#[cfg(feature = "png")]
mod image_folder;
mod images;
mod labeled;
mod mnist;
mod text;

pub use batches::{BUCKET_POOL_BATCHES, TrainData, bucketed_batches, shuffled_batches};
pub use cifar::{CIFAR_RECORD_BYTES, CIFAR_SIDE, Cifar, read_cifar_batch};
pub use corpus::SentenceCorpus;
pub use idx::{IdxArray, read_idx};
#[cfg(feature = "png")]
#[cfg_attr(docsrs, doc(cfg(feature = "png")))]
pub use image_folder::{ColorMode, read_image_folder};
pub use images::{Binarization, ImageData, Images, load_labels};
pub use labeled::{LabeledBatch, LabeledImageData, check_class_labels};
pub use mnist::Mnist;
pub(crate) use text::next_char;
pub use text::{CharVocab, SentenceData, TokenBatch, read_sentences};
