//! The trunk for token sequences: embedding, LSTM, and any posterior head on the last
//! hidden state.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::{Int, Tensor, TensorData};

use crate::data::TokenBatch;
use crate::models::checks::check_token_ids;
use crate::nn::embed_steps;
use crate::nn::{Lstm, LstmConfig};
use crate::traits::{Batch, Encoder, PosteriorHead};
use crate::{Error, Result};

/// Reads `c_1 … c_n EOS` with an LSTM and hands the hidden state after the end marker to a
/// [`PosteriorHead`] (Bowman et al. 2016; the encoder of He et al. 2019 and Zhu et al.
/// 2020).
///
/// Rows are padded to the batch's longest sentence; each row's features are taken at its
/// own last step, so padding never reaches the posterior.
///
/// ```
/// use elbo::Encoder;
/// use elbo::data::TokenBatch;
/// use elbo::models::{GaussianHead, LstmEncoder};
///
/// let device = elbo::device::default_device();
/// let encoder = LstmEncoder::new(10, 4, 8, GaussianHead::new(8, 2, &device)?, &device)?;
/// let x = TokenBatch::new(&[vec![4, 5], vec![9]], &device)?;
/// encoder.check_input(&x)?;
/// assert_eq!(encoder.encode(&x).dims(), [2, 2]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct LstmEncoder<H> {
    /// Token ids → vectors, `[vocab_size, d_embedding]`.
    pub embedding: Embedding,
    /// The recurrent trunk.
    pub lstm: Lstm,
    /// Maps the last hidden state to the posterior.
    pub head: H,
    /// Number of token ids.
    #[module(skip)]
    pub vocab_size: usize,
}

impl<H: PosteriorHead> LstmEncoder<H> {
    /// An encoder over `vocab_size` ids with `d_embedding`-wide embeddings and a
    /// `d_hidden`-wide LSTM.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero size; [`Error::ShapeMismatch`] if the head does
    /// not read `d_hidden` features.
    pub fn new(
        vocab_size: usize,
        d_embedding: usize,
        d_hidden: usize,
        head: H,
        device: &burn::tensor::Device,
    ) -> Result<Self> {
        crate::error::ensure_nonzero("vocab_size", vocab_size)?;
        crate::error::ensure_nonzero("d_embedding", d_embedding)?;
        if head.d_input() != d_hidden {
            return Err(Error::shape(
                "LstmEncoder::new (head input width)",
                format!("the LSTM width {d_hidden}"),
                head.d_input(),
            ));
        }
        Ok(Self {
            embedding: EmbeddingConfig::new(vocab_size, d_embedding).init(device),
            lstm: LstmConfig::new(d_embedding, d_hidden).init(device)?,
            head,
            vocab_size,
        })
    }

    /// The hidden state after each row's end marker, `[batch, d_hidden]`.
    pub fn features(&self, x: &TokenBatch) -> Tensor<2> {
        let batch = x.batch_size();
        let device = x.device();
        let inputs = embed_steps(&self.embedding, x.targets());
        let (outputs, _) = self
            .lstm
            .forward(&inputs, None, self.lstm.zero_state(batch, &device));
        let hidden: Tensor<3> = Tensor::stack(outputs, 1);
        let d = self.lstm.d_hidden;
        let last: Vec<i64> = x
            .lengths()
            .iter()
            .flat_map(|&n| std::iter::repeat_n(n as i64 - 1, d))
            .collect();
        let index = Tensor::<3, Int>::from_data(TensorData::new(last, [batch, 1, d]), &device);
        hidden.gather(1, index).reshape([batch, d])
    }
}

impl<H: PosteriorHead> Encoder for LstmEncoder<H> {
    type Input = TokenBatch;
    type Posterior = H::Posterior;

    /// # Shapes
    /// - `x`: `batch` sentences
    /// - output: a posterior with `batch` rows
    fn encode(&self, x: &TokenBatch) -> H::Posterior {
        self.head.posterior(self.features(x))
    }

    fn check_input(&self, x: &TokenBatch) -> Result<()> {
        check_token_ids("LstmEncoder input", x, self.vocab_size)
    }
}
