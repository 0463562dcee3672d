//! A multi-layer perceptron: linear layers with an activation between them.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, activation};

use crate::error::ensure_nonzero;
use crate::kernels::Run;

/// The non-linearity between hidden layers.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `x · sigmoid(x)` (a.k.a. swish).
    Silu,
    /// Gaussian error linear unit.
    Gelu,
    /// `max(x, 0.01·x)`.
    LeakyRelu,
    /// `ln(1 + e^x)`.
    Softplus,
}

impl Activation {
    /// Applies the activation element-wise.
    ///
    /// # Shapes
    /// - `x`: any shape
    /// - output: the same
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => activation::relu(x),
            Activation::Tanh => activation::tanh(x),
            Activation::Silu => activation::silu(x),
            Activation::Gelu => activation::gelu(x),
            Activation::LeakyRelu => activation::leaky_relu(x, 0.01),
            Activation::Softplus => activation::softplus(x, 1.0),
        }
    }
}

/// Configuration of an [`Mlp`]: `sizes = [d_in, h_1, .., h_n, d_out]`.
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Layer widths, input first, output last; at least two entries.
    pub sizes: Vec<usize>,
    /// Activation after every layer but the last.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// Apply the activation after the last layer too (for a trunk that feeds a head).
    #[config(default = false)]
    pub activate_output: bool,
}

impl MlpConfig {
    /// Checks that there are at least two sizes, all non-zero.
    pub fn validate(&self) -> crate::Result<()> {
        if self.sizes.len() < 2 {
            return Err(crate::Error::config(
                "sizes",
                format!("{:?}", self.sizes),
                "at least [d_in, d_out]",
            ));
        }
        for &s in &self.sizes {
            ensure_nonzero("sizes", s)?;
        }
        Ok(())
    }

    /// Builds the network (PyTorch's default initialisation: `U(−1/√fan_in, 1/√fan_in)`).
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> crate::Result<Mlp> {
        self.validate()?;
        let layers = self
            .sizes
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        Ok(Mlp {
            layers,
            activation: self.activation,
            activate_output: self.activate_output,
        })
    }
}

/// A multi-layer perceptron; the last layer has no activation unless `activate_output`.
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::nn::MlpConfig;
///
/// let device = elbo::device::default_device();
/// let mlp = MlpConfig::new(vec![4, 8, 2]).init(&device)?;
/// assert_eq!(mlp.forward(Tensor::zeros([3, 4], &device)).dims(), [3, 2]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Mlp {
    /// The linear layers, input first.
    pub layers: Vec<Linear>,
    /// The activation between layers.
    #[module(skip)]
    pub activation: Activation,
    /// Whether the last layer is followed by the activation too.
    #[module(skip)]
    pub activate_output: bool,
}

impl Mlp {
    /// Runs the network on `[batch, d_in]`, giving `[batch, d_out]`.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - output: `[batch, d_output]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.run(h);
            if i < last || self.activate_output {
                h = self.activation.forward(h);
            }
        }
        h
    }

    /// Input width.
    pub fn d_input(&self) -> usize {
        self.layers[0].weight.dims()[0]
    }

    /// Output width.
    pub fn d_output(&self) -> usize {
        self.layers[self.layers.len() - 1].weight.dims()[1]
    }
}
