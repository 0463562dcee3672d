//! NVAE's latent groups: Normal distributions over spatial latent maps `[b, Z, h, w]`,
//! parameterised by a convolution's output, and the residual-normal posterior.

use burn::tensor::Tensor;

use crate::Result;
use crate::distributions::DiagNormal;
use crate::error::Error;

/// Bound of the soft clamp on means and log-scales.
pub const SOFT_CLAMP: f64 = 5.0;

/// `c · tanh(x / c)` with `c = 5`: NVAE's soft clamp, which keeps means and log-scales in
/// `(−5, 5)` (so `σ ∈ (e⁻⁵, e⁵)`) while staying smooth and close to the identity near 0.
pub fn soft_clamp(x: Tensor<4>) -> Tensor<4> {
    crate::kernels::soft_clamp(x, SOFT_CLAMP)
}

/// Splits a `[b, 2Z, h, w]` map into its first `Z` channels and its last `Z` channels,
/// each soft-clamped: `(μ, log σ)` of a group, or `(Δμ, log Δσ)` of a residual.
pub fn split_params(params: Tensor<4>) -> Result<(Tensor<4>, Tensor<4>)> {
    let [b, c2, h, w] = params.dims();
    if c2 == 0 || c2 % 2 != 0 {
        return Err(Error::shape(
            "latent group parameters",
            "[batch, 2·latent_channels, h, w] (an even, non-zero channel count)",
            [b, c2, h, w],
        ));
    }
    let z = c2 / 2;
    // Clamped whole, then split: one pass over contiguous values (the halves are strided
    // views, which burn's element-wise ops walk slowly).
    let params = soft_clamp(params);
    Ok((params.clone().narrow(1, 0, z), params.narrow(1, z, z)))
}

/// `N(μ, σ²)` per latent pixel from `(μ, log σ)`: a [`DiagNormal`] with `log_var = 2 log σ`.
pub fn normal(mu: Tensor<4>, log_sigma: Tensor<4>) -> Result<DiagNormal<4>> {
    DiagNormal::new(mu, log_sigma.mul_scalar(2.0))
}

/// The residual-normal posterior of a group (Vahdat & Kautz 2020, eq. 2).
///
/// # Formula
/// ```text
/// p(z_l | z_<l)      = N(μ_p, σ_p²)
/// q(z_l | z_<l, x)   = N(μ_p + Δμ, (σ_p · Δσ)²)
/// KL(q ‖ p)          = ½ Σ_i [ Δμ_i² / σ_p,i² + Δσ_i² − 1 ] − Σ_i log Δσ_i
/// ```
/// `delta` is the encoder's `[b, 2Z, h, w]` output, split and soft-clamped by
/// [`split_params`] into `(Δμ, log Δσ)`. With `Δμ = 0` and `log Δσ = 0` the posterior is the
/// prior.
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::KlDivergence;
/// use elbo::models::nvae::{normal, residual_normal};
/// let device = elbo::device::default_device();
/// let prior = normal(Tensor::ones([2, 3, 4, 4], &device), Tensor::zeros([2, 3, 4, 4], &device))?;
/// let q = residual_normal(&prior, Tensor::zeros([2, 6, 4, 4], &device))?;
/// let kl: Vec<f32> = q.kl(&prior).into_data().to_vec().unwrap();
/// assert!(kl.iter().all(|k| k.abs() < 1e-6));
/// # Ok::<(), elbo::Error>(())
/// ```
pub fn residual_normal(prior: &DiagNormal<4>, delta: Tensor<4>) -> Result<DiagNormal<4>> {
    let (delta_mu, delta_log_sigma) = split_params(delta)?;
    if delta_mu.dims() != prior.dims() {
        return Err(Error::shape(
            "residual-normal posterior",
            format!("a residual of shape {:?} (twice the prior's channels)", {
                let [b, z, h, w] = prior.dims();
                [b, 2 * z, h, w]
            }),
            {
                let [b, z, h, w] = delta_mu.dims();
                [b, 2 * z, h, w]
            },
        ));
    }
    DiagNormal::new(
        prior.loc() + delta_mu,
        prior.log_var() + delta_log_sigma.mul_scalar(2.0),
    )
}

/// The same Normal with every scale multiplied by `temperature`
/// (`log_var + 2 ln t`), for sampling at temperature `t`.
pub fn with_temperature(normal: DiagNormal<4>, temperature: f64) -> Result<DiagNormal<4>> {
    if temperature == 1.0 {
        return Ok(normal);
    }
    DiagNormal::new(
        normal.loc(),
        normal.log_var().add_scalar(2.0 * temperature.ln()),
    )
}
