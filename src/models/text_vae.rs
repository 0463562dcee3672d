//! Sentence VAEs: an LSTM encoder with any posterior head, and an LSTM decoder fed the
//! latent at every step (Bowman et al. 2016), the setting in which the KL vanishes.

use burn::config::Config;
use burn::tensor::Device;

use super::{
    BnGaussianHead, BnScale, GaussianHead, LstmDecoder, LstmEncoder, PowerSphericalHead, Vae,
    VmfHead, VmfKappa,
};
use crate::distributions::{StdNormal, UniformSphere};
use crate::error::ensure_nonzero;
use crate::traits::PosteriorHead;

/// A sentence VAE with posterior head `H` and prior `P`.
pub type TextVae<H, P> = Vae<LstmEncoder<H>, LstmDecoder, P>;

/// Sizes of a sentence VAE. The head (and with it the prior) is chosen by the method that
/// builds the model: [`gaussian`](Self::gaussian), [`bn`](Self::bn), [`vmf`](Self::vmf),
/// [`power_spherical`](Self::power_spherical), or [`with_head`](Self::with_head) for any
/// other [`PosteriorHead`].
///
/// ```
/// use elbo::LatentVariableModel;
/// use elbo::data::TokenBatch;
/// use elbo::models::{TextVaeConfig, VmfKappa};
///
/// let device = elbo::device::default_device();
/// let config = TextVaeConfig::new(12).with_latent_dim(4).with_embedding(8)
///     .with_encoder_hidden(16).with_decoder_hidden(16);
/// let vae = config.vmf(VmfKappa::Fixed(10.0), &device)?;
/// let x = TokenBatch::new(&[vec![4, 5, 6], vec![11]], &device)?;
/// assert_eq!(vae.log_importance_weights(&x, 3)?.dims(), [2, 3]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Config, Debug)]
pub struct TextVaeConfig {
    /// Number of token ids ([`CharVocab::len`](crate::data::CharVocab::len)).
    pub vocab_size: usize,
    /// Latent dimension (for spherical heads, the ambient `d` of `S^{d−1}`).
    #[config(default = 32)]
    pub latent_dim: usize,
    /// Width of the character embeddings (encoder and decoder each have their own).
    #[config(default = 64)]
    pub embedding: usize,
    /// Width of the encoder LSTM.
    #[config(default = 128)]
    pub encoder_hidden: usize,
    /// Width of the decoder LSTM.
    #[config(default = 256)]
    pub decoder_hidden: usize,
    /// Longest sentence that sampling produces, in characters.
    #[config(default = 64)]
    pub max_chars: usize,
    /// The BN-VAE heads' batch-norm `ε` (see [`bn`](Self::bn)).
    #[config(default = 1e-12)]
    pub bn_epsilon: f64,
}

impl TextVaeConfig {
    /// Checks that every size is non-zero.
    pub fn validate(&self) -> crate::Result<()> {
        ensure_nonzero("vocab_size", self.vocab_size)?;
        ensure_nonzero("latent_dim", self.latent_dim)?;
        ensure_nonzero("embedding", self.embedding)?;
        ensure_nonzero("encoder_hidden", self.encoder_hidden)?;
        ensure_nonzero("decoder_hidden", self.decoder_hidden)?;
        ensure_nonzero("max_chars", self.max_chars)
    }

    /// The model with any head and prior.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) as [`validate`](Self::validate); [`Error::ShapeMismatch`](crate::Error::ShapeMismatch)
    /// if the head does not read `encoder_hidden` features.
    pub fn with_head<H: PosteriorHead, P>(
        &self,
        head: H,
        prior: P,
        device: &Device,
    ) -> crate::Result<TextVae<H, P>> {
        self.validate()?;
        let encoder = LstmEncoder::new(
            self.vocab_size,
            self.embedding,
            self.encoder_hidden,
            head,
            device,
        )?;
        let decoder = LstmDecoder::new(
            self.vocab_size,
            self.latent_dim,
            self.embedding,
            self.decoder_hidden,
            self.max_chars,
            device,
        )?;
        Ok(Vae::new(encoder, decoder, prior))
    }

    /// Gaussian posterior, standard-normal prior.
    ///
    /// # Errors
    /// As [`with_head`](Self::with_head).
    pub fn gaussian(&self, device: &Device) -> crate::Result<TextVae<GaussianHead, StdNormal>> {
        self.validate()?;
        let head = GaussianHead::new(self.encoder_hidden, self.latent_dim, device)?;
        self.with_head(head, StdNormal::new(self.latent_dim)?, device)
    }

    /// Batch-normalised Gaussian posterior (BN-VAE), standard-normal prior; BN momentum
    /// 0.1 as burn's `BatchNorm`, ε = [`bn_epsilon`](Self::bn_epsilon) (1e-12 by default;
    /// see [`BnVaeConfig::epsilon`](crate::models::BnVaeConfig::epsilon) for why not burn's
    /// 1e-5).
    ///
    /// # Errors
    /// As [`with_head`](Self::with_head), and for γ ≤ 0, τ outside (0, 1) or `bn_epsilon ≤ 0`.
    pub fn bn(
        &self,
        scale: BnScale,
        device: &Device,
    ) -> crate::Result<TextVae<BnGaussianHead, StdNormal>> {
        self.validate()?;
        let head = BnGaussianHead::new(
            self.encoder_hidden,
            self.latent_dim,
            scale,
            0.1,
            self.bn_epsilon,
            device,
        )?;
        self.with_head(head, StdNormal::new(self.latent_dim)?, device)
    }

    /// von Mises–Fisher posterior, uniform prior on the sphere.
    ///
    /// # Errors
    /// As [`with_head`](Self::with_head), and for `latent_dim < 2` or a fixed κ ≤ 0.
    pub fn vmf(
        &self,
        kappa: VmfKappa,
        device: &Device,
    ) -> crate::Result<TextVae<VmfHead, UniformSphere>> {
        self.validate()?;
        let head = VmfHead::new(self.encoder_hidden, self.latent_dim, kappa, device)?;
        self.with_head(head, UniformSphere::new(self.latent_dim)?, device)
    }

    /// Power Spherical posterior with fixed κ, uniform prior on the sphere.
    ///
    /// # Errors
    /// As [`with_head`](Self::with_head), and for `latent_dim < 2` or κ ≤ 0.
    pub fn power_spherical(
        &self,
        kappa: f64,
        device: &Device,
    ) -> crate::Result<TextVae<PowerSphericalHead, UniformSphere>> {
        self.validate()?;
        let head = PowerSphericalHead::new(self.encoder_hidden, self.latent_dim, kappa, device)?;
        self.with_head(head, UniformSphere::new(self.latent_dim)?, device)
    }
}
