//! A long short-term memory layer with fused gates, stepped one time step at a time.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Embedding, Linear, LinearConfig};
use burn::tensor::{Int, Tensor, activation};

use crate::error::ensure_nonzero;
use crate::kernels::Run;

/// Configuration of an [`Lstm`].
#[derive(Config, Debug)]
pub struct LstmConfig {
    /// Width of the input at each step.
    pub d_input: usize,
    /// Width of the hidden and cell states.
    pub d_hidden: usize,
    /// Initial bias of the forget gate (1 is the usual choice: remember by default;
    /// Jozefowicz et al. 2015).
    #[config(default = 1.0)]
    pub forget_bias: f64,
}

impl LstmConfig {
    /// Builds the layer.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for a zero width or a
    /// non-finite forget bias.
    pub fn init(&self, device: &burn::tensor::Device) -> crate::Result<Lstm> {
        ensure_nonzero("d_input", self.d_input)?;
        ensure_nonzero("d_hidden", self.d_hidden)?;
        if !self.forget_bias.is_finite() {
            return Err(crate::Error::config(
                "forget_bias",
                self.forget_bias,
                "a finite number",
            ));
        }
        let h = self.d_hidden;
        let mut input = LinearConfig::new(self.d_input, 4 * h).init(device);
        // Gate order i, f, g, o (as PyTorch): the forget gate's bias is columns h..2h.
        if let Some(bias) = input.bias.take() {
            let b = bias.val();
            let forget = Tensor::full([h], self.forget_bias, device);
            // Detached: on an autodiff device the edited bias must be a fresh leaf.
            let b = b.slice_assign(h..2 * h, forget).detach();
            input.bias = Some(Param::from_tensor(b));
        }
        let hidden = LinearConfig::new(h, 4 * h).with_bias(false).init(device);
        Ok(Lstm {
            input,
            hidden,
            d_hidden: h,
        })
    }
}

/// The state `(h, c)` of a batch of LSTMs: both `[batch, d_hidden]`.
#[derive(Clone, Debug)]
pub struct LstmState {
    /// Hidden state `h_t` (the output).
    pub hidden: Tensor<2>,
    /// Cell state `c_t`.
    pub cell: Tensor<2>,
}

/// An LSTM layer (Hochreiter & Schmidhuber 1997, with a forget gate).
///
/// # Formula
/// ```text
/// [i, f, g, o] = W x_t + b + U h_{t−1}          (one [batch, 4H] product per step)
/// c_t = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(g)
/// h_t = σ(o) ⊙ tanh(c_t)
/// ```
/// The gates share one input and one recurrent matrix (columns in the order i, f, g, o,
/// as PyTorch's `nn.LSTM`), so a step is one matrix product plus element-wise work.
/// [`step`](Lstm::step) also takes an extra `[batch, 4H]` term added to the gates, for an
/// input that is the same at every step (a decoder's latent `z`): project it once with
/// its own linear map instead of concatenating it at every step.
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::nn::LstmConfig;
///
/// let device = elbo::device::default_device();
/// let lstm = LstmConfig::new(3, 5).init(&device)?;
/// let inputs = vec![Tensor::<2>::ones([2, 3], &device); 4];
/// let (outputs, state) = lstm.forward(&inputs, None, lstm.zero_state(2, &device));
/// assert_eq!(outputs.len(), 4);
/// assert_eq!(state.hidden.dims(), [2, 5]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Lstm {
    /// `x_t → W x_t + b`, `[d_input, 4H]`.
    pub input: Linear,
    /// `h_{t−1} → U h_{t−1}`, `[H, 4H]`, no bias.
    pub hidden: Linear,
    /// `H`.
    #[module(skip)]
    pub d_hidden: usize,
}

impl Lstm {
    /// The input width.
    pub fn d_input(&self) -> usize {
        self.input.weight.dims()[0]
    }

    /// The all-zero state for a batch of `batch` sequences.
    pub fn zero_state(&self, batch: usize, device: &burn::tensor::Device) -> LstmState {
        let zeros = Tensor::zeros([batch, self.d_hidden], device);
        LstmState {
            hidden: zeros.clone(),
            cell: zeros,
        }
    }

    /// One step from pre-computed input gates `W x_t + b (+ extra)`, `[batch, 4H]`.
    ///
    /// `tanh` is computed as `tanh(x) = 2 σ(2x) − 1`, so the four gates take one sigmoid
    /// pass over `[batch, 4H]`: on the CPU a sigmoid is one `exp`, while `tanh` costs
    /// about three times as much (it was a quarter of the text example's profile).
    pub fn step(&self, input_gates: Tensor<2>, state: LstmState) -> LstmState {
        let scale = self.gate_scale(&input_gates.device());
        self.step_scaled(input_gates, state, &scale)
    }

    /// `[1, 4H]`: 2 on the columns of `g`, 1 elsewhere, so that `σ(scale ⊙ gates)` holds
    /// `σ(i), σ(f), σ(2g), σ(o)`. Built once per sequence, not per step.
    fn gate_scale(&self, device: &burn::tensor::Device) -> Tensor<2> {
        let h = self.d_hidden;
        let scale: Vec<f32> = (0..4 * h)
            .map(|j| if j / h == 2 { 2.0 } else { 1.0 })
            .collect();
        Tensor::<1>::from_floats(scale.as_slice(), device).reshape([1, 4 * h])
    }

    fn step_scaled(
        &self,
        input_gates: Tensor<2>,
        state: LstmState,
        scale: &Tensor<2>,
    ) -> LstmState {
        let h = self.d_hidden;
        let gates = input_gates + self.hidden.run(state.hidden);
        let s = activation::sigmoid(gates * scale.clone());
        let i = s.clone().narrow(1, 0, h);
        let f = s.clone().narrow(1, h, h);
        let g = s
            .clone()
            .narrow(1, 2 * h, h)
            .mul_scalar(2.0)
            .sub_scalar(1.0);
        let o = s.narrow(1, 3 * h, h);
        let cell = f * state.cell + i * g;
        let tanh_cell = activation::sigmoid(cell.clone().mul_scalar(2.0))
            .mul_scalar(2.0)
            .sub_scalar(1.0);
        let hidden = o * tanh_cell;
        LstmState { hidden, cell }
    }

    /// Runs over `inputs` (one `[batch, d_input]` tensor per step) from `state` (see
    /// [`zero_state`](Lstm::zero_state)), adding `extra_gates` (`[batch, 4H]`) at every
    /// step if given. Returns the hidden state after every step and the final state.
    ///
    /// # Shapes
    /// - `inputs`: `steps` tensors `[batch, d_input]`
    /// - `extra_gates`: `[batch, 4·hidden]`
    /// - `state`: `[batch, hidden]` each
    /// - output: `steps` tensors `[batch, hidden]`, and the final state
    pub fn forward(
        &self,
        inputs: &[Tensor<2>],
        extra_gates: Option<Tensor<2>>,
        state: LstmState,
    ) -> (Vec<Tensor<2>>, LstmState) {
        let mut outputs = Vec::with_capacity(inputs.len());
        let mut state = state;
        let scale = self.gate_scale(&state.hidden.device());
        for x in inputs {
            let mut gates = self.input.run(x.clone());
            if let Some(extra) = &extra_gates {
                gates = gates + extra.clone();
            }
            state = self.step_scaled(gates, state, &scale);
            outputs.push(state.hidden.clone());
        }
        (outputs, state)
    }
}

/// The embedding of each column of `tokens` (`[batch, steps]`), one `[batch, d]` tensor per
/// step: what an [`Lstm`] reads. Looked up column by column, so the backward pass of each
/// step touches only the `[vocab, d]` table, never a `[batch, steps, d]` slice.
pub(crate) fn embed_steps(embedding: &Embedding, tokens: Tensor<2, Int>) -> Vec<Tensor<2>> {
    let [batch, steps] = tokens.dims();
    let width = embedding.weight.dims()[1];
    (0..steps)
        .map(|t| {
            embedding
                .forward(tokens.clone().narrow(1, t, 1))
                .reshape([batch, width])
        })
        .collect()
}
