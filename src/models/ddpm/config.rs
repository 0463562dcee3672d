//! The configuration of [`Ddpm`](super::Ddpm): the image shape, the schedule, what the
//! denoiser predicts, the reverse variances, the last step's likelihood, the training
//! loss and the U-Net; with the small MNIST preset.

use burn::config::Config;
use serde::{Deserialize, Serialize};

use super::schedule::{BetaSchedule, NoiseSchedule};
use crate::error::ensure_nonzero;
use crate::nn::UNetConfig;

/// What the denoiser predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prediction {
    /// The noise `ε` of `x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε` (Ho et al. 2020).
    Epsilon,
    /// The data `x_0` itself.
    X0,
    /// The velocity `v = √ᾱ_t ε − √(1−ᾱ_t) x_0` (Salimans & Ho 2022).
    V,
}

/// The variance `σ_t²` of the reverse step `p_θ(x_{t−1} | x_t) = N(μ_θ, σ_t² I)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReverseVariance {
    /// `σ_t² = β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)`, the lower bound of Ho et al. sec. 3.2
    /// (`t = 1` uses `β̃_2`, since `β̃_1 = 0`).
    FixedSmall,
    /// `σ_t² = β_t`, the upper bound (`t = 1` uses `β̃_2`, as Ho et al.'s code does).
    FixedLarge,
}

/// The reverse chain's last step, `p(x_0 | x_1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataDecoder {
    /// 8-bit data: the discretised Gaussian of Ho et al. eq. 13 over the 256 levels.
    Discretized,
    /// Continuous data: the Gaussian density `N(x_0; μ_θ(x_1, 1), σ_1²)` in the model's
    /// data space.
    Continuous,
}

/// The training loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum DdpmLoss {
    /// `L_simple = E_{t, ε} ‖target − prediction‖²`, averaged over elements (Ho et al.
    /// eq. 14), with `t` uniform on `1..=T`.
    Simple,
    /// The variational bound itself: `T · L_{t−1}` for one uniform `t` per example (plus
    /// the constant-in-θ `L_T`), in nats per example.
    Vlb,
    /// `L_simple + λ · L_vlb / d` (Nichol & Dhariwal 2021 use λ = 0.001).
    Hybrid {
        /// Weight of the bound term.
        lambda: f64,
    },
}

/// Configuration of a [`Ddpm`](super::Ddpm) with a [`UNet`](crate::nn::UNet) denoiser.
#[derive(Config, Debug)]
pub struct DdpmConfig {
    /// Image channels.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Number of diffusion steps `T`.
    #[config(default = 1000)]
    pub steps: usize,
    /// The β schedule; `None` is Ho et al.'s linear 1e-4 → 0.02, rescaled by 1000/T for
    /// other `T` ([`BetaSchedule::linear_default`]).
    #[config(default = "None")]
    pub schedule: Option<BetaSchedule>,
    /// What the denoiser predicts.
    #[config(default = "Prediction::Epsilon")]
    pub prediction: Prediction,
    /// The reverse variances.
    #[config(default = "ReverseVariance::FixedLarge")]
    pub variance: ReverseVariance,
    /// Clip the predicted `x̂_0` to `[−1, 1]` when forming the reverse mean.
    #[config(default = true)]
    pub clip_x0: bool,
    /// The last reverse step's likelihood.
    #[config(default = "DataDecoder::Discretized")]
    pub decoder: DataDecoder,
    /// The training loss.
    #[config(default = "DdpmLoss::Simple")]
    pub loss: DdpmLoss,
    /// The denoiser.
    #[config(default = "UNetConfig::new(1).with_base_channels(32)")]
    pub unet: UNetConfig,
}

impl DdpmConfig {
    /// The small preset for 28×28 grey images: T = 1000, linear schedule, ε-prediction,
    /// `σ_t² = β_t`, the reference U-Net at base width 32 (about 0.4 M parameters).
    pub fn mnist_small() -> Self {
        Self::new(1, 28, 28)
    }

    /// The noise schedule this config describes.
    ///
    /// # Errors
    /// From [`NoiseSchedule::new`].
    pub fn noise_schedule(&self) -> crate::Result<NoiseSchedule> {
        let kind = self
            .schedule
            .clone()
            .unwrap_or_else(|| BetaSchedule::linear_default(self.steps));
        NoiseSchedule::new(&kind, self.steps)
    }

    /// Checks sizes, the schedule, the loss weight and the U-Net (its channels must be the
    /// images' and the image size divisible as its levels need).
    pub fn validate(&self) -> crate::Result<()> {
        ensure_nonzero("channels", self.channels)?;
        ensure_nonzero("height", self.height)?;
        ensure_nonzero("width", self.width)?;
        self.noise_schedule()?;
        if let DdpmLoss::Hybrid { lambda } = self.loss {
            crate::error::ensure_non_negative("loss.lambda", lambda)?;
        }
        self.unet.validate()?;
        self.unet
            .check_images(self.channels, self.height, self.width)
    }
}
