//! The von Mises–Fisher distribution on the unit sphere `S^{d−1}`.

use burn::tensor::{Device, Distribution as TensorDistribution, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Beta, Distribution as _};

use super::UniformSphere;
use crate::math::{bessel_ratio, log_bessel_i, log_bessel_i_derivative};
use crate::traits::{Batch, Distribution, KlDivergence, Posterior};
use crate::{Error, Result};

/// A batch of von Mises–Fisher distributions on `S^{d−1} ⊂ R^d` (row = example), with unit
/// mean direction `μ` and concentration `κ > 0`.
///
/// # Density
/// ```text
/// vMF(z; μ, κ) = C_d(κ) exp(κ μᵀz),     C_d(κ) = κ^{d/2−1} / ( (2π)^{d/2} I_{d/2−1}(κ) )
/// E[z] = A_d(κ) μ,                       A_d(κ) = I_{d/2}(κ) / I_{d/2−1}(κ)
/// ```
/// with respect to the surface measure of the sphere.
///
/// # Sampling
/// Wood (1994): the component `w = μᵀz` is drawn by rejection from a Beta proposal
/// `ε ~ Beta((d−1)/2, (d−1)/2)`,
/// ```text
/// b = (d − 1) / (2κ + √(4κ² + (d − 1)²)),   x₀ = (1 − b)/(1 + b),   c = κ x₀ + (d − 1) ln(1 − x₀²)
/// w = (1 − (1 + b) ε) / (1 − (1 − b) ε),     accept if κ w + (d − 1) ln(1 − x₀ w) − c ≥ ln u
/// ```
/// then `z = w μ + √(1 − w²) v` with `v` uniform on the tangent sphere (Gaussian noise
/// projected off `μ` and normalised). With the accepted `ε` held fixed, `w = h(ε, κ)` is
/// differentiable in κ (Davidson et al. 2018), so gradients reach a learned κ.
///
/// # Gradients through the rejection step
/// The accepted `ε` is not Beta-distributed: its density depends on κ,
/// ```text
/// π(ε; κ) = q_w(h(ε, κ); κ) · |∂h/∂ε|,   q_w(w; κ) ∝ C_d(κ) e^{κw} (1 − w²)^{(d−3)/2},
/// ∂h/∂ε = −2b / (1 − (1 − b) ε)²
/// ```
/// (Naesseth et al. 2017, Davidson et al. 2018 eq. 9–11), so the gradient of `E_q[f(z)]` is
/// `g_rep + g_cor` with `g_rep = E[∇_κ f(h(ε, κ), v)]` (what differentiating the draw
/// gives) and `g_cor = E[f · ∇_κ ln π(ε; κ)]`. [`Distribution::sample_for_gradient`]
/// returns `ln π(ε; κ)` beside the draw ([`VonMisesFisher::log_accepted_density`]) and
/// [`rejection_corrected`](crate::objective::rejection_corrected) attaches `g_cor`; the
/// ELBO of every VAE with this posterior does so. `μ` does not enter the rejection step,
/// so its gradient needs no correction.
///
/// `log C_d(κ)` and `A_d(κ)` are computed in f64 on the host ([`log_bessel_i`],
/// [`bessel_ratio`]) and enter the graph as `value + derivative · (κ − stop_grad(κ))`: the
/// value and the first derivative in κ are exact, higher derivatives are not tracked.
///
/// # Example
/// ```
/// use burn::tensor::Tensor;
/// use elbo::distributions::{UniformSphere, VonMisesFisher};
/// use elbo::{Distribution, KlDivergence};
///
/// let device = elbo::device::default_device();
/// let mu = Tensor::<2>::from_floats([[1.0, 0.0, 0.0]], &device);
/// let q = VonMisesFisher::new(mu, Tensor::from_floats([10.0], &device))?;
/// let z = q.sample();
/// let norm: f32 = z.powi_scalar(2).sum().into_scalar();
/// assert!((norm - 1.0).abs() < 1e-5);
/// let kl: f32 = q.kl(&UniformSphere::new(3)?).into_scalar();
/// assert!(kl > 0.0);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct VonMisesFisher {
    mean_direction: Tensor<2>,
    kappa: Tensor<1>,
}

pub(crate) fn host(t: &Tensor<1>) -> Vec<f64> {
    t.clone()
        .detach()
        .try_into_vec_as::<f32>()
        .map(|v| v.into_iter().map(f64::from).collect())
        .unwrap_or_default()
}

/// `value + grad · (x − stop_grad(x))`: the value of a host function of `x` with its first
/// derivative attached.
pub(crate) fn attach(value: &[f64], grad: &[f64], x: &Tensor<1>) -> Tensor<1> {
    let device = x.device();
    let n = value.len();
    let v: Vec<f32> = value.iter().map(|&v| v as f32).collect();
    let g: Vec<f32> = grad.iter().map(|&g| g as f32).collect();
    let v = Tensor::<1>::from_data(TensorData::new(v, [n]), &device);
    let g = Tensor::<1>::from_data(TensorData::new(g, [n]), &device);
    v + g * (x.clone() - x.clone().detach())
}

/// `ln C_d(κ) = (d/2 − 1) ln κ − (d/2) ln 2π − ln I_{d/2−1}(κ)`, in f64.
pub fn vmf_log_normalizer(d: usize, kappa: f64) -> f64 {
    let nu = d as f64 / 2.0 - 1.0;
    nu * kappa.ln() - (d as f64 / 2.0) * (2.0 * std::f64::consts::PI).ln() - log_bessel_i(nu, kappa)
}

impl VonMisesFisher {
    /// vMF distributions with the given mean directions `[batch, d]` (each of unit norm;
    /// they are renormalised) and concentrations `[batch]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for `d < 2` or a κ of the wrong length;
    /// [`Error::InvalidConfig`] for κ ≤ 0 or non-finite, or a mean direction of zero or
    /// non-finite norm. (The check reads κ and the norms back to the host.)
    pub fn new(mean_direction: Tensor<2>, kappa: Tensor<1>) -> Result<Self> {
        let [batch, d] = mean_direction.dims();
        if d < 2 {
            return Err(Error::shape(
                "VonMisesFisher::new (mean_direction)",
                "[batch, d >= 2]",
                [batch, d],
            ));
        }
        if kappa.dims() != [batch] {
            return Err(Error::shape(
                "VonMisesFisher::new (kappa)",
                format!("[{batch}]"),
                kappa.dims(),
            ));
        }
        if let Some(k) = host(&kappa)
            .into_iter()
            .find(|k| !(*k > 0.0 && k.is_finite()))
        {
            return Err(Error::config("kappa", k, "a finite concentration > 0"));
        }
        let norms = host(
            &mean_direction
                .clone()
                .powi_scalar(2)
                .sum_dim(1)
                .sqrt()
                .reshape([batch]),
        );
        if let Some(n) = norms.into_iter().find(|n| !(*n > 0.0 && n.is_finite())) {
            return Err(Error::config(
                "mean_direction",
                format!("a row of norm {n}"),
                "rows of finite, non-zero norm (they are normalised to unit length)",
            ));
        }
        Ok(Self::from_unit_unchecked(normalize(mean_direction), kappa))
    }

    /// Builds from rows already of unit norm and κ > 0, without checks or host reads (for
    /// encoder heads on the hot path).
    pub fn from_unit_unchecked(mean_direction: Tensor<2>, kappa: Tensor<1>) -> Self {
        Self {
            mean_direction,
            kappa,
        }
    }

    /// The mean directions `μ`, `[batch, d]`.
    pub fn mean_direction(&self) -> Tensor<2> {
        self.mean_direction.clone()
    }

    /// The concentrations `κ`, `[batch]`.
    pub fn kappa(&self) -> Tensor<1> {
        self.kappa.clone()
    }

    /// The dimension `d` of the ambient space (the sphere is `S^{d−1}`).
    pub fn dim(&self) -> usize {
        self.mean_direction.dims()[1]
    }

    /// `ln C_d(κ)` per row, differentiable in κ.
    pub fn log_normalizer(&self) -> Tensor<1> {
        let d = self.dim();
        let nu = d as f64 / 2.0 - 1.0;
        let k = host(&self.kappa);
        let value: Vec<f64> = k.iter().map(|&k| vmf_log_normalizer(d, k)).collect();
        // d/dκ ln C_d = ν/κ − (A_d(κ) + ν/κ) = −A_d(κ)
        let grad: Vec<f64> = k
            .iter()
            .map(|&k| nu / k - log_bessel_i_derivative(nu, k))
            .collect();
        attach(&value, &grad, &self.kappa)
    }

    /// `A_d(κ) = E[μᵀz]` per row, differentiable in κ.
    pub fn mean_resultant_length(&self) -> Tensor<1> {
        let d = self.dim();
        let k = host(&self.kappa);
        let value: Vec<f64> = k.iter().map(|&k| bessel_ratio(d, k)).collect();
        // A_d'(κ) = 1 − A² − (d − 1) A / κ
        let grad: Vec<f64> = k
            .iter()
            .zip(&value)
            .map(|(&k, &a)| 1.0 - a * a - (d as f64 - 1.0) * a / k)
            .collect();
        attach(&value, &grad, &self.kappa)
    }

    /// Differential entropy per row: `−ln C_d(κ) − κ A_d(κ)`.
    pub fn entropy(&self) -> Tensor<1> {
        (self.log_normalizer() + self.kappa.clone() * self.mean_resultant_length()).neg()
    }

    /// The deterministic core of sampling: from the accepted Beta proposals `ε` (`[batch]`,
    /// see the type docs) and Gaussian tangent noise `[batch, d]`, the draw
    /// `z = w μ + √(1 − w²) v`. Differentiable in μ and (through `w = h(ε, κ)`) in κ.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the noise shapes do not match the batch.
    pub fn sample_with_noise(
        &self,
        proposal: Tensor<1>,
        tangent_noise: Tensor<2>,
    ) -> Result<Tensor<2>> {
        let [batch, d] = self.mean_direction.dims();
        if proposal.dims() != [batch] || tangent_noise.dims() != [batch, d] {
            return Err(Error::shape(
                "VonMisesFisher::sample_with_noise",
                format!("proposal [{batch}] and tangent noise [{batch}, {d}]"),
                (proposal.dims(), tangent_noise.dims()),
            ));
        }
        let wood = self.wood_map(proposal);
        let w = wood.one_minus_w.clone().neg().add_scalar(1.0);
        // Kept above 1e-30 before the square root: at a pole (an f32 proposal of exactly 0
        // or 1, about 1 draw in 3,000 on the circle) √ has an infinite slope and the
        // gradient would be 0 · ∞ = NaN, while the true derivative there is 0.
        let radial = (wood.one_minus_w * w.clone().add_scalar(1.0))
            .clamp_min(1e-30)
            .sqrt();
        Ok(on_sphere(&self.mean_direction, w, radial, tangent_noise))
    }

    /// Wood's map `w = h(ε, κ)` as a graph in κ, with the pieces its Jacobian needs.
    fn wood_map(&self, eps: Tensor<1>) -> WoodMap {
        let dm1 = self.dim() as f64 - 1.0;
        let k = self.kappa.clone();
        // b = (d − 1) / (2κ + √(4κ² + (d − 1)²))
        let b = (k.clone().mul_scalar(2.0)
            + k.powi_scalar(2)
                .mul_scalar(4.0)
                .add_scalar(dm1 * dm1)
                .sqrt())
        .recip()
        .mul_scalar(dm1);
        let denom = (b.clone().neg().add_scalar(1.0) * eps.clone())
            .neg()
            .add_scalar(1.0);
        // 1 − w = 2 b ε / (1 − (1 − b) ε), kept separate for precision near w = 1.
        let one_minus_w = (b.clone() * eps).mul_scalar(2.0) / denom.clone();
        WoodMap {
            b,
            denom,
            one_minus_w,
        }
    }

    /// `ln π(ε; κ)` per row, up to a constant in κ: the log-density of the accepted Beta
    /// proposals `ε` (`[batch]`) as a function of κ, differentiable in κ (see the type
    /// docs, "Gradients through the rejection step"):
    /// ```text
    /// ln π(ε; κ) = ln C_d(κ) + κ w + ((d − 3)/2) ln(1 − w²) + ln 2b − 2 ln(1 − (1 − b) ε) + const
    /// ```
    /// with `w = h(ε, κ)`. The arguments of the logarithms are kept above `1e-30`, so the
    /// value is finite for every `ε` in `[0, 1]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `proposal` is not `[batch]`.
    pub fn log_accepted_density(&self, proposal: Tensor<1>) -> Result<Tensor<1>> {
        let batch = self.batch_size();
        if proposal.dims() != [batch] {
            return Err(Error::shape(
                "VonMisesFisher::log_accepted_density",
                format!("[{batch}]"),
                proposal.dims(),
            ));
        }
        let d = self.dim() as f64;
        let wood = self.wood_map(proposal);
        // 1 − w² = (1 − w)(1 + w) = (1 − w)(2 − (1 − w))
        let one_minus_w_sq =
            wood.one_minus_w.clone() * wood.one_minus_w.clone().neg().add_scalar(2.0);
        let w = wood.one_minus_w.neg().add_scalar(1.0);
        let log_q_w = self.log_normalizer()
            + self.kappa.clone() * w
            + one_minus_w_sq
                .clamp_min(1e-30)
                .log()
                .mul_scalar((d - 3.0) / 2.0);
        let log_jacobian = wood.b.mul_scalar(2.0).clamp_min(1e-30).log()
            - wood.denom.clamp_min(1e-30).log().mul_scalar(2.0);
        Ok(log_q_w + log_jacobian)
    }

    /// Runs Wood's rejection loop on the host for every row, returning the accepted Beta
    /// proposals `ε` (`[batch]`, f64).
    pub fn draw_proposals(&self, rng: &mut StdRng) -> Vec<f64> {
        let d = self.dim();
        let dm1 = d as f64 - 1.0;
        let beta = Beta::new(dm1 / 2.0, dm1 / 2.0).expect("d >= 2 gives positive shapes");
        host(&self.kappa)
            .into_iter()
            .map(|k| {
                let b = dm1 / (2.0 * k + (4.0 * k * k + dm1 * dm1).sqrt());
                let x0 = (1.0 - b) / (1.0 + b);
                let c = k * x0 + dm1 * (1.0 - x0 * x0).ln();
                loop {
                    let eps: f64 = beta.sample(rng);
                    let w = (1.0 - (1.0 + b) * eps) / (1.0 - (1.0 - b) * eps);
                    let u: f64 = rng.random();
                    if k * w + dm1 * (1.0 - x0 * w).ln() - c >= u.ln() {
                        return eps;
                    }
                }
            })
            .collect()
    }

    /// One draw per row using `rng` for the rejection loop and the device for the tangent
    /// noise.
    pub fn sample_with_rng(&self, rng: &mut StdRng) -> Tensor<2> {
        self.sample_and_log_accepted_with_rng(rng).0
    }

    /// One draw per row, as [`VonMisesFisher::sample_with_rng`], and `ln π(ε; κ)` of the
    /// accepted proposals ([`VonMisesFisher::log_accepted_density`]).
    pub fn sample_and_log_accepted_with_rng(&self, rng: &mut StdRng) -> (Tensor<2>, Tensor<1>) {
        let [batch, d] = self.mean_direction.dims();
        let device = self.mean_direction.device();
        let eps: Vec<f32> = self
            .draw_proposals(rng)
            .into_iter()
            .map(|e| e as f32)
            .collect();
        let proposal = Tensor::<1>::from_data(TensorData::new(eps, [batch]), &device);
        let noise = Tensor::random([batch, d], TensorDistribution::Normal(0.0, 1.0), &device);
        let z = self
            .sample_with_noise(proposal.clone(), noise)
            .expect("shapes are built to match");
        let log_pi = self
            .log_accepted_density(proposal)
            .expect("shapes are built to match");
        (z, log_pi)
    }
}

/// Wood's map from an accepted proposal to `w`, in κ: `b(κ)`, `1 − (1 − b) ε` and `1 − w`.
struct WoodMap {
    b: Tensor<1>,
    denom: Tensor<1>,
    one_minus_w: Tensor<1>,
}

/// `z = w μ + r v` per row, with `r = √(1 − w²)` given (each family computes it in the
/// form that is exact near its poles) and `v` the unit tangent direction made from
/// Gaussian `noise`: the noise with its component along `μ` removed, then normalised, so
/// `v` is uniform on the sphere orthogonal to `μ`. The projection is applied twice ("twice
/// is enough", Kahan–Parlett): once leaves an f32 error of order `eps · |noise| / |noise⊥|`
/// along `μ`, which on the circle (`d = 2`, where `noise⊥` is one coordinate) put draws
/// 1e-5 off the sphere.
pub(crate) fn on_sphere(
    mu: &Tensor<2>,
    w: Tensor<1>,
    radial: Tensor<1>,
    noise: Tensor<2>,
) -> Tensor<2> {
    let batch = w.dims()[0];
    let project = |x: Tensor<2>| {
        let along = (x.clone() * mu.clone()).sum_dim(1);
        x - mu.clone() * along
    };
    let tangent = normalize(project(project(noise)));
    mu.clone() * w.reshape([batch, 1]) + tangent * radial.reshape([batch, 1])
}

/// Rows scaled to unit norm (a zero row stays near zero instead of becoming NaN).
pub(crate) fn normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// A host seed drawn from the device's random stream, so `device.seed(..)` makes host-side
/// sampling reproducible too.
pub(crate) fn host_rng(device: &Device) -> StdRng {
    let u: Vec<f32> = Tensor::<1>::random([2], TensorDistribution::Uniform(0.0, 1.0), device)
        .try_into_vec_as::<f32>()
        .unwrap_or_default();
    let seed = u
        .iter()
        .fold(0u64, |acc, v| (acc << 24) ^ ((v * 16_777_216.0) as u64));
    StdRng::seed_from_u64(seed)
}

impl Distribution for VonMisesFisher {
    type Value = Tensor<2>;

    fn log_prob(&self, z: &Tensor<2>) -> Tensor<1> {
        let batch = self.mean_direction.dims()[0];
        let dot = (self.mean_direction.clone() * z.clone())
            .sum_dim(1)
            .reshape([batch]);
        self.log_normalizer() + self.kappa.clone() * dot
    }

    fn sample(&self) -> Tensor<2> {
        let mut rng = host_rng(&self.mean_direction.device());
        self.sample_with_rng(&mut rng)
    }

    /// The draw and `ln π(ε; κ)` of its accepted proposal, for `g_cor` (see the type docs).
    /// With a fixed κ (no gradient can reach it) the density is not formed and this is
    /// `(sample(), None)`.
    fn sample_for_gradient(&self) -> (Tensor<2>, Option<Tensor<1>>) {
        let mut rng = host_rng(&self.mean_direction.device());
        if self.kappa.is_tracked() {
            let (z, log_pi) = self.sample_and_log_accepted_with_rng(&mut rng);
            (z, Some(log_pi))
        } else {
            (self.sample_with_rng(&mut rng), None)
        }
    }

    fn mean(&self) -> Tensor<2> {
        let batch = self.mean_direction.dims()[0];
        self.mean_direction.clone() * self.mean_resultant_length().reshape([batch, 1])
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

impl Posterior for VonMisesFisher {
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
/// KL(vMF(μ, κ) ‖ U(S^{d−1})) = κ A_d(κ) + ln C_d(κ) + ln |S^{d−1}|
/// ```
/// (Davidson et al. 2018, eq. 12–14); independent of μ.
impl KlDivergence<UniformSphere> for VonMisesFisher {
    fn kl(&self, prior: &UniformSphere) -> Tensor<1> {
        (self.kappa.clone() * self.mean_resultant_length() + self.log_normalizer())
            .add_scalar(prior.log_surface_area())
    }
}
