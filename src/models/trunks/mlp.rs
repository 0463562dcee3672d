//! The MLP trunk for flat data `[batch, d_in]`, followed by any posterior head.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::error::ensure_nonzero;
use crate::models::checks::check_flat_input;
use crate::nn::{Activation, Mlp, MlpConfig};
use crate::traits::{Encoder, PosteriorHead};
use crate::{Error, Result};

/// An encoder for flat data `[batch, d_in]`: an optional MLP trunk (activation after every
/// layer) and a [`PosteriorHead`].
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::Encoder;
/// use elbo::models::{GaussianHead, MlpEncoder, mlp_trunk};
/// use elbo::nn::Activation;
///
/// let device = elbo::device::default_device();
/// let (trunk, width) = mlp_trunk(6, &[16], Activation::Relu, &device)?;
/// let encoder = MlpEncoder::new(trunk, GaussianHead::new(width, 2, &device)?)?;
/// let q = encoder.encode(&Tensor::<2>::ones([3, 6], &device));
/// assert_eq!(q.dims(), [3, 2]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct MlpEncoder<H> {
    /// The feature extractor; `None` feeds the data to the head directly.
    pub trunk: Option<Mlp>,
    /// Maps features to the posterior.
    pub head: H,
}

impl<H: PosteriorHead> MlpEncoder<H> {
    /// Joins a trunk and a head.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the trunk's output width is not the head's input width.
    pub fn new(trunk: Option<Mlp>, head: H) -> Result<Self> {
        if let Some(t) = &trunk
            && t.d_output() != head.d_input()
        {
            return Err(Error::shape(
                "MlpEncoder::new (trunk output width)",
                format!("the head's input width {}", head.d_input()),
                t.d_output(),
            ));
        }
        Ok(Self { trunk, head })
    }

    /// The data width it takes.
    pub fn d_input(&self) -> usize {
        self.trunk
            .as_ref()
            .map_or(self.head.d_input(), Mlp::d_input)
    }

    /// The trunk's features of `x` (what the head reads).
    pub fn features(&self, x: &Tensor<2>) -> Tensor<2> {
        match &self.trunk {
            Some(trunk) => trunk.forward(x.clone()),
            None => x.clone(),
        }
    }
}

impl<H: PosteriorHead> Encoder for MlpEncoder<H> {
    type Input = Tensor<2>;
    type Posterior = H::Posterior;

    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - output: a posterior with `batch` rows
    fn encode(&self, x: &Tensor<2>) -> H::Posterior {
        self.head.posterior(self.features(x))
    }

    fn check_input(&self, x: &Tensor<2>) -> Result<()> {
        check_flat_input("MlpEncoder input", x, self.d_input())
    }
}

/// An MLP trunk `d_in → hidden…` with the activation after every layer, and the width of
/// its features; `(None, d_in)` when `hidden` is empty.
///
/// # Errors
/// [`Error::InvalidConfig`] for a zero size.
pub fn mlp_trunk(
    input_dim: usize,
    hidden: &[usize],
    activation: Activation,
    device: &Device,
) -> Result<(Option<Mlp>, usize)> {
    ensure_nonzero("input_dim", input_dim)?;
    if hidden.is_empty() {
        return Ok((None, input_dim));
    }
    let mut sizes = vec![input_dim];
    sizes.extend(hidden);
    let mlp = MlpConfig::new(sizes)
        .with_activation(activation)
        .with_activate_output(true)
        .init(device)?;
    let width = mlp.d_output();
    Ok((Some(mlp), width))
}
