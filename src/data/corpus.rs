//! A folder holding a sentence corpus: `train.txt` and `test.txt`, one sentence per line.

use std::path::Path;

use super::folder::require;
use super::text::read_sentences;
use crate::Result;

/// The training and test sentences of a corpus folder.
///
/// ```
/// // The repository's corpus (paths relative to the repository's root).
/// let corpus = elbo::data::SentenceCorpus::load("data/fortune-sentences", 64)?;
/// assert_eq!((corpus.train.len(), corpus.test.len()), (8773, 1000));
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentenceCorpus {
    /// The sentences of `train.txt`, in file order.
    pub train: Vec<String>,
    /// The sentences of `test.txt`, in file order.
    pub test: Vec<String>,
}

impl SentenceCorpus {
    /// The files a corpus folder must hold.
    pub const FILES: [&'static str; 2] = ["train.txt", "test.txt"];

    /// Reads both files with [`read_sentences`] (blank lines skipped, each sentence at
    /// most `max_chars` characters).
    ///
    /// # Errors
    /// [`Error::DataFolder`](crate::Error::DataFolder) if the folder does not exist or lacks
    /// a file (checked before anything is read); as [`read_sentences`] for a file that
    /// cannot be read, is empty or has a longer sentence.
    pub fn load(folder: impl AsRef<Path>, max_chars: usize) -> Result<Self> {
        let paths = require(folder.as_ref(), "sentence", &Self::FILES)?;
        Ok(Self {
            train: read_sentences(&paths[0], max_chars)?,
            test: read_sentences(&paths[1], max_chars)?,
        })
    }
}
