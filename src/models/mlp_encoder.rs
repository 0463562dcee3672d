//! Encoders and decoders for flat data: an MLP trunk followed by any posterior head, and the
//! MLP Bernoulli decoder.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::Vae;
use crate::distributions::Bernoulli;
use crate::error::ensure_nonzero;
use crate::nn::{Activation, Mlp, MlpConfig};
use crate::traits::{Decoder, Encoder, PosteriorHead};
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

    fn encode(&self, x: &Tensor<2>) -> H::Posterior {
        self.head.posterior(self.features(x))
    }

    fn check_input(&self, x: &Tensor<2>) -> Result<()> {
        check_flat_input("MlpEncoder input", x, self.d_input())
    }
}

/// Checks that a flat batch is `[batch >= 1, width]`.
pub(crate) fn check_flat_input(context: &str, x: &Tensor<2>, width: usize) -> Result<()> {
    let [batch, d] = x.dims();
    if d != width || batch == 0 {
        return Err(Error::shape(
            context.to_string(),
            format!("[batch >= 1, {width}]"),
            x.dims(),
        ));
    }
    Ok(())
}

/// Checks the sizes every MLP VAE config shares: a non-zero data width, latent width and
/// hidden widths.
pub(crate) fn check_mlp_sizes(input_dim: usize, latent_dim: usize, hidden: &[usize]) -> Result<()> {
    ensure_nonzero("input_dim", input_dim)?;
    ensure_nonzero("latent_dim", latent_dim)?;
    for &h in hidden {
        ensure_nonzero("hidden", h)?;
    }
    Ok(())
}

/// An MLP VAE for binary data: the trunk `input_dim → hidden…`, the head that
/// `make_head(trunk width)` builds, and the Bernoulli decoder
/// `latent_dim → hidden (reversed)… → input_dim`.
pub(crate) fn bernoulli_mlp_vae<H: PosteriorHead, P>(
    input_dim: usize,
    hidden: &[usize],
    activation: Activation,
    latent_dim: usize,
    make_head: impl FnOnce(usize) -> Result<H>,
    prior: P,
    device: &Device,
) -> Result<Vae<MlpEncoder<H>, BernoulliMlpDecoder, P>> {
    let (trunk, width) = mlp_trunk(input_dim, hidden, activation, device)?;
    let encoder = MlpEncoder::new(trunk, make_head(width)?)?;
    let decoder = BernoulliMlpDecoder::new(latent_dim, hidden, input_dim, activation, device)?;
    Ok(Vae::new(encoder, decoder, prior))
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

/// An MLP decoder whose output are Bernoulli logits: `p(x | z) = Bernoulli(sigmoid(f(z)))`.
#[derive(Module, Debug)]
pub struct BernoulliMlpDecoder {
    /// Maps `[batch, latent_dim]` to `[batch, d_out]` logits.
    pub mlp: Mlp,
}

impl BernoulliMlpDecoder {
    /// `latent_dim → hidden (reversed)… → output_dim` logits.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero size.
    pub fn new(
        latent_dim: usize,
        encoder_hidden: &[usize],
        output_dim: usize,
        activation: Activation,
        device: &Device,
    ) -> Result<Self> {
        let mut sizes = vec![latent_dim];
        sizes.extend(encoder_hidden.iter().rev());
        sizes.push(output_dim);
        Ok(Self {
            mlp: MlpConfig::new(sizes)
                .with_activation(activation)
                .init(device)?,
        })
    }
}

impl Decoder for BernoulliMlpDecoder {
    type Latent = Tensor<2>;
    type Likelihood = Bernoulli<2>;

    fn decode(&self, z: &Tensor<2>) -> Bernoulli<2> {
        Bernoulli::new(self.mlp.forward(z.clone()))
    }
}
