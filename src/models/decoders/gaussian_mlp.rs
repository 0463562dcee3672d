//! An MLP decoder with a diagonal Normal likelihood, for continuous data.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use crate::distributions::DiagNormal;
use crate::error::ensure_positive;
use crate::nn::{Activation, Mlp, MlpConfig};
use crate::traits::Decoder;

/// How the decoder's variance `σ²` is set.
#[derive(Config, Debug, Copy, PartialEq)]
pub enum DecoderVariance {
    /// The same fixed `σ²` for every dimension.
    Fixed(f64),
    /// One learned `log σ²` per output dimension, starting from the given `σ²`.
    Learned(f64),
}

/// Configuration of a [`GaussianMlpDecoder`]: `p(x | z) = N(f(z), diag(σ²))`.
#[derive(Config, Debug)]
pub struct GaussianMlpDecoderConfig {
    /// `[latent_dim, hidden…, data_dim]`.
    pub sizes: Vec<usize>,
    /// The variance: fixed or learned.
    #[config(default = "DecoderVariance::Learned(1.0)")]
    pub variance: DecoderVariance,
    /// Activation between layers.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
}

impl GaussianMlpDecoderConfig {
    /// Checks the sizes and that the variance is positive.
    pub fn validate(&self) -> crate::Result<()> {
        MlpConfig::new(self.sizes.clone()).validate()?;
        match self.variance {
            DecoderVariance::Fixed(v) | DecoderVariance::Learned(v) => {
                ensure_positive("variance", v)
            }
        }
    }

    /// Builds the decoder.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) as [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> crate::Result<GaussianMlpDecoder> {
        self.validate()?;
        let mlp = MlpConfig::new(self.sizes.clone())
            .with_activation(self.activation)
            .init(device)?;
        let d_out = mlp.d_output();
        let (learned_log_var, fixed_log_var) = match self.variance {
            DecoderVariance::Fixed(v) => (None, v.ln()),
            DecoderVariance::Learned(v) => (
                Some(Param::from_tensor(Tensor::full([d_out], v.ln(), device))),
                0.0,
            ),
        };
        Ok(GaussianMlpDecoder {
            mlp,
            learned_log_var,
            fixed_log_var,
        })
    }
}

/// A decoder with a diagonal Normal likelihood `p(x | z) = N(f(z), diag(σ²))`; `σ²` fixed
/// or learned per dimension (see [`DecoderVariance`]).
#[derive(Module, Debug)]
pub struct GaussianMlpDecoder {
    /// The mean network `f`.
    pub mlp: Mlp,
    /// Learned `log σ²` per output dimension, if the variance is learned.
    pub learned_log_var: Option<Param<Tensor<1>>>,
    /// `log σ²` when the variance is fixed.
    pub fixed_log_var: f64,
}

impl GaussianMlpDecoder {
    /// Wraps a mean network with a fixed variance `σ² = exp(log_var)`.
    pub fn with_fixed_log_var(mlp: Mlp, log_var: f64) -> Self {
        Self {
            mlp,
            learned_log_var: None,
            fixed_log_var: log_var,
        }
    }
}

impl Decoder for GaussianMlpDecoder {
    type Latent = Tensor<2>;
    type Likelihood = DiagNormal<2>;

    /// # Shapes
    /// - `z`: `[batch, latent_dim]`
    /// - output: `[batch, d_output]`
    fn decode(&self, z: &Tensor<2>) -> DiagNormal<2> {
        let mean = self.mlp.forward(z.clone());
        let [batch, d] = mean.dims();
        let log_var = match &self.learned_log_var {
            Some(p) => p.val().reshape([1, d]).expand([batch, d]),
            None => mean.full_like(self.fixed_log_var),
        };
        DiagNormal::new(mean, log_var).expect("log_var is built with the mean's shape")
    }
}
