//! The vMF posterior's gradient through the rejection sampler is unbiased: the mean of
//! `∇_κ` and `∇_μ` of `f(z) = exp(aᵀz)` over many draws, with the correction term `g_cor`
//! attached by `rejection_corrected`, matches the derivative of `E_q[f]` computed by
//! quadrature against the exact vMF density, and the draw's own gradient (`g_rep` alone)
//! does not.

use crate::common;

use burn::tensor::{Tensor, TensorData};
use common::{host, mean_and_sd};
use elbo::distributions::{Bernoulli, UniformSphere, VonMisesFisher};
use elbo::models::Vae;
use elbo::objective::rejection_corrected;
use elbo::{Decoder, Encoder, LatentVariableModel};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::f64::consts::PI;

/// Composite Simpson weights on `n` (even) intervals of `[0, π]`: `(nodes, weights)`.
fn simpson(n: usize) -> (Vec<f64>, Vec<f64>) {
    let h = PI / n as f64;
    (0..=n)
        .map(|i| {
            let c = if i == 0 || i == n {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            (i as f64 * h, c * h / 3.0)
        })
        .unzip()
}

/// `E[g(aᵀz)]` under vMF(μ, κ) on `S^{d−1}` for `a = α μ + β u` (`u` a unit tangent
/// direction), by quadrature over the two angles of `aᵀz = α cos θ + β sin θ cos φ`
/// (`w = μᵀz = cos θ`, `uᵀv = cos φ`) against their exact densities, normalised
/// numerically so that no Bessel function enters:
/// `p(θ) ∝ e^{κ cos θ} sin^{d−2} θ` on `[0, π]`, and `p(φ) ∝ sin^{d−3} φ` on `[0, π]`
/// for `d ≥ 3` (`cos φ = ±1` with probability ½ each on the circle).
fn expectation_by_quadrature(
    d: usize,
    kappa: f64,
    alpha: f64,
    beta: f64,
    g: &dyn Fn(f64) -> f64,
) -> f64 {
    let (theta, w_theta) = simpson(2000);
    let (phi, w_phi) = simpson(200);
    let phi_density: Vec<f64> = phi
        .iter()
        .zip(&w_phi)
        .map(|(p, wp)| wp * p.sin().powi(d as i32 - 3))
        .collect();
    let phi_total: f64 = phi_density.iter().sum();
    let tangent_average = |w: f64, r: f64| -> f64 {
        if d == 2 {
            return 0.5 * (g(alpha * w + beta * r) + g(alpha * w - beta * r));
        }
        phi.iter()
            .zip(&phi_density)
            .map(|(p, density)| density * g(alpha * w + beta * r * p.cos()))
            .sum::<f64>()
            / phi_total
    };
    let (mut num, mut den) = (0.0, 0.0);
    for (t, wt) in theta.iter().zip(&w_theta) {
        // e^{κ (cos θ − 1)}: the constant e^{κ} cancels in the ratio.
        let density = wt * (kappa * (t.cos() - 1.0)).exp() * t.sin().powi(d as i32 - 2);
        num += density * tangent_average(t.cos(), t.sin());
        den += density;
    }
    num / den
}

/// `(dE/dκ, dE/dδ)` of `E[g(aᵀz)]` by central differences of the quadrature; `δ` turns
/// `μ` towards `u` (`μ' = cos δ μ + sin δ u`), which turns `a`'s components to
/// `(α cos δ + β sin δ, β cos δ − α sin δ)`.
fn reference_derivatives(
    d: usize,
    kappa: f64,
    alpha: f64,
    beta: f64,
    g: &dyn Fn(f64) -> f64,
) -> (f64, f64) {
    let h = 1e-3 * kappa.max(1.0);
    let dk = (expectation_by_quadrature(d, kappa + h, alpha, beta, g)
        - expectation_by_quadrature(d, kappa - h, alpha, beta, g))
        / (2.0 * h);
    let turned = |delta: f64| {
        let (s, c) = delta.sin_cos();
        expectation_by_quadrature(d, kappa, alpha * c + beta * s, beta * c - alpha * s, g)
    };
    let h = 1e-4;
    let dmu = (turned(h) - turned(-h)) / (2.0 * h);
    (dk, dmu)
}

/// The moment generating function `E[e^{aᵀz}] = C_d(κ) / C_d(‖κμ + a‖)`, a check of the
/// quadrature itself.
fn expectation_closed_form(d: usize, kappa: f64, alpha: f64, beta: f64) -> f64 {
    let rho = ((kappa + alpha).powi(2) + beta * beta).sqrt();
    (elbo::distributions::vmf_log_normalizer(d, kappa)
        - elbo::distributions::vmf_log_normalizer(d, rho))
    .exp()
}

/// One row's gradient estimates `(∂/∂κ, u·∇_μ)` of `f(z) = exp(aᵀz)` over `n` draws, with
/// and without the correction term.
struct Estimates {
    kappa: Vec<f64>,
    mu: Vec<f64>,
}

fn estimates(
    d: usize,
    kappa: f64,
    alpha: f64,
    beta: f64,
    n: usize,
    seed: u64,
    corrected: bool,
) -> Estimates {
    let device = common::device().autodiff();
    // μ = e_0, u = e_1.
    let mu_leaf = Tensor::<2>::zeros([n, d], &device)
        .slice_fill([0..n, 0..1], 1.0)
        .require_grad();
    let kappa_leaf = Tensor::<1>::full([n], kappa, &device).require_grad();
    let q = VonMisesFisher::new(mu_leaf.clone(), kappa_leaf.clone()).unwrap();
    let (z, log_accepted) = q.sample_and_log_accepted_with_rng(&mut StdRng::seed_from_u64(seed));
    let mut a = vec![0.0f32; d];
    a[0] = alpha as f32;
    a[1] = beta as f32;
    let a = Tensor::<2>::from_data(TensorData::new(a, [1, d]), &device);
    let f = (z * a).sum_dim(1).reshape([n]).exp();
    let f = if corrected {
        rejection_corrected(f, Some(log_accepted))
    } else {
        f
    };
    let grads = f.sum().backward();
    let kappa_grad = host(&kappa_leaf.grad(&grads).unwrap());
    let mu_grad = host(&mu_leaf.grad(&grads).unwrap().narrow(1, 1, 1).reshape([n]));
    Estimates {
        kappa: kappa_grad,
        mu: mu_grad,
    }
}

#[test]
fn quadrature_reference_matches_the_moment_generating_function() {
    // Simpson on 2000 × 200 nodes of smooth periodic-like integrands: 1e-7 relative.
    for d in [2usize, 3, 10] {
        for kappa in [0.5, 10.0, 100.0] {
            let q = expectation_by_quadrature(d, kappa, 1.0, 1.5, &f64::exp);
            let c = expectation_closed_form(d, kappa, 1.0, 1.5);
            assert!((q - c).abs() < 1e-7 * c, "d {d}, κ {kappa}: {q} vs {c}");
        }
    }
}

#[test]
fn the_corrected_gradient_is_unbiased_in_kappa_and_mu_and_the_uncorrected_is_not() {
    // 40,000 draws per (d, κ); the mean gradient must lie within 4 standard errors of the
    // quadrature's derivative (plus 1e-4 relative for the f32 graph and the differences).
    // The same draws without g_cor must miss somewhere by more than 6 standard errors:
    // the test would not notice a missing correction otherwise.
    let n = 40_000;
    let (alpha, beta) = (1.0, 1.5);
    let mut uncorrected_misses = Vec::new();
    for (i, d) in [2usize, 3, 10].into_iter().enumerate() {
        for (j, kappa) in [0.5, 2.0, 10.0, 100.0].into_iter().enumerate() {
            let (dk, dmu) = reference_derivatives(d, kappa, alpha, beta, &f64::exp);
            let seed = 100 + 10 * i as u64 + j as u64;
            let good = estimates(d, kappa, alpha, beta, n, seed, true);
            for (name, values, reference) in [("κ", &good.kappa, dk), ("μ", &good.mu, dmu)] {
                let (mean, sd) = mean_and_sd(values);
                let se = sd / (n as f64).sqrt();
                assert!(
                    (mean - reference).abs() < 4.0 * se + 1e-4 * reference.abs(),
                    "d {d}, κ {kappa}: ∂E/∂{name} {mean} ± {se} vs quadrature {reference}"
                );
            }
            let bad = estimates(d, kappa, alpha, beta, n, seed, false);
            let (mean, sd) = mean_and_sd(&bad.kappa);
            let z = (mean - dk).abs() / (sd / (n as f64).sqrt());
            if z > 6.0 {
                uncorrected_misses.push((d, kappa, z));
            }
        }
    }
    assert!(
        uncorrected_misses.len() >= 3,
        "without g_cor the κ-gradient should be visibly biased at small κ; misses: {uncorrected_misses:?}"
    );
}

/// An encoder that ignores its input and returns vMF(μ, κ) with the given (leaf) tensors.
struct FixedVmf {
    mu: Tensor<2>,
    kappa: Tensor<1>,
}

impl Encoder for FixedVmf {
    type Input = Tensor<2>;
    type Posterior = VonMisesFisher;

    fn encode(&self, _x: &Tensor<2>) -> VonMisesFisher {
        VonMisesFisher::new(self.mu.clone(), self.kappa.clone()).unwrap()
    }

    fn check_input(&self, _x: &Tensor<2>) -> elbo::Result<()> {
        Ok(())
    }
}

/// One Bernoulli pixel with logit `aᵀz`.
struct LinearLogit {
    a: Tensor<2>,
}

impl Decoder for LinearLogit {
    type Latent = Tensor<2>;
    type Likelihood = Bernoulli<2>;

    fn decode(&self, z: &Tensor<2>) -> Bernoulli<2> {
        Bernoulli::new(z.clone().matmul(self.a.clone()))
    }
}

#[test]
fn the_vae_elbo_carries_the_correction() {
    // The reconstruction term of `Vae::elbo` with a vMF posterior, for the pixel x = 1 with
    // logit aᵀz: f(z) = log σ(aᵀz). On the circle at κ = 2, where g_rep alone is a quarter of
    // the true κ-gradient (see above), the mean gradient over 40,000 rows must match the
    // quadrature within 4 standard errors.
    let (d, kappa, alpha, beta, n) = (2usize, 2.0, 1.0, 1.5, 40_000);
    let device = common::device().autodiff();
    device.seed(7);
    let mu = Tensor::<2>::zeros([n, d], &device)
        .slice_fill([0..n, 0..1], 1.0)
        .require_grad();
    let kappa_leaf = Tensor::<1>::full([n], kappa, &device).require_grad();
    let a = Tensor::<2>::from_floats([[alpha as f32], [beta as f32]], &device);
    let model = Vae::new(
        FixedVmf {
            mu: mu.clone(),
            kappa: kappa_leaf.clone(),
        },
        LinearLogit { a },
        UniformSphere::new(d).unwrap(),
    );
    let terms = model.elbo(&Tensor::<2>::ones([n, 1], &device)).unwrap();
    let grads = terms.reconstruction.sum().backward();
    let log_sigmoid = |s: f64| -(-s).exp().ln_1p();
    let (dk, dmu) = reference_derivatives(d, kappa, alpha, beta, &log_sigmoid);
    let kappa_grad = host(&kappa_leaf.grad(&grads).unwrap());
    let mu_grad = host(&mu.grad(&grads).unwrap().narrow(1, 1, 1).reshape([n]));
    for (name, values, reference) in [("κ", kappa_grad, dk), ("μ", mu_grad, dmu)] {
        let (mean, sd) = mean_and_sd(&values);
        let se = sd / (n as f64).sqrt();
        assert!(
            (mean - reference).abs() < 4.0 * se + 1e-4 * reference.abs(),
            "∂E/∂{name} {mean} ± {se} vs quadrature {reference}"
        );
    }
}
