//! The examples' data folders: the repository's copies by default (found from
//! `CARGO_MANIFEST_DIR`, so the examples run from any working directory), any other
//! folder with `--data DIR`. A missing or wrong folder is an `elbo::Error` that names the
//! folder, the files it must hold and the flag. `tests/example_data.rs` includes this file.

use std::path::{Path, PathBuf};

use elbo::data::{Cifar, Mnist, SentenceCorpus};

/// The flag that sets an example's data folder, as its error messages name it.
pub const DATA_FLAG: &str = "--data DIR";

/// The repository's MNIST subset, `data/mnist-10k`.
pub fn default_mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-10k")
}

/// The repository's sentence corpus, `data/fortune-sentences`.
pub fn default_text_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fortune-sentences")
}

/// The repository's colour images in the CIFAR-10 binary format, `data/emoji-32`.
pub fn default_emoji_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/emoji-32")
}

/// The CIFAR-10-format folder `dir` (the colour example's loader).
pub fn load_cifar(dir: &Path) -> Result<Cifar, elbo::Error> {
    Cifar::load(dir).map_err(|e| e.set_by(DATA_FLAG))
}

/// The MNIST-format folder `dir` (the MNIST examples' loader).
pub fn load_mnist(dir: &Path) -> Result<Mnist, elbo::Error> {
    Mnist::load(dir).map_err(|e| e.set_by(DATA_FLAG))
}

/// The sentence corpus in `dir`, sentences of at most `max_chars` characters (the text
/// examples' loader).
pub fn load_sentences(dir: &Path, max_chars: usize) -> Result<SentenceCorpus, elbo::Error> {
    SentenceCorpus::load(dir, max_chars).map_err(|e| e.set_by(DATA_FLAG))
}
