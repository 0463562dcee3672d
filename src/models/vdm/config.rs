//! The configuration of [`Vdm`](super::Vdm): the image shape, how the data are read and
//! decoded, continuous or discrete time, the schedule, the time sampler and the U-Net.

use burn::config::Config;
use serde::{Deserialize, Serialize};

use super::schedule::GammaScheduleConfig;
use crate::error::ensure_nonzero;
use crate::nn::UNetConfig;

/// What the data are, which fixes the reconstruction term `p(x | z_0)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VdmData {
    /// 8-bit images given in `[0, 1]` (levels `k/255`): level `k` is read as the bin
    /// centre `2(k + ½)/256 − 1`, and `p(x | z_0)` is VDM's factorised categorical over the
    /// 256 levels, `p(k) ∝ exp(−½ (z_0/α_0 − x_k)² / e^{γ_0})`.
    EightBit,
    /// Continuous data, used as they are, with the Gaussian `p(x | z_0) = N(z_0/α_0, e^{γ_0})`.
    Continuous,
}

/// Continuous or discrete time, which fixes the diffusion loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiffusionTime {
    /// `T → ∞`: `L_∞ = ½ E_{t∼U(0,1)} [γ'(t) ‖ε − ε̂(z_t; t)‖²]` (VDM eq. 17).
    Continuous,
    /// `T` steps: `L_T = ½ T E_{i∼U{1..T}} [(e^{γ(t_i) − γ(t_{i−1})} − 1) ‖ε − ε̂(z_{t_i}; t_i)‖²]`
    /// with `t_i = i/T` (VDM eq. 14).
    Discrete {
        /// The number of steps `T ≥ 1`.
        steps: usize,
    },
}

/// What a learned schedule's parameters are trained on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScheduleGradient {
    /// The bound itself, like every other parameter.
    Bound,
    /// The endpoints `γ(0)`, `γ(1)` on the bound; the shape between them on the squared
    /// diffusion loss, `2 L ∂L/∂η` per example (VDM §5.1): for fixed endpoints the expected
    /// diffusion loss does not depend on the shape (eq. 20), so this lowers its variance
    /// without changing what is estimated. (The squared loss's gradient on the endpoints
    /// would trade the bound for a smaller loss: a first run that sent it there drove
    /// `γ(1)` down, and the prior term from 2 to 26 nats, in 20 epochs.)
    Variance,
}

/// Configuration of a [`Vdm`](super::Vdm) with a [`UNet`](crate::nn::UNet) denoiser.
#[derive(Config, Debug)]
pub struct VdmConfig {
    /// Image channels.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// What the data are.
    #[config(default = "VdmData::EightBit")]
    pub data: VdmData,
    /// Continuous or discrete time.
    #[config(default = "DiffusionTime::Continuous")]
    pub time: DiffusionTime,
    /// The noise schedule `γ(t)`.
    #[config(default = "GammaScheduleConfig::new()")]
    pub schedule: GammaScheduleConfig,
    /// What a learned schedule is trained on (no effect on a fixed one).
    #[config(default = "ScheduleGradient::Variance")]
    pub schedule_gradient: ScheduleGradient,
    /// Draw the batch's times as one uniform offset plus `i/B` (VDM's low-discrepancy
    /// sampler) instead of independently.
    #[config(default = true)]
    pub low_discrepancy: bool,
    /// The denoiser.
    #[config(default = "UNetConfig::new(1).with_base_channels(32)")]
    pub unet: UNetConfig,
}

impl VdmConfig {
    /// Checks sizes, the time steps, the schedule and the U-Net (its channels must be the
    /// images').
    pub fn validate(&self) -> crate::Result<()> {
        ensure_nonzero("channels", self.channels)?;
        ensure_nonzero("height", self.height)?;
        ensure_nonzero("width", self.width)?;
        if let DiffusionTime::Discrete { steps } = self.time {
            ensure_nonzero("time.steps", steps)?;
        }
        self.schedule.validate()?;
        self.unet.validate()?;
        self.unet
            .check_images(self.channels, self.height, self.width)
    }
}
