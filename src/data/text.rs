//! Sentences as character sequences: the vocabulary, a reader for one-sentence-per-line
//! files, and the padded token batches that sequence models take.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::RngExt as _;
use rand::rngs::StdRng;

use super::batches::{TrainData, bucketed_batches};
use crate::traits::Batch;
use crate::{Error, Result};

/// A character vocabulary with four reserved ids: padding, begin, end and unknown.
///
/// Ids `0..4` are [`PAD`](Self::PAD), [`BOS`](Self::BOS), [`EOS`](Self::EOS) and
/// [`UNK`](Self::UNK); the characters seen when the vocabulary was built follow in sorted
/// order, so the same sentences always give the same ids.
///
/// ```
/// use elbo::data::CharVocab;
///
/// let vocab = CharVocab::from_sentences(["abc", "cab!"]);
/// assert_eq!(vocab.len(), 4 + 4);
/// let ids = vocab.encode("cab?");
/// assert_eq!(ids[3], CharVocab::UNK);
/// assert!(vocab.try_encode("cab?").is_err());
/// assert_eq!(vocab.decode(&vocab.encode("bac")), "bac");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharVocab {
    chars: Vec<char>,
}

impl CharVocab {
    /// Padding after the end of a sentence (never predicted).
    pub const PAD: i64 = 0;
    /// Begin of sentence: the decoder's first input.
    pub const BOS: i64 = 1;
    /// End of sentence: the decoder's last target.
    pub const EOS: i64 = 2;
    /// A character not in the vocabulary.
    pub const UNK: i64 = 3;
    const RESERVED: usize = 4;

    /// The characters of `sentences`, sorted.
    pub fn from_sentences<S: AsRef<str>>(sentences: impl IntoIterator<Item = S>) -> Self {
        let set: BTreeSet<char> = sentences
            .into_iter()
            .flat_map(|s| s.as_ref().chars().collect::<Vec<_>>())
            .collect();
        Self {
            chars: set.into_iter().collect(),
        }
    }

    /// Number of ids, reserved ones included.
    pub fn len(&self) -> usize {
        self.chars.len() + Self::RESERVED
    }

    /// Whether no character was seen (only the reserved ids exist).
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The ids of the characters of `sentence` (no begin or end marker).
    pub fn encode(&self, sentence: &str) -> Vec<i64> {
        sentence
            .chars()
            .map(|c| match self.chars.binary_search(&c) {
                Ok(i) => (i + Self::RESERVED) as i64,
                Err(_) => Self::UNK,
            })
            .collect()
    }

    /// The ids of the characters of `sentence`, refusing characters the vocabulary does not
    /// hold (where [`encode`](Self::encode) maps them to [`UNK`](Self::UNK)).
    ///
    /// # Errors
    /// [`Error::InvalidData`] naming the first unknown character and its position.
    pub fn try_encode(&self, sentence: &str) -> Result<Vec<i64>> {
        sentence
            .chars()
            .enumerate()
            .map(|(i, c)| match self.chars.binary_search(&c) {
                Ok(k) => Ok((k + Self::RESERVED) as i64),
                Err(_) => Err(Error::InvalidData {
                    path: Default::default(),
                    reason: format!(
                        "character {c:?} at position {i} of {sentence:?} is not in the \
                         vocabulary; build the vocabulary from text that holds it, or use \
                         CharVocab::encode to map it to UNK"
                    ),
                }),
            })
            .collect()
    }

    /// The text of `ids`, stopping at the first end marker; begin and padding ids are
    /// skipped and unknown ids read as `�`.
    pub fn decode(&self, ids: &[i64]) -> String {
        let mut text = String::new();
        for &id in ids {
            match id {
                Self::EOS => break,
                Self::PAD | Self::BOS => {}
                _ => text.push(
                    usize::try_from(id)
                        .ok()
                        .and_then(|i| i.checked_sub(Self::RESERVED))
                        .and_then(|i| self.chars.get(i).copied())
                        .unwrap_or('\u{FFFD}'),
                ),
            }
        }
        text
    }
}

/// The next id of a generated sentence from one row `p` of softmax probabilities over the
/// vocabulary: its most probable id (`greedy`) or a draw from it, never padding or the begin
/// marker (their probability is dropped and the rest renormalised).
pub(crate) fn next_char(p: &[f32], greedy: bool, rng: &mut StdRng) -> i64 {
    let allowed = |id: usize| id as i64 != CharVocab::PAD && id as i64 != CharVocab::BOS;
    let ids = || (0..p.len()).filter(|&i| allowed(i));
    let id = if greedy {
        ids()
            .max_by(|&a, &b| p[a].total_cmp(&p[b]))
            .unwrap_or(CharVocab::EOS as usize)
    } else {
        let total: f32 = ids().map(|i| p[i]).sum();
        let mut u = rng.random::<f32>() * total;
        let mut pick = CharVocab::EOS as usize;
        for i in ids() {
            pick = i;
            u -= p[i];
            if u <= 0.0 {
                break;
            }
        }
        pick
    };
    id as i64
}

/// Reads a text file of one sentence per line (blank lines skipped, line ends trimmed).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read or is not UTF-8; [`Error::InvalidData`] if it
/// holds no sentence or a sentence longer than `max_chars` characters (the message names
/// the line).
pub fn read_sentences(path: impl AsRef<Path>, max_chars: usize) -> Result<Vec<String>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut sentences = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let n = line.chars().count();
        if n > max_chars {
            return Err(Error::InvalidData {
                path: path.to_path_buf(),
                reason: format!(
                    "line {} has {n} characters, more than the limit {max_chars}; \
                     raise max_chars or shorten the line",
                    i + 1
                ),
            });
        }
        sentences.push(line.to_string());
    }
    if sentences.is_empty() {
        return Err(Error::InvalidData {
            path: path.to_path_buf(),
            reason: "no sentences (the file is empty or blank)".into(),
        });
    }
    Ok(sentences)
}

/// A batch of token sequences, padded: row `i` is `BOS c_1 … c_n EOS PAD …`.
///
/// `lengths[i] = n + 1` is the number of tokens a decoder predicts for row `i` (the
/// characters and the end marker). The tensor has `max(lengths) + 1` columns, no more:
/// [`narrow_rows`](Batch::narrow_rows) and [`select_rows`](Batch::select_rows) drop
/// columns that only hold padding, so chunks of similar-length sentences cost less.
///
/// ```
/// use elbo::Batch;
/// use elbo::data::{CharVocab, TokenBatch};
///
/// let device = elbo::device::default_device();
/// let batch = TokenBatch::new(&[vec![4, 5, 6], vec![7]], &device)?;
/// assert_eq!(batch.lengths(), &[4, 2]);
/// assert_eq!(batch.tokens().dims(), [2, 5]);
/// assert_eq!(batch.narrow_rows(1, 1).tokens().dims(), [1, 3]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TokenBatch {
    tokens: Tensor<2, Int>,
    lengths: Arc<Vec<usize>>,
    max_id: i64,
}

impl TokenBatch {
    /// Pads `sequences` (character ids, without markers) into a batch on `device`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for no sequences; [`Error::InvalidData`] for a padding,
    /// begin or end id (or a negative one) inside a sentence.
    pub fn new(sequences: &[Vec<i64>], device: &Device) -> Result<Self> {
        if sequences.is_empty() {
            return Err(Error::shape(
                "TokenBatch::new",
                "at least one sequence",
                "0 sequences",
            ));
        }
        if let Some((row, id)) = sequences.iter().enumerate().find_map(|(row, s)| {
            s.iter()
                .find(|&&id| id < CharVocab::UNK)
                .map(|&id| (row, id))
        }) {
            return Err(Error::InvalidData {
                path: Default::default(),
                reason: format!(
                    "sequence {row} holds id {id}, which is padding, a marker or negative \
                     (PAD, BOS, EOS are 0, 1, 2); encode text with CharVocab::encode"
                ),
            });
        }
        Ok(Self::build(sequences, device))
    }

    /// Pads sequences already known to hold no padding or marker ids (any number of them).
    pub(crate) fn build(sequences: &[Vec<i64>], device: &Device) -> Self {
        let lengths: Vec<usize> = sequences.iter().map(|s| s.len() + 1).collect();
        let width = lengths.iter().max().copied().unwrap_or(1) + 1;
        let mut ids = Vec::with_capacity(sequences.len() * width);
        for s in sequences {
            ids.push(CharVocab::BOS);
            ids.extend(s);
            ids.push(CharVocab::EOS);
            ids.extend(std::iter::repeat_n(CharVocab::PAD, width - s.len() - 2));
        }
        let max_id = ids.iter().copied().max().unwrap_or(CharVocab::EOS);
        let tokens = Tensor::from_data(TensorData::new(ids, [sequences.len(), width]), device);
        Self {
            tokens,
            lengths: Arc::new(lengths),
            max_id,
        }
    }

    /// The padded ids, `[batch, max(lengths) + 1]`.
    pub fn tokens(&self) -> &Tensor<2, Int> {
        &self.tokens
    }

    /// Tokens predicted per row: characters plus the end marker.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// An upper bound on the ids in the batch (the largest id it was built with): a model
    /// with a vocabulary of `n` ids checks `max_id < n`.
    pub fn max_id(&self) -> i64 {
        self.max_id
    }

    /// The number of time steps a decoder runs: `max(lengths)`.
    pub fn steps(&self) -> usize {
        self.tokens.dims()[1] - 1
    }

    /// What a decoder reads at each step (teacher forcing): columns `0..steps`, `BOS c_1 …`.
    pub fn inputs(&self) -> Tensor<2, Int> {
        self.tokens.clone().narrow(1, 0, self.steps())
    }

    /// What a decoder predicts at each step: columns `1..=steps`, `c_1 … EOS PAD …`.
    pub fn targets(&self) -> Tensor<2, Int> {
        self.tokens.clone().narrow(1, 1, self.steps())
    }

    /// `[batch, steps]`: 1 where row `i`'s step `t` is predicted (`t < lengths[i]`), else 0.
    pub fn mask(&self) -> Tensor<2> {
        let steps = self.steps();
        let mask: Vec<f32> = self
            .lengths
            .iter()
            .flat_map(|&n| (0..steps).map(move |t| if t < n { 1.0 } else { 0.0 }))
            .collect();
        Tensor::from_data(
            TensorData::new(mask, [self.lengths.len(), steps]),
            &self.tokens.device(),
        )
    }

    /// The sequences as ids (without markers), read back from the device.
    pub fn sequences(&self) -> Vec<Vec<i64>> {
        let width = self.tokens.dims()[1];
        let ids = self
            .tokens
            .clone()
            .try_into_vec_as::<i64>()
            .unwrap_or_default();
        self.lengths
            .iter()
            .enumerate()
            .map(|(i, &n)| ids[i * width + 1..i * width + n].to_vec())
            .collect()
    }

    fn with_rows(&self, tokens: Tensor<2, Int>, lengths: Vec<usize>) -> Self {
        let width = lengths.iter().max().copied().unwrap_or(1) + 1;
        let tokens = if width < tokens.dims()[1] {
            tokens.narrow(1, 0, width)
        } else {
            tokens
        };
        Self {
            tokens,
            lengths: Arc::new(lengths),
            max_id: self.max_id,
        }
    }
}

impl Batch for TokenBatch {
    fn batch_size(&self) -> usize {
        self.lengths.len()
    }

    fn repeat_rows(&self, k: usize) -> Self {
        if k == 1 {
            return self.clone();
        }
        let lengths = self.lengths.iter().copied().cycle();
        Self {
            tokens: self.tokens.clone().repeat_dim(0, k),
            lengths: Arc::new(lengths.take(k * self.lengths.len()).collect()),
            max_id: self.max_id,
        }
    }

    fn narrow_rows(&self, start: usize, len: usize) -> Self {
        self.with_rows(
            self.tokens.clone().narrow(0, start, len),
            self.lengths[start..start + len].to_vec(),
        )
    }

    fn select_rows(&self, indices: Tensor<1, Int>) -> Self {
        let rows = indices.clone().try_into_vec_as::<i64>().unwrap_or_default();
        let lengths = rows.iter().map(|&i| self.lengths[i as usize]).collect();
        self.with_rows(self.tokens.clone().select(0, indices), lengths)
    }

    fn device(&self) -> Device {
        self.tokens.device()
    }

    fn detach(&self) -> Self {
        self.clone()
    }
}

/// Sentences encoded with a [`CharVocab`]: the training set of a sentence model.
#[derive(Clone, Debug)]
pub struct SentenceData {
    /// Character ids of each sentence.
    pub sequences: Vec<Vec<i64>>,
}

impl SentenceData {
    /// Encodes `sentences` with `vocab`.
    pub fn new<S: AsRef<str>>(sentences: &[S], vocab: &CharVocab) -> Self {
        Self {
            sequences: sentences.iter().map(|s| vocab.encode(s.as_ref())).collect(),
        }
    }

    /// All sentences as one batch, ordered by length (shortest first) so that chunks of
    /// it carry little padding; the second value maps batch rows to sentence indices.
    ///
    /// # Errors
    /// As [`TokenBatch::new`].
    pub fn sorted_batch(&self, device: &Device) -> Result<(TokenBatch, Vec<usize>)> {
        let mut order: Vec<usize> = (0..self.sequences.len()).collect();
        order.sort_by_key(|&i| (self.sequences[i].len(), i));
        let rows: Vec<Vec<i64>> = order.iter().map(|&i| self.sequences[i].clone()).collect();
        Ok((TokenBatch::new(&rows, device)?, order))
    }
}

impl TrainData for SentenceData {
    type Input = TokenBatch;

    fn len(&self) -> usize {
        self.sequences.len()
    }

    fn batch(&self, indices: &[usize], _rng: &mut StdRng, device: &Device) -> Result<TokenBatch> {
        let rows: Vec<Vec<i64>> = indices
            .iter()
            .map(|&i| {
                self.sequences.get(i).cloned().ok_or_else(|| {
                    Error::shape(
                        "SentenceData::batch",
                        format!("indices below {}", self.sequences.len()),
                        i,
                    )
                })
            })
            .collect::<Result<_>>()?;
        TokenBatch::new(&rows, device)
    }

    /// Length-bucketed batches ([`bucketed_batches`]): a padded sentence batch costs as
    /// much as its longest sentence, so similar lengths go together.
    fn epoch_batches(&self, batch_size: usize, rng: &mut StdRng) -> Vec<Vec<usize>> {
        let lengths: Vec<usize> = self.sequences.iter().map(Vec::len).collect();
        bucketed_batches(&lengths, batch_size, rng)
    }
}
