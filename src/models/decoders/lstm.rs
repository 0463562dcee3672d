//! An autoregressive decoder for token sequences: an LSTM fed the latent at every step,
//! and the categorical likelihood it defines.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Int, Tensor, TensorData, activation};

use crate::Result;
use crate::data::{CharVocab, TokenBatch, next_char};
use crate::distributions::host_rng;
use crate::kernels::Run;
use crate::nn::embed_steps;
use crate::nn::{Lstm, LstmConfig, LstmState};
use crate::traits::{Batch, Decoder, Distribution};

/// `p(x | z) = Π_t Cat(x_t | softmax(W h_t + b))`, an LSTM language model conditioned on
/// `z` (Bowman et al. 2016; the decoder of He et al. 2019 and Zhu et al. 2020).
///
/// # Formula
/// ```text
/// c_0 = L z,   h_0 = tanh(c_0)
/// h_t = LSTM([e(x_{t−1}); z], h_{t−1}),   x_0 = BOS          (z enters every step)
/// log p(x | z) = Σ_{t=1}^{n+1} log softmax(W h_t + b)[x_t],    x_{n+1} = EOS
/// ```
/// Training uses teacher forcing: the true previous character is the input. Because the
/// LSTM alone is a strong language model, the posterior can collapse to the prior (the KL
/// vanishes) unless the objective or the posterior family prevents it: the setting of
/// BN-VAE and the vMF-VAE.
#[derive(Module, Debug)]
pub struct LstmDecoder {
    /// Token ids → vectors.
    pub embedding: Embedding,
    /// `z → c_0`.
    pub init: Linear,
    /// `z →` its share of the gates at every step (the `z` half of the input matrix).
    pub latent_gates: Linear,
    /// The recurrent core, reading embeddings.
    pub lstm: Lstm,
    /// `h_t →` logits over the vocabulary.
    pub output: Linear,
    /// Number of token ids.
    #[module(skip)]
    pub vocab_size: usize,
    /// Longest sentence (in characters) that sampling produces before it stops.
    #[module(skip)]
    pub max_chars: usize,
}

impl LstmDecoder {
    /// A decoder over `vocab_size` ids for latents of width `latent_dim`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for a zero size.
    pub fn new(
        vocab_size: usize,
        latent_dim: usize,
        d_embedding: usize,
        d_hidden: usize,
        max_chars: usize,
        device: &burn::tensor::Device,
    ) -> Result<Self> {
        for (field, v) in [
            ("vocab_size", vocab_size),
            ("latent_dim", latent_dim),
            ("d_embedding", d_embedding),
            ("max_chars", max_chars),
        ] {
            crate::error::ensure_nonzero(field, v)?;
        }
        let lstm = LstmConfig::new(d_embedding, d_hidden).init(device)?;
        Ok(Self {
            embedding: EmbeddingConfig::new(vocab_size, d_embedding).init(device),
            init: LinearConfig::new(latent_dim, d_hidden).init(device),
            latent_gates: LinearConfig::new(latent_dim, 4 * d_hidden)
                .with_bias(false)
                .init(device),
            lstm,
            output: LinearConfig::new(d_hidden, vocab_size).init(device),
            vocab_size,
            max_chars,
        })
    }

    /// The initial state and the per-step latent gates for latents `z`.
    fn start(&self, z: &Tensor<2>) -> (LstmState, Tensor<2>) {
        let cell = self.init.run(z.clone());
        let state = LstmState {
            hidden: cell.clone().tanh(),
            cell,
        };
        (state, self.latent_gates.run(z.clone()))
    }
}

impl Decoder for LstmDecoder {
    type Latent = Tensor<2>;
    type Likelihood = SequenceLikelihood;

    /// # Shapes
    /// - `z`: `[batch, latent_dim]`
    /// - output: a likelihood of `batch` sentences
    fn decode(&self, z: &Tensor<2>) -> SequenceLikelihood {
        SequenceLikelihood {
            decoder: self.clone(),
            z: z.clone(),
        }
    }
}

/// The likelihood `p(x | z)` of an [`LstmDecoder`] for a batch of latents. Evaluating it
/// runs the decoder on the sentence (teacher forcing), so it holds the decoder and `z`
/// rather than per-step probabilities.
#[derive(Clone, Debug)]
pub struct SequenceLikelihood {
    decoder: LstmDecoder,
    z: Tensor<2>,
}

impl SequenceLikelihood {
    /// Draws a sentence per row, step by step: sampled from the softmax (`greedy = false`)
    /// or its most probable character (`greedy = true`), until the end marker or
    /// `max_chars` characters.
    pub fn generate(&self, greedy: bool) -> TokenBatch {
        let d = &self.decoder;
        let batch = self.z.dims()[0];
        let device = self.z.device();
        let mut rng = host_rng(&device);
        let (mut state, z_gates) = d.start(&self.z);
        let mut previous = vec![CharVocab::BOS; batch];
        let mut sequences: Vec<Vec<i64>> = vec![Vec::new(); batch];
        let mut done = vec![false; batch];
        let vocab = d.vocab_size;
        for _ in 0..=d.max_chars {
            let tokens =
                Tensor::<2, Int>::from_data(TensorData::new(previous.clone(), [batch, 1]), &device);
            let input = embed_steps(&d.embedding, tokens);
            (_, state) = d.lstm.forward(&input, Some(z_gates.clone()), state);
            let probs = activation::softmax(d.output.run(state.hidden.clone()), 1)
                .try_into_vec_as::<f32>()
                .unwrap_or_default();
            for (row, p) in probs.chunks(vocab).enumerate() {
                if done[row] {
                    continue;
                }
                let id = next_char(p, greedy, &mut rng);
                if id == CharVocab::EOS || sequences[row].len() == d.max_chars {
                    done[row] = true;
                } else {
                    sequences[row].push(id);
                }
                previous[row] = id;
            }
            if done.iter().all(|&x| x) {
                break;
            }
        }
        // Padding and begin ids are never emitted, and the end marker ends a row.
        TokenBatch::build(&sequences, &device)
    }
}

impl Distribution for SequenceLikelihood {
    type Value = TokenBatch;

    /// `Σ_t mask_t · log p(x_t | x_{<t}, z)`: the log-probability of each row's characters
    /// and end marker, `[batch]`.
    fn log_prob(&self, x: &TokenBatch) -> Tensor<1> {
        let d = &self.decoder;
        let batch = x.batch_size();
        let steps = x.steps();
        let (state, z_gates) = d.start(&self.z);
        let embedded = embed_steps(&d.embedding, x.inputs());
        let (hidden, _) = d.lstm.forward(&embedded, Some(z_gates), state);
        let hidden: Tensor<3> = Tensor::stack(hidden, 1);
        let log_p = activation::log_softmax(d.output.run(hidden), 2);
        let targets = x.targets().reshape([batch, steps, 1]);
        let picked = log_p.gather(2, targets).reshape([batch, steps]);
        (picked * x.mask()).sum_dim(1).reshape([batch])
    }

    /// A sentence per row, sampled character by character.
    fn sample(&self) -> TokenBatch {
        self.generate(false)
    }

    /// The greedy decoding (most probable character at each step): the usual stand-in for
    /// the mode of a sequence model, which has no tractable mean.
    fn mean(&self) -> TokenBatch {
        self.generate(true)
    }

    fn batch_size(&self) -> usize {
        self.z.dims()[0]
    }

    fn repeat_rows(&self, k: usize) -> Self {
        Self {
            decoder: self.decoder.clone(),
            z: self.z.repeat_rows(k),
        }
    }
}
