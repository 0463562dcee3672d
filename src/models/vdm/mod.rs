//! Variational Diffusion Models (Kingma, Salimans, Poole & Ho 2021): diffusion read exactly
//! as a VAE whose encoder is a Gaussian noising process with a (possibly learned) schedule
//! `γ(t) = −log SNR(t)`, trained on its own ELBO.
//!
//! ```text
//! x ──q──► z_t = α_t x + σ_t ε ──► z_1 ≈ N(0, I)        α_t² = sigmoid(−γ_t), σ_t² = sigmoid(γ_t)
//! −ELBO = prior loss + reconstruction loss + diffusion loss (continuous or T steps)
//! ```
//!
//! - [`VdmConfig`] / [`Vdm`]: the model around any [`Denoiser`](crate::models::ddpm::Denoiser)
//!   (the U-Net by default, conditioned on `γ_t`), with VDM's categorical decoder over the
//!   256 levels of 8-bit data or a Gaussian one for continuous data ([`VdmData`]), the
//!   continuous-time or `T`-step diffusion loss ([`DiffusionTime`]), the low-discrepancy
//!   time sampler, and ancestral sampling; the bound comes back as
//!   [`ElboTerms`](crate::ElboTerms), so `elbo_estimate`, `bits_per_dim` and the fit loop
//!   apply unchanged;
//! - [`GammaSchedule`]: the schedule, fixed linear or learned by a monotone network, with
//!   its derivative `γ'(t)` (which the continuous-time diffusion loss weights by), trained
//!   on the bound or on the variance of the diffusion loss ([`ScheduleGradient`], through
//!   [`GradientScale`]).

mod config;
mod gradient_scale;
mod model;
mod schedule;

pub use config::{DiffusionTime, ScheduleGradient, VdmConfig, VdmData};
pub use gradient_scale::GradientScale;
pub use model::{Vdm, VdmSettings};
pub use schedule::{GammaSchedule, GammaScheduleConfig, MonotoneNetwork, ScheduleKind};
