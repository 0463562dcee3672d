//! [`NvaeConfig`]: the sizes of the towers, the latent groups, the output distribution and
//! the regularisers, with presets.

use crate::distributions::PixelLikelihood;
use crate::error::{Error, ensure_non_negative, ensure_nonzero};
use burn::config::Config;

/// Configuration of an [`Nvae`](super::Nvae).
///
/// The latent groups live on `scales` spatial scales: the finest at half the image size,
/// each further one halving again, so height and width must be divisible by `2^scales`.
/// The finest scale has `channels` feature channels, each coarser one twice as many.
/// Each scale holds `groups_per_scale` groups of `latent_channels` latent maps.
#[derive(Config, Debug)]
pub struct NvaeConfig {
    /// Channels of the images (1 for grey).
    pub image_channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Feature channels at the finest latent scale (doubled at each coarser one).
    #[config(default = 32)]
    pub channels: usize,
    /// Number of latent scales.
    #[config(default = 2)]
    pub scales: usize,
    /// Latent groups per scale.
    #[config(default = 2)]
    pub groups_per_scale: usize,
    /// Channels of each latent group's map.
    #[config(default = 8)]
    pub latent_channels: usize,
    /// Residual cells per group, in each tower.
    #[config(default = 1)]
    pub cells_per_group: usize,
    /// Bottom-up cells at full resolution before the first downsampling.
    #[config(default = 1)]
    pub preprocess_cells: usize,
    /// Top-down cells at full resolution after the last upsampling.
    #[config(default = 1)]
    pub postprocess_cells: usize,
    /// Channel expansion of the top-down cells' inverted bottleneck (NVAE uses 6).
    #[config(default = 3)]
    pub expansion: usize,
    /// Pixel distribution.
    #[config(default = "PixelLikelihood::Bernoulli")]
    pub likelihood: PixelLikelihood,
    /// λ of the spectral regulariser `λ Σ_convs σ_max(W)` added to the training loss
    /// (0 turns it off).
    #[config(default = 0.0)]
    pub spectral_reg: f64,
    /// λ of the batch-norm regulariser `λ Σ_BN max_c |γ_c|` (0 turns it off).
    #[config(default = 0.0)]
    pub bn_reg: f64,
    /// Power-iteration steps per training step for the spectral regulariser.
    #[config(default = 1)]
    pub power_iterations: usize,
}

impl NvaeConfig {
    /// The small preset for 28×28 binary images that trains on 2 CPU cores: 16 channels,
    /// 2 scales (14×14, 7×7) × 2 groups of 4 latent channels, no extra cells at full
    /// resolution, Bernoulli output, spectral and batch-norm regularisation at 1e-2.
    pub fn mnist_small() -> Self {
        Self::new(1, 28, 28)
            .with_channels(16)
            .with_latent_channels(4)
            .with_preprocess_cells(0)
            .with_postprocess_cells(0)
            .with_spectral_reg(1e-2)
            .with_bn_reg(1e-2)
    }

    /// A larger preset for 28×28 binary images meant for a GPU: 64 channels, 2 scales × 5
    /// groups of 20 latent channels, 2 cells per group, expansion 6 (close to NVAE's MNIST
    /// model, without its 32×32 padding).
    pub fn mnist_large() -> Self {
        Self::new(1, 28, 28)
            .with_channels(64)
            .with_groups_per_scale(5)
            .with_latent_channels(20)
            .with_cells_per_group(2)
            .with_preprocess_cells(2)
            .with_postprocess_cells(2)
            .with_expansion(6)
            .with_spectral_reg(1e-2)
            .with_bn_reg(1e-2)
    }

    /// Checks every size and coefficient (NaN-proof), including that height and width are
    /// divisible by `2^scales`.
    pub fn validate(&self) -> crate::Result<()> {
        ensure_nonzero("image_channels", self.image_channels)?;
        ensure_nonzero("height", self.height)?;
        ensure_nonzero("width", self.width)?;
        ensure_nonzero("channels", self.channels)?;
        ensure_nonzero("scales", self.scales)?;
        ensure_nonzero("groups_per_scale", self.groups_per_scale)?;
        ensure_nonzero("latent_channels", self.latent_channels)?;
        ensure_nonzero("expansion", self.expansion)?;
        ensure_nonzero("power_iterations", self.power_iterations)?;
        ensure_non_negative("spectral_reg", self.spectral_reg)?;
        ensure_non_negative("bn_reg", self.bn_reg)?;
        if self.scales > 8 {
            return Err(Error::config("scales", self.scales, "at most 8"));
        }
        let factor = 1usize << self.scales;
        for (field, size) in [("height", self.height), ("width", self.width)] {
            if !size.is_multiple_of(factor) {
                return Err(Error::config(
                    field,
                    size,
                    format!(
                        "a multiple of 2^scales = {factor} (each of the {} scales halves the \
                         image; pad the images or use fewer scales)",
                        self.scales
                    ),
                ));
            }
        }
        self.likelihood.validate()
    }

    /// Number of latent groups `L = scales · groups_per_scale`.
    pub fn groups(&self) -> usize {
        self.scales * self.groups_per_scale
    }

    /// Feature channels at scale `s` (0 = finest): `channels · 2^s`.
    pub fn channels_at(&self, scale: usize) -> usize {
        self.channels << scale
    }

    /// `(height, width)` of the maps at scale `s` (0 = finest, half the image size).
    pub fn size_at(&self, scale: usize) -> (usize, usize) {
        (self.height >> (scale + 1), self.width >> (scale + 1))
    }

    /// Shape `[Z, h, w]` of top-down group `l` (0 = the coarsest, sampled first).
    pub fn group_shape(&self, group: usize) -> [usize; 3] {
        let scale = self.scales - 1 - group / self.groups_per_scale;
        let (h, w) = self.size_at(scale);
        [self.latent_channels, h, w]
    }

    /// Output channels of the image head for the chosen likelihood.
    pub fn output_channels(&self) -> usize {
        self.likelihood.output_channels(self.image_channels)
    }
}
