//! Beam search: decoding the most probable sentence given the latents, more thoroughly than
//! greedy decoding.

use burn::tensor::{Int, Tensor, TensorData, activation};

use super::UniVae;

use crate::Result;
use crate::data::{CharVocab, TokenBatch};
use crate::error::ensure_nonzero;

/// A partial sentence and its log-probability `Σ_t log p(x_t | x_{<t}, z)` so far.
#[derive(Clone, Debug)]
struct Hypothesis {
    chars: Vec<i64>,
    log_p: f64,
}

impl UniVae {
    /// Sentences decoded from latents `z` (one `[batch, latent_dim]` unit tensor per latent
    /// layer, bottom first) by beam search: per row, the `beam` most probable partial
    /// sentences are extended by one character at a time and the `beam` best extensions
    /// kept; a hypothesis ends with the end marker (the only extension allowed after
    /// `max_chars` characters). Returns, per row, the finished sentence of highest
    /// `log p(x | z)` (its characters and end marker, as
    /// [`sentence_log_prob`](Self::sentence_log_prob) counts them). Search stops for a row once its best finished sentence is more
    /// probable than every open hypothesis (extending one only lowers its probability).
    ///
    /// `beam = 1` is greedy decoding; a beam as large as the number of partial sentences
    /// finds the most probable sentence exactly. Each step reruns the decoder over the
    /// whole prefix of every open hypothesis (`batch · beam` rows), so a step costs about
    /// `beam` times a step of uncached greedy decoding.
    ///
    /// ```
    /// use elbo::data::CharVocab;
    /// use elbo::models::univae::UniVaeConfig;
    /// use elbo::Batch;
    ///
    /// let device = elbo::device::default_device();
    /// let vocab = CharVocab::from_sentences(["hello", "world"]);
    /// let model = UniVaeConfig::new(vocab.len()).with_d_model(16).with_d_ff(32)
    ///     .with_max_chars(6).init(&device)?;
    /// let z = model.sample_latents(2, &device);
    /// let sentences = model.generate_beam(&z, 4)?;
    /// assert_eq!(sentences.batch_size(), 2);
    /// assert!(model.generate_beam(&z, 0).is_err());
    /// # Ok::<(), elbo::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for `beam = 0`;
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) for latents of the wrong
    /// number or shape.
    pub fn generate_beam(&self, z: &[Tensor<2>], beam: usize) -> Result<TokenBatch> {
        ensure_nonzero("beam", beam)?;
        let (batch, device) = self.check_generation_latents(z)?;
        let vocab = self.vocab_size();
        let max_chars = self.max_chars();
        let mut open: Vec<Vec<Hypothesis>> = vec![
            vec![Hypothesis {
                chars: Vec::new(),
                log_p: 0.0,
            }];
            batch
        ];
        let mut best: Vec<Option<Hypothesis>> = vec![None; batch];
        for step in 1..=max_chars + 1 {
            // Every open hypothesis has step − 1 characters: one decoder pass over all.
            let rows: Vec<(usize, &Hypothesis)> = open
                .iter()
                .enumerate()
                .flat_map(|(row, hyps)| hyps.iter().map(move |h| (row, h)))
                .collect();
            if rows.is_empty() {
                break;
            }
            let mut ids = Vec::with_capacity(rows.len() * step);
            for (_, h) in &rows {
                ids.push(CharVocab::BOS);
                ids.extend(&h.chars);
            }
            let inputs =
                Tensor::<2, Int>::from_data(TensorData::new(ids, [rows.len(), step]), &device);
            let picks: Vec<i64> = rows.iter().map(|&(row, _)| row as i64).collect();
            let picks = Tensor::<1, Int>::from_data(TensorData::new(picks, [rows.len()]), &device);
            let z_rows: Vec<Tensor<2>> = z
                .iter()
                .map(|z| z.clone().select(0, picks.clone()))
                .collect();
            let last = self
                .decoder_pass(inputs, &z_rows)
                .narrow(1, step - 1, 1)
                .reshape([rows.len(), vocab]);
            let log_p: Vec<f32> = activation::log_softmax(last, 1)
                .try_into_vec_as::<f32>()
                .unwrap_or_default();

            let mut next: Vec<Vec<Hypothesis>> = vec![Vec::new(); batch];
            let mut candidates: Vec<Vec<(f64, usize, i64)>> = vec![Vec::new(); batch];
            for (i, ((row, h), lp)) in rows.iter().zip(log_p.chunks(vocab)).enumerate() {
                // A decoder emits the end marker or a character, never padding or begin;
                // after max_chars characters only the end marker.
                let last = if h.chars.len() == max_chars {
                    CharVocab::EOS as usize + 1
                } else {
                    vocab
                };
                let first = CharVocab::EOS as usize;
                for (id, &l) in lp.iter().enumerate().take(last).skip(first) {
                    candidates[*row].push((h.log_p + l as f64, i, id as i64));
                }
            }
            for (row, mut cands) in candidates.into_iter().enumerate() {
                cands.sort_by(|a, b| b.0.total_cmp(&a.0));
                for (log_p, i, id) in cands.into_iter().take(beam) {
                    let chars = &rows[i].1.chars;
                    if id == CharVocab::EOS {
                        let done = Hypothesis {
                            chars: chars.clone(),
                            log_p,
                        };
                        if best[row].as_ref().is_none_or(|b| log_p > b.log_p) {
                            best[row] = Some(done);
                        }
                    } else {
                        let mut chars = chars.clone();
                        chars.push(id);
                        next[row].push(Hypothesis { chars, log_p });
                    }
                }
            }
            for (row, hyps) in next.iter_mut().enumerate() {
                if let Some(b) = &best[row] {
                    hyps.retain(|h| h.log_p > b.log_p);
                }
            }
            open = next;
        }
        let sequences: Vec<Vec<i64>> = best
            .into_iter()
            .map(|b| b.map(|b| b.chars).unwrap_or_default())
            .collect();
        Ok(TokenBatch::build(&sequences, &device))
    }
}
