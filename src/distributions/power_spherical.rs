//! The Power Spherical distribution on `S^{d−1}` (De Cao & Aziz 2020): a Bessel-free
//! alternative to the von Mises–Fisher distribution.

use burn::tensor::{Distribution as TensorDistribution, Tensor, TensorData};
use rand::rngs::StdRng;
use rand_distr::{Beta, Distribution as _};

use super::UniformSphere;
use super::von_mises_fisher::{attach, host, host_rng, on_sphere};
use crate::math::{digamma, lgamma, trigamma};
use crate::traits::{Batch, Distribution, KlDivergence, Posterior};
use crate::{Error, Result};

/// A batch of Power Spherical distributions on `S^{d−1} ⊂ R^d` with unit mean direction
/// `μ` and concentration `κ > 0`.
///
/// # Density
/// ```text
/// p(z; μ, κ) = C(κ, d) (1 + μᵀz)^κ,    α = (d − 1)/2 + κ,   β = (d − 1)/2
/// C(κ, d)⁻¹ = 2^{α+β} π^β Γ(α) / Γ(α + β)
/// ```
/// The component `w = μᵀz` satisfies `(1 + w)/2 ~ Beta(α, β)`, so sampling needs no
/// rejection: `t ~ Beta(α, β)`, `w = 2t − 1`, `z = w μ + √(1 − w²) v` with `v` uniform on
/// the tangent sphere. `E[w] = (α − β)/(α + β)`.
///
/// The Beta draw is made on the host and enters as a constant, so samples are
/// differentiable in μ but not in κ (use [`VonMisesFisher`](super::VonMisesFisher) when κ
/// is learned through the reconstruction term); `log_prob`, the entropy and the KL are
/// differentiable in κ.
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::distributions::{PowerSpherical, UniformSphere};
/// use elbo::{Distribution, KlDivergence};
///
/// let device = elbo::device::default_device();
/// let q = PowerSpherical::new(Tensor::from_floats([[0.0, 1.0]], &device), Tensor::from_floats([4.0], &device))?;
/// let z = q.sample();
/// assert_eq!(z.dims(), [1, 2]);
/// assert!(q.kl(&UniformSphere::new(2)?).into_scalar::<f32>() > 0.0);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct PowerSpherical {
    mean_direction: Tensor<2>,
    kappa: Tensor<1>,
}

impl PowerSpherical {
    /// Power Spherical distributions with mean directions `[batch, d]` (renormalised) and
    /// concentrations `[batch]`.
    ///
    /// # Errors
    /// As [`VonMisesFisher::new`](super::VonMisesFisher::new): `d < 2`, κ ≤ 0 or
    /// non-finite, a zero-norm direction, mismatched shapes.
    pub fn new(mean_direction: Tensor<2>, kappa: Tensor<1>) -> Result<Self> {
        // Same parameter space and checks as the vMF.
        let vmf = super::VonMisesFisher::new(mean_direction, kappa)?;
        Ok(Self::from_unit_unchecked(vmf.mean_direction(), vmf.kappa()))
    }

    /// Builds from unit rows and κ > 0 without checks.
    pub fn from_unit_unchecked(mean_direction: Tensor<2>, kappa: Tensor<1>) -> Self {
        Self {
            mean_direction,
            kappa,
        }
    }

    /// The ambient dimension `d`.
    pub fn dim(&self) -> usize {
        self.mean_direction.dims()[1]
    }

    fn beta(&self) -> f64 {
        (self.dim() as f64 - 1.0) / 2.0
    }

    /// `ln C(κ, d) = −[(α + β) ln 2 + β ln π + ln Γ(α) − ln Γ(α + β)]` per row,
    /// differentiable in κ (`d/dκ ln C = −ln 2 − ψ(α) + ψ(α + β)`).
    pub fn log_normalizer(&self) -> Tensor<1> {
        let b = self.beta();
        let k = host(&self.kappa);
        let value: Vec<f64> = k
            .iter()
            .map(|&k| {
                let a = b + k;
                -((a + b) * std::f64::consts::LN_2 + b * std::f64::consts::PI.ln() + lgamma(a)
                    - lgamma(a + b))
            })
            .collect();
        let grad: Vec<f64> = k
            .iter()
            .map(|&k| -std::f64::consts::LN_2 - digamma(b + k) + digamma(2.0 * b + k))
            .collect();
        attach(&value, &grad, &self.kappa)
    }

    /// `E[ln(1 + μᵀz)] = ln 2 + ψ(α) − ψ(α + β)` per row, differentiable in κ.
    fn expected_log_one_plus_w(&self) -> Tensor<1> {
        let b = self.beta();
        let k = host(&self.kappa);
        let value: Vec<f64> = k
            .iter()
            .map(|&k| std::f64::consts::LN_2 + digamma(b + k) - digamma(2.0 * b + k))
            .collect();
        let grad: Vec<f64> = k
            .iter()
            .map(|&k| trigamma(b + k) - trigamma(2.0 * b + k))
            .collect();
        attach(&value, &grad, &self.kappa)
    }

    /// Differential entropy per row: `−ln C − κ (ln 2 + ψ(α) − ψ(α + β))`.
    pub fn entropy(&self) -> Tensor<1> {
        (self.log_normalizer() + self.kappa.clone() * self.expected_log_one_plus_w()).neg()
    }

    /// The deterministic core of sampling: from Beta(α, β) draws `t` (`[batch]`) and
    /// Gaussian tangent noise `[batch, d]`, `z = w μ + √(1 − w²) v` with `w = 2t − 1`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the noise shapes do not match the batch.
    pub fn sample_with_noise(
        &self,
        beta_draws: Tensor<1>,
        tangent_noise: Tensor<2>,
    ) -> Result<Tensor<2>> {
        let [batch, d] = self.mean_direction.dims();
        if beta_draws.dims() != [batch] || tangent_noise.dims() != [batch, d] {
            return Err(Error::shape(
                "PowerSpherical::sample_with_noise",
                format!("beta draws [{batch}] and tangent noise [{batch}, {d}]"),
                (beta_draws.dims(), tangent_noise.dims()),
            ));
        }
        let t = beta_draws;
        let w = t.clone().mul_scalar(2.0).sub_scalar(1.0);
        // 1 − w² = 4 t (1 − t), exact near both poles.
        let radial = (t.clone() * t.neg().add_scalar(1.0))
            .mul_scalar(4.0)
            .clamp_min(0.0)
            .sqrt();
        Ok(on_sphere(&self.mean_direction, w, radial, tangent_noise))
    }

    /// One draw per row with `rng` for the Beta draws and the device for the tangent noise.
    pub fn sample_with_rng(&self, rng: &mut StdRng) -> Tensor<2> {
        let [batch, d] = self.mean_direction.dims();
        let device = self.mean_direction.device();
        let b = self.beta();
        let t: Vec<f32> = host(&self.kappa)
            .into_iter()
            .map(|k| {
                let beta = Beta::new(b + k, b).expect("α, β > 0 for κ > 0, d ≥ 2");
                beta.sample(rng) as f32
            })
            .collect();
        let t = Tensor::<1>::from_data(TensorData::new(t, [batch]), &device);
        let noise = Tensor::random([batch, d], TensorDistribution::Normal(0.0, 1.0), &device);
        self.sample_with_noise(t, noise)
            .expect("shapes are built to match")
    }
}

impl Distribution for PowerSpherical {
    type Value = Tensor<2>;

    fn log_prob(&self, z: &Tensor<2>) -> Tensor<1> {
        let batch = self.mean_direction.dims()[0];
        let dot = (self.mean_direction.clone() * z.clone())
            .sum_dim(1)
            .reshape([batch]);
        self.log_normalizer() + self.kappa.clone() * dot.add_scalar(1.0).log()
    }

    fn sample(&self) -> Tensor<2> {
        let mut rng = host_rng(&self.mean_direction.device());
        self.sample_with_rng(&mut rng)
    }

    fn mean(&self) -> Tensor<2> {
        // E[w] = (α − β)/(α + β) = κ / (d − 1 + κ)
        let batch = self.mean_direction.dims()[0];
        let k = self.kappa.clone();
        let ew = k.clone() / k.add_scalar(self.dim() as f64 - 1.0);
        self.mean_direction.clone() * ew.reshape([batch, 1])
    }

    fn batch_size(&self) -> usize {
        self.mean_direction.dims()[0]
    }

    fn repeat_rows(&self, k: usize) -> Self {
        Self {
            mean_direction: self.mean_direction.repeat_rows(k),
            kappa: self.kappa.repeat_rows(k),
        }
    }
}

impl Posterior for PowerSpherical {
    fn mode(&self) -> Tensor<2> {
        self.mean_direction.clone()
    }

    fn detach(&self) -> Self {
        Self {
            mean_direction: self.mean_direction.clone().detach(),
            kappa: self.kappa.clone().detach(),
        }
    }
}

/// # Formula
/// ```text
/// KL(PS(μ, κ) ‖ U(S^{d−1})) = −H(PS) + ln |S^{d−1}| = ln C + κ (ln 2 + ψ(α) − ψ(α + β)) + ln |S^{d−1}|
/// ```
/// (De Cao & Aziz 2020, sec. 3.)
impl KlDivergence<UniformSphere> for PowerSpherical {
    fn kl(&self, prior: &UniformSphere) -> Tensor<1> {
        (self.log_normalizer() + self.kappa.clone() * self.expected_log_one_plus_w())
            .add_scalar(prior.log_surface_area())
    }
}
