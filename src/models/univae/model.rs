//! The UniVAE model: one Transformer that is both the encoder and the decoder.

use burn::module::Module;
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::transformer::{
    TransformerEncoderConfig, TransformerEncoderLayer, TransformerEncoderLayerAutoregressiveCache,
};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData, activation};

use super::config::UniVaeConfig;
use super::latent::LatentSlot;

use crate::data::{CharVocab, TokenBatch, next_char};
use crate::distributions::{UniformSphere, VonMisesFisher, host_rng};
use crate::kernels::Run;
use crate::objective::ElboTerms;
use crate::traits::{Batch, Distribution, KlDivergence, LatentVariableModel, Prior};
use crate::{Error, Result};

/// How the latent layers get their latents in a forward pass.
#[derive(Clone, Debug)]
pub enum Latents {
    /// A draw from each layer's posterior `vMF(μ(h₀), κ)` (training, the ELBO).
    Sample,
    /// Each posterior's mean direction `μ(h₀)` (reconstruction).
    Mean,
    /// Directions given by the caller, one `[batch, latent_dim]` unit tensor per latent
    /// layer, bottom first: decoding from chosen or prior latents. The encoder segment is
    /// then not read by the decoder at all.
    Given(Vec<Tensor<2>>),
}

/// What a pass over `[x ; x]` gives: the decoder's next-character logits and, unless the
/// latents were given, each latent layer's posterior and the latent it used.
#[derive(Clone, Debug)]
pub struct UniVaeOutput {
    /// `[batch, steps, vocab]`: logits of `p(x_t | x_{<t}, z)` at every decoder position.
    pub logits: Tensor<3>,
    /// `q(z_l | x, z_{<l})` per latent layer, bottom first (empty for [`Latents::Given`]).
    pub posteriors: Vec<VonMisesFisher>,
    /// The latent directions the decoder read, per latent layer, bottom first.
    pub z: Vec<Tensor<2>>,
}

/// UniVAE (Su 2021): one Transformer reads the sentence twice, `[x ; x]`, with segment ids
/// 0 and 1. Segment 0 attends bidirectionally within itself (the encoder), segment 1
/// causally within itself (the decoder); in the top `N` layers the decoder may also see the
/// encoder's first position, whose state is replaced at each of those layers by a
/// spherical latent (see [`LatentSlot`] and [`visibility`](super::visibility)). The decoder
/// thus reads the sentence only through `N` small vMF latents, a multi-scale code, and is
/// trained by next-character cross-entropy on segment 1.
///
/// As a [`LatentVariableModel`] its ELBO is `log p(x | z) − Σ_l KL(q(z_l | x, z_{<l}) ‖
/// U(S^{d−1}))`, where each KL is a constant of `κ` and `d` (the concentration is fixed),
/// so the shared likelihood estimator applies unchanged.
///
/// ```
/// use elbo::data::{CharVocab, TokenBatch};
/// use elbo::models::univae::UniVaeConfig;
/// use elbo::LatentVariableModel;
///
/// let device = elbo::device::default_device();
/// let vocab = CharVocab::from_sentences(["hello", "world"]);
/// let config = UniVaeConfig::new(vocab.len()).with_d_model(16).with_d_ff(32).with_max_chars(8);
/// let model = config.init(&device)?;
/// let x = TokenBatch::new(&[vocab.encode("hello"), vocab.encode("low")], &device)?;
/// let terms = model.elbo(&x)?;
/// assert_eq!(terms.kl.len(), 2); // one KL per latent layer
/// let z = model.sample_latents(3, &device);
/// let sentences = model.generate(&z, true)?; // decoded from random latents
/// assert_eq!(sentences.batch_size(), 3);
/// # use elbo::Batch;
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct UniVae {
    /// Character embeddings, `vocab_size → d_model`.
    pub token_embedding: Embedding,
    /// Learned positions within a segment, `max_chars + 2 → d_model`.
    pub position_embedding: Embedding,
    /// Segment 0 (encoder) and 1 (decoder).
    pub segment_embedding: Embedding,
    /// The Transformer's layers (pre-norm), bottom first.
    pub layers: Vec<TransformerEncoderLayer>,
    /// One latent slot per top layer, bottom first.
    pub slots: Vec<LatentSlot>,
    /// The final layer norm before the output.
    pub norm: LayerNorm,
    /// `d_model → vocab_size` logits.
    pub output: Linear,
    /// Dropout on the embeddings.
    pub dropout: Dropout,
    /// Drops decoder input characters (replaced by the unknown id) during training.
    pub token_dropout: Dropout,
    vocab_size: usize,
    max_chars: usize,
    latent_dim: usize,
    kappa: f64,
}

impl UniVae {
    pub(crate) fn new(config: &UniVaeConfig, device: &Device) -> Self {
        let d = config.d_model;
        let layer_config = TransformerEncoderConfig::new(d, config.d_ff, config.n_heads, 1)
            .with_dropout(config.dropout)
            .with_norm_first(true);
        Self {
            token_embedding: EmbeddingConfig::new(config.vocab_size, d).init(device),
            position_embedding: EmbeddingConfig::new(config.max_chars + 2, d).init(device),
            segment_embedding: EmbeddingConfig::new(2, d).init(device),
            layers: (0..config.layers)
                .map(|_| TransformerEncoderLayer::new(&layer_config, device))
                .collect(),
            slots: (0..config.latent_layers)
                .map(|_| LatentSlot::new(d, config.latent_dim, device))
                .collect(),
            norm: LayerNormConfig::new(d).init(device),
            output: LinearConfig::new(d, config.vocab_size).init(device),
            dropout: DropoutConfig::new(config.dropout).init(),
            token_dropout: DropoutConfig::new(config.token_dropout).init(),
            vocab_size: config.vocab_size,
            max_chars: config.max_chars,
            latent_dim: config.latent_dim,
            kappa: config.kappa,
        }
    }

    /// Number of token ids.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Longest sentence the model takes, in characters.
    pub fn max_chars(&self) -> usize {
        self.max_chars
    }

    /// Number `N` of latent layers.
    pub fn latent_layers(&self) -> usize {
        self.slots.len()
    }

    /// Dimension `d` of each latent.
    pub fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    /// The fixed concentration `κ`.
    pub fn kappa(&self) -> f64 {
        self.kappa
    }

    /// The prior of each latent: uniform on `S^{d−1}`.
    pub fn prior(&self) -> UniformSphere {
        UniformSphere::new(self.latent_dim).expect("the config checked latent_dim >= 2")
    }

    /// `n` latents per layer drawn from the uniform prior, bottom first.
    pub fn sample_latents(&self, n: usize, device: &Device) -> Vec<Tensor<2>> {
        let prior = self.prior();
        (0..self.latent_layers())
            .map(|_| prior.sample(n, device))
            .collect()
    }

    /// Checks that `x` fits the model.
    ///
    /// # Errors
    /// [`Error::InvalidData`] for a sentence longer than `max_chars` or an id outside the
    /// vocabulary.
    pub fn check_batch(&self, x: &TokenBatch) -> Result<()> {
        let longest = x.steps() - 1;
        if longest > self.max_chars {
            return Err(Error::InvalidData {
                path: Default::default(),
                reason: format!(
                    "a sentence of {longest} characters is longer than the model's maximum \
                     max_chars = {}; raise UniVaeConfig::max_chars or shorten the sentence",
                    self.max_chars
                ),
            });
        }
        if x.max_id() >= self.vocab_size as i64 {
            return Err(Error::InvalidData {
                path: Default::default(),
                reason: format!(
                    "token id {} is outside the model's vocabulary of {} ids; encode text \
                     with the CharVocab the model was built for",
                    x.max_id(),
                    self.vocab_size
                ),
            });
        }
        Ok(())
    }

    /// One pass over `[x ; x]`: the encoder segment reads `BOS c₁ … c_n EOS`, the decoder
    /// segment `BOS c₁ … c_n` (teacher forcing), and the logits predict `c₁ … c_n EOS`.
    ///
    /// # Errors
    /// As [`check_batch`](Self::check_batch); [`Error::ShapeMismatch`] for given latents of
    /// the wrong number or shape.
    ///
    /// # Shapes
    /// - `x`: `batch` sentences of at most `max_chars` characters
    /// - output: logits `[batch, steps, vocab]` and one `[batch, latent_dim]` latent per latent layer
    pub fn forward(&self, x: &TokenBatch, latents: Latents) -> Result<UniVaeOutput> {
        self.forward_segments(x, x, latents)
    }

    /// The general pass behind [`forward`](Self::forward), with possibly different
    /// sentences in the two segments: `encoder` in segment 0, `decoder` (teacher-forced) in
    /// segment 1. With [`Latents::Given`] the decoder's logits do not depend on `encoder`
    /// at all (the encoder segment is not even run): information flows only through the
    /// latents.
    ///
    /// # Errors
    /// As [`check_batch`](Self::check_batch) for either batch; [`Error::ShapeMismatch`] for
    /// batches of different sizes or given latents of the wrong number or shape.
    pub fn forward_segments(
        &self,
        encoder: &TokenBatch,
        decoder: &TokenBatch,
        latents: Latents,
    ) -> Result<UniVaeOutput> {
        self.check_batch(encoder)?;
        self.check_batch(decoder)?;
        let batch = encoder.batch_size();
        if decoder.batch_size() != batch {
            return Err(Error::shape(
                "UniVae::forward_segments",
                format!("a decoder batch of {batch} rows, as the encoder's"),
                decoder.batch_size(),
            ));
        }
        if let Latents::Given(z) = &latents {
            self.check_latents(z, batch)?;
        }
        let (posteriors, z) = match latents {
            Latents::Given(z) => (Vec::new(), z),
            Latents::Sample => self.encoder_pass(encoder, false),
            Latents::Mean => self.encoder_pass(encoder, true),
        };
        Ok(UniVaeOutput {
            logits: self.decoder_pass(decoder.inputs(), &z),
            posteriors,
            z,
        })
    }

    /// The encoder alone (segment 0 through every layer): each latent layer's posterior
    /// and the latent taken from it (its mean direction if `mean`, else a draw), bottom
    /// first. Later posteriors depend on the earlier latents, as in [`forward`](Self::forward).
    ///
    /// # Errors
    /// As [`check_batch`](Self::check_batch).
    ///
    /// # Shapes
    /// - `x`: `batch` sentences
    /// - output: one posterior and one latent `[batch, latent_dim]` per latent layer
    pub fn encode(
        &self,
        x: &TokenBatch,
        mean: bool,
    ) -> Result<(Vec<VonMisesFisher>, Vec<Tensor<2>>)> {
        self.check_batch(x)?;
        Ok(self.encoder_pass(x, mean))
    }

    /// The decoder alone, reading latents `z` (one `[batch, latent_dim]` unit tensor per
    /// latent layer, bottom first) and decoder inputs `BOS c₁ …` (`[batch, steps]`): the
    /// logits `[batch, steps, vocab]`. The encoder segment is reduced to its first
    /// position, the only one the decoder sees, so this equals the decoder half of
    /// [`forward`](Self::forward) with [`Latents::Given`] at a fraction of the cost.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for latents of the wrong number or shape, or more steps
    /// than the model has positions; [`Error::InvalidData`] for an id outside the vocabulary.
    ///
    /// # Shapes
    /// - `inputs`: `[batch, steps]` ids, `steps ≤ max_chars + 1`
    /// - `z`: one `[batch, latent_dim]` per latent layer
    /// - output: `[batch, steps, vocab]`
    pub fn decode_logits(&self, inputs: Tensor<2, Int>, z: &[Tensor<2>]) -> Result<Tensor<3>> {
        let [batch, steps] = inputs.dims();
        if steps == 0 || steps > self.max_chars + 1 {
            return Err(Error::shape(
                "UniVae::decode_logits",
                format!("between 1 and max_chars + 1 = {} steps", self.max_chars + 1),
                inputs.dims(),
            ));
        }
        let max_id = inputs.clone().max().into_scalar::<i64>();
        let min_id = inputs.clone().min().into_scalar::<i64>();
        if min_id < 0 || max_id >= self.vocab_size as i64 {
            return Err(Error::InvalidData {
                path: Default::default(),
                reason: format!(
                    "token ids between {min_id} and {max_id} do not all lie in the model's \
                     vocabulary 0..{}",
                    self.vocab_size
                ),
            });
        }
        self.check_latents(z, batch)?;
        Ok(self.decoder_pass(inputs, z))
    }

    /// Segment 0 through the layers: attention in both directions among each sentence's
    /// tokens (padding hidden as keys). At latent layer `l` the first position's state `h₀`
    /// gives the posterior `q(z_l | x, z_{<l}) = vMF(normalize(W_down h₀), κ)`; its draw
    /// (or mean direction, if `mean`) `z_l`, mapped back by `W_up`, replaces `h₀` as that
    /// layer's input. The top layer's encoder outputs are never read (the decoder sees
    /// only that layer's input at the first position), so the encoder stops below it.
    ///
    /// The segments never see each other in the lower layers, and in the latent layers the
    /// decoder sees only the replaced first position, so running the two segments as
    /// separate sequences is exactly the one-sequence pass over `[x ; x]` with the masks of
    /// [`visibility`](super::visibility), at half its attention cost.
    fn encoder_pass(&self, x: &TokenBatch, mean: bool) -> (Vec<VonMisesFisher>, Vec<Tensor<2>>) {
        let tokens = x.tokens().clone();
        let [batch, s0] = tokens.dims();
        let d = self.d_model();
        let pad = encoder_padding(x.lengths(), s0, &x.device());
        let first_latent = self.layers.len() - self.slots.len();
        let mut h = self.embed(tokens, 0);
        let (mut posteriors, mut zs) = (Vec::new(), Vec::new());
        for (i, layer) in self.layers.iter().enumerate() {
            if let Some(slot) = i.checked_sub(first_latent).map(|l| &self.slots[l]) {
                let h0 = h.clone().narrow(1, 0, 1).reshape([batch, d]);
                let q = slot.posterior(h0, self.kappa);
                let z = if mean { q.mean_direction() } else { q.sample() };
                let state = slot.state(z.clone()).reshape([batch, 1, d]);
                h = Tensor::cat(vec![state, h.narrow(1, 1, s0 - 1)], 1);
                posteriors.push(q);
                zs.push(z);
            }
            if i + 1 < self.layers.len() {
                h = layer.forward(h, Some(pad.clone()), None);
            }
        }
        (posteriors, zs)
    }

    /// Segment 1 through the layers, each position attending causally to the decoder
    /// inputs `BOS c₁ …` up to itself; at latent layer `l` the state `W_up z_l` is put in
    /// front as the one encoder position the decoder may see (the decoder reads its key and
    /// value; its own output is dropped). Returns the logits `[batch, steps, vocab]`. No
    /// checks: [`decode_logits`](Self::decode_logits) makes them for users; `generate` and
    /// `generate_beam` check the latents once and build the inputs themselves.
    pub(super) fn decoder_pass(&self, inputs: Tensor<2, Int>, z: &[Tensor<2>]) -> Tensor<3> {
        let h = self.decoder_layers(inputs, &self.slot_states(z), None);
        self.logits(h)
    }

    /// Each latent layer's slot state `W_up z_l`, as one position `[batch, 1, d_model]`.
    fn slot_states(&self, z: &[Tensor<2>]) -> Vec<Tensor<3>> {
        let d = self.d_model();
        self.slots
            .iter()
            .zip(z)
            .map(|(slot, z)| {
                let batch = z.dims()[0];
                slot.state(z.clone()).reshape([batch, 1, d])
            })
            .collect()
    }

    /// The layers of [`decoder_pass`](Self::decoder_pass), returning the final states
    /// `[batch, steps, d_model]`. With `caches` (one per layer, kept between calls whose
    /// inputs grow by one position) each layer computes only the newest position and reads
    /// the earlier ones' keys and values from its cache (burn's autoregressive inference):
    /// the same result, without recomputing the prefix at every generated character.
    fn decoder_layers(
        &self,
        inputs: Tensor<2, Int>,
        states: &[Tensor<3>],
        mut caches: Option<&mut [TransformerEncoderLayerAutoregressiveCache]>,
    ) -> Tensor<3> {
        let [batch, steps] = inputs.dims();
        let device = inputs.device();
        let causal = generate_autoregressive_mask(batch, steps, &device);
        let causal_with_slot = generate_autoregressive_mask(batch, steps + 1, &device);
        let first_latent = self.layers.len() - self.slots.len();
        let mut h = self.embed(self.drop_tokens(inputs), 1);
        for (i, layer) in self.layers.iter().enumerate() {
            let slot = i.checked_sub(first_latent).map(|l| states[l].clone());
            let (x, mask) = match &slot {
                None => (h, causal.clone()),
                Some(state) => (
                    Tensor::cat(vec![state.clone(), h], 1),
                    causal_with_slot.clone(),
                ),
            };
            let out = match caches.as_deref_mut() {
                Some(caches) => {
                    layer.forward_autoregressive_inference(x, None, Some(mask), &mut caches[i])
                }
                None => layer.forward(x, None, Some(mask)),
            };
            h = match slot {
                None => out,
                Some(_) => out.narrow(1, 1, steps),
            };
        }
        h
    }

    /// Sentences decoded autoregressively from latents `z` (one `[batch, latent_dim]` unit
    /// tensor per latent layer, bottom first): the most probable character at each step
    /// (`greedy`) or a draw from the softmax, until the end marker or `max_chars`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for latents of the wrong number or shape.
    pub fn generate(&self, z: &[Tensor<2>], greedy: bool) -> Result<TokenBatch> {
        // Checked once here: every step's inputs are ids this loop emitted itself.
        let (batch, device) = self.check_generation_latents(z)?;
        let states = self.slot_states(z);
        let mut caches: Vec<TransformerEncoderLayerAutoregressiveCache> = self
            .layers
            .iter()
            .map(|_| TransformerEncoderLayerAutoregressiveCache::empty())
            .collect();
        let mut rng = host_rng(&device);
        let mut sequences: Vec<Vec<i64>> = vec![Vec::new(); batch];
        let mut done = vec![false; batch];
        let mut prefix: Vec<i64> = vec![CharVocab::BOS; batch];
        let vocab = self.vocab_size;
        for step in 1..=self.max_chars + 1 {
            let inputs = Tensor::<2, Int>::from_data(
                TensorData::new(prefix.clone(), [batch, step]),
                &device,
            );
            let h = self.decoder_layers(inputs, &states, Some(&mut caches));
            let last = self
                .logits(h.narrow(1, step - 1, 1))
                .reshape([batch, vocab]);
            let probs = activation::softmax(last, 1)
                .try_into_vec_as::<f32>()
                .unwrap_or_default();
            let mut next = Vec::with_capacity(batch * (step + 1));
            for (row, p) in probs.chunks(vocab).enumerate() {
                let id = if done[row] {
                    CharVocab::EOS
                } else {
                    next_char(p, greedy, &mut rng)
                };
                if id == CharVocab::EOS || sequences[row].len() == self.max_chars {
                    done[row] = true;
                } else if !done[row] {
                    sequences[row].push(id);
                }
                next.extend_from_slice(&prefix[row * step..(row + 1) * step]);
                next.push(id);
            }
            prefix = next;
            if done.iter().all(|&d| d) {
                break;
            }
        }
        Ok(TokenBatch::build(&sequences, &device))
    }

    /// Greedy reconstructions: each sentence encoded to its mean directions and decoded.
    ///
    /// # Errors
    /// As [`check_batch`](Self::check_batch).
    pub fn reconstruct(&self, x: &TokenBatch) -> Result<TokenBatch> {
        let (_, z) = self.encode(x, true)?;
        self.generate(&z, true)
    }

    /// `Σ_t mask_t · log p(x_t | x_{<t}, z)` per row from decoder logits: the
    /// log-probability of each sentence's characters and end marker, `[batch]`.
    pub fn sentence_log_prob(logits: Tensor<3>, x: &TokenBatch) -> Tensor<1> {
        let [batch, steps, _] = logits.dims();
        let log_p = activation::log_softmax(logits, 2);
        let picked = log_p
            .gather(2, x.targets().reshape([batch, steps, 1]))
            .reshape([batch, steps]);
        (picked * x.mask()).sum_dim(1).reshape([batch])
    }

    /// Token, position and segment embeddings of `tokens` (`[batch, len]`) in `segment`.
    fn embed(&self, tokens: Tensor<2, Int>, segment: i64) -> Tensor<3> {
        let [batch, len] = tokens.dims();
        let device = tokens.device();
        let d = self.d_model();
        let positions = Tensor::<1, Int>::arange(0..len as i64, &device).reshape([1, len]);
        let segments = Tensor::<2, Int>::full([1, 1], segment, &device);
        let h = self.token_embedding.forward(tokens)
            + self
                .position_embedding
                .forward(positions)
                .expand([batch, len, d])
            + self
                .segment_embedding
                .forward(segments)
                .expand([batch, len, d]);
        self.dropout.forward(h)
    }

    /// During training (as [`Dropout`] decides: an autodiff device, the module in training
    /// mode), each decoder input after the begin marker is replaced by
    /// [`CharVocab::UNK`] with probability `token_dropout`; otherwise `inputs` unchanged.
    fn drop_tokens(&self, inputs: Tensor<2, Int>) -> Tensor<2, Int> {
        let [batch, steps] = inputs.dims();
        let device = inputs.device();
        if self.token_dropout.prob == 0.0 || steps < 2 || !device.is_autodiff() {
            return inputs;
        }
        let kept = self
            .token_dropout
            .forward(Tensor::<2>::ones([batch, steps - 1], &device));
        let kept = Tensor::cat(vec![Tensor::ones([batch, 1], &device), kept], 1);
        inputs.mask_fill(kept.equal_elem(0.0), CharVocab::UNK)
    }

    /// The model width.
    fn d_model(&self) -> usize {
        self.norm.gamma.dims()[0]
    }

    fn logits(&self, h: Tensor<3>) -> Tensor<3> {
        self.output.run(self.norm.forward(h))
    }

    /// Checks latents to generate from: the batch size and device they give.
    pub(super) fn check_generation_latents(&self, z: &[Tensor<2>]) -> Result<(usize, Device)> {
        let Some(first) = z.first() else {
            return Err(Error::shape(
                "UniVae generation",
                format!("{} latent tensors", self.latent_layers()),
                0,
            ));
        };
        let batch = first.dims()[0];
        self.check_latents(z, batch)?;
        Ok((batch, first.device()))
    }

    fn check_latents(&self, z: &[Tensor<2>], batch: usize) -> Result<()> {
        let expected = [batch, self.latent_dim];
        if z.len() != self.latent_layers() || z.iter().any(|z| z.dims() != expected) {
            return Err(Error::shape(
                "UniVae latents",
                format!("{} tensors of shape {expected:?}", self.latent_layers()),
                z.iter().map(|z| z.dims()).collect::<Vec<_>>(),
            ));
        }
        Ok(())
    }
}

impl LatentVariableModel for UniVae {
    type Input = TokenBatch;

    fn elbo(&self, x: &TokenBatch) -> Result<ElboTerms> {
        let out = self.forward(x, Latents::Sample)?;
        let prior = self.prior();
        let kl = out.posteriors.iter().map(|q| q.kl(&prior)).collect();
        Ok(ElboTerms {
            reconstruction: Self::sentence_log_prob(out.logits, x),
            kl,
            group_dims: vec![self.latent_dim; self.latent_layers()],
        })
    }

    fn log_importance_weights(&self, x: &TokenBatch, k: usize) -> Result<Tensor<2>> {
        crate::error::ensure_samples(k)?;
        let batch = x.batch_size();
        let xk = x.repeat_rows(k);
        let out = self.forward(&xk, Latents::Sample)?;
        let prior = self.prior();
        let mut log_w = Self::sentence_log_prob(out.logits, &xk);
        for (q, z) in out.posteriors.iter().zip(&out.z) {
            log_w = log_w + prior.log_prob(z) - q.log_prob(z);
        }
        // Row j·B + i is sample j of example i.
        Ok(log_w.reshape([k, batch]).transpose())
    }
}

/// `[batch, s0]`: `true` at the encoder positions past each row's end marker
/// (`j > lengths[i]`), the keys burn's attention must not read.
fn encoder_padding(lengths: &[usize], s0: usize, device: &Device) -> Tensor<2, Bool> {
    let pad: Vec<bool> = lengths
        .iter()
        .flat_map(|&n| (0..s0).map(move |j| j > n))
        .collect();
    Tensor::from_data(TensorData::new(pad, [lengths.len(), s0]), device)
}

impl UniVaeConfig {
    /// Builds the model on `device`.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> crate::Result<UniVae> {
        self.validate()?;
        Ok(UniVae::new(self, device))
    }
}

impl crate::train::ModelConfig for UniVaeConfig {
    type Model = UniVae;

    fn init_model(&self, device: &Device) -> crate::Result<UniVae> {
        self.init(device)
    }
}
