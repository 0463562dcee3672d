//! DDPM (Ho et al. 2020, "Denoising Diffusion Probabilistic Models") read as a T-step
//! autoregressive VAE.
//!
//! The "encoder" is fixed: the forward process `q(x_{1:T} | x_0) = Π_t q(x_t | x_{t−1})`
//! adds Gaussian noise with variances `β_1 … β_T`. The "decoder" is the learned reverse chain
//! `p(x_{0:T}) = p(x_T) Π_t p_θ(x_{t−1} | x_t)`, and the ELBO has one KL term per step,
//! `KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t))`, against the closed-form forward posterior.
//!
//! ```text
//! x_0 ──q──► x_1 ──q──► … ──q──► x_T ≈ N(0, I)
//! x_0 ◄─p_θ─ x_1 ◄─p_θ─ … ◄─p_θ─ x_T
//! ```
//!
//! - [`DdpmConfig`] / [`Ddpm`]: the reverse chain around any [`Denoiser`] (the
//!   [`UNet`](crate::nn::UNet) by default) with ε-, x₀- or v-prediction, fixed-small or
//!   fixed-large variances, `L_simple` / VLB / hybrid training through
//!   [`Objective::ModelLoss`](crate::objective::Objective::ModelLoss), the bound as `T` KL
//!   groups through [`LatentVariableModel`](crate::LatentVariableModel), and a cheap
//!   estimate of it over random steps ([`Ddpm::vlb_estimate`]), uniform or drawn from a
//!   [`StepProposal`] that favours the large terms ([`Ddpm::vlb_proposal`],
//!   [`Ddpm::vlb_estimate_with`]);
//! - [`ConditionalDdpmConfig`] / [`ConditionalDdpm`]: the same model conditioned on a class
//!   label through any [`ConditionalDenoiser`] (the U-Net with `num_classes > 0`), trained
//!   with label dropout, sampled with classifier-free guidance ([`Guided`]);
//! - ancestral and DDIM samplers ([`Ddpm::sample_ancestral`], [`Ddpm::sample_ddim`]);
//! - [`BetaSchedule`] (linear, cosine, custom) and [`NoiseSchedule`], the f64 tables of
//!   `β_t`, `ᾱ_t` and the posterior coefficients, with time 1-based (`t = 1 … T`);
//! - [`q_sample`] (`q(x_t | x_0)` for given noise) and [`q_posterior`]
//!   (`q(x_{t−1} | x_t, x_0)`) on flat `[batch, d]` data with one timestep per row;
//! - the exact conversions between the `x_0`, `ε` and `v` parameterisations
//!   ([`eps_from_x0`], [`x0_from_eps`], [`v_from`], [`x0_from_v`], [`eps_from_v`]).

mod bound;
mod conditional;
mod config;
mod forward;
mod guidance;
mod model;
mod sampler;
mod schedule;

pub use bound::StepProposal;
pub use conditional::{ConditionalDdpm, ConditionalDdpmConfig};
pub use config::{DataDecoder, DdpmConfig, DdpmLoss, Prediction, ReverseVariance};
pub use forward::{
    eps_from_v, eps_from_x0, per_row, q_posterior, q_sample, v_from, x0_from_eps, x0_from_v,
};
pub use guidance::{ConditionalDenoiser, Guided};
pub use model::{Ddpm, DdpmSettings, Denoiser};
pub use schedule::{BetaSchedule, MAX_BETA, NoiseSchedule};
