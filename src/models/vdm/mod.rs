//! Variational Diffusion Models (Kingma, Salimans, Poole & Ho 2021): diffusion read exactly
//! as a VAE whose encoder is a Gaussian noising process with a (possibly learned) schedule
//! `γ(t) = −log SNR(t)`, trained on its own ELBO.
//!
//! This first part holds the noise schedule, [`GammaSchedule`]: fixed linear, or learned
//! by a monotone network, with its derivative `γ'(t)` (which the continuous-time diffusion
//! loss weights by).

mod schedule;

pub use schedule::{GammaSchedule, GammaScheduleConfig, MonotoneNetwork, ScheduleKind};
