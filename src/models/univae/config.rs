//! The configuration of a [`UniVae`].

use burn::config::Config;

use crate::error::{ensure_nonzero, ensure_positive};
use crate::models::checks::check_sphere_dim;

/// Configuration of a [`UniVae`](super::UniVae): one pre-norm Transformer of `layers` layers over
/// `[x ; x]`, whose top `latent_layers` layers read the sentence through one spherical
/// latent each (`latent_dim` dimensions, fixed concentration `kappa`).
///
/// The defaults are a small character-level model that trains on 2 CPU cores: width 96,
/// 4 heads, feed-forward width 384, 4 layers of which the top 2 are latent layers, latents
/// on `S^31` with `κ = 150` (a KL of 26.3 nats per layer against the uniform prior), no
/// dropout.
///
/// ```
/// use elbo::models::univae::UniVaeConfig;
///
/// let config = UniVaeConfig::new(40).with_d_model(16).with_d_ff(32).with_max_chars(12);
/// let model = config.init(&elbo::device::default_device())?;
/// assert_eq!(model.latent_layers(), 2);
/// assert!(UniVaeConfig::new(40).with_latent_layers(5).validate().is_err()); // > layers
/// assert!(UniVaeConfig::new(40).with_n_heads(5).validate().is_err()); // 96 % 5 != 0
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Config, Debug)]
pub struct UniVaeConfig {
    /// Number of token ids, the four reserved ones of
    /// [`CharVocab`](crate::data::CharVocab) included.
    pub vocab_size: usize,
    /// Longest sentence, in characters (the model has `max_chars + 2` positions).
    #[config(default = 64)]
    pub max_chars: usize,
    /// Width of the Transformer.
    #[config(default = 96)]
    pub d_model: usize,
    /// Attention heads per layer (must divide `d_model`).
    #[config(default = 4)]
    pub n_heads: usize,
    /// Hidden width of each layer's feed-forward block.
    #[config(default = 384)]
    pub d_ff: usize,
    /// Number of Transformer layers.
    #[config(default = 4)]
    pub layers: usize,
    /// Number `N` of top layers in which the decoder reads a latent (`1 ≤ N ≤ layers`).
    #[config(default = 2)]
    pub latent_layers: usize,
    /// Dimension `d` of each latent (it lives on `S^{d−1}`, `d ≥ 2`).
    #[config(default = 32)]
    pub latent_dim: usize,
    /// The fixed concentration `κ > 0` of every latent's vMF posterior.
    #[config(default = 150.0)]
    pub kappa: f64,
    /// Dropout on the embeddings, attention weights and residual branches during
    /// training. Off by default: on this corpus the short default run fits better without
    /// it, and drawing the masks is a quarter of a CPU training step.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Probability that a decoder input character is replaced by the unknown id during
    /// training (Bowman et al. 2016's word dropout, here on characters): a decoder that
    /// cannot rely on every previous character has to read the latents. Off by default (in
    /// short runs on the fortune sentences it did not help; see `docs/results.md`).
    #[config(default = 0.0)]
    pub token_dropout: f64,
}

impl UniVaeConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming the first bad field.
    pub fn validate(&self) -> crate::Result<()> {
        if self.vocab_size <= crate::data::CharVocab::UNK as usize + 1 {
            return Err(crate::Error::config(
                "vocab_size",
                self.vocab_size,
                "more than the 4 reserved ids (use CharVocab::len())",
            ));
        }
        ensure_nonzero("max_chars", self.max_chars)?;
        ensure_nonzero("d_model", self.d_model)?;
        ensure_nonzero("n_heads", self.n_heads)?;
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(crate::Error::config(
                "n_heads",
                self.n_heads,
                format!("a divisor of d_model = {}", self.d_model),
            ));
        }
        ensure_nonzero("d_ff", self.d_ff)?;
        ensure_nonzero("layers", self.layers)?;
        if self.latent_layers == 0 || self.latent_layers > self.layers {
            return Err(crate::Error::config(
                "latent_layers",
                self.latent_layers,
                format!("between 1 and layers = {}", self.layers),
            ));
        }
        check_sphere_dim(self.latent_dim)?;
        ensure_positive("kappa", self.kappa)?;
        for (name, p) in [
            ("dropout", self.dropout),
            ("token_dropout", self.token_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(crate::Error::config(name, p, "a probability in [0, 1)"));
            }
        }
        Ok(())
    }
}
