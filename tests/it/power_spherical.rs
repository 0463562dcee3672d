//! Power Spherical against its exact Beta marginal (KS), its mean, Monte Carlo KL, and
//! digamma/trigamma against mpmath.
#![allow(clippy::excessive_precision)] // the reference table keeps mpmath's 17 digits

use crate::common;

use burn::tensor::{Tensor, TensorData};
use common::{ExactCdf, host, mean_and_sd};
use elbo::distributions::{PowerSpherical, UniformSphere};
use elbo::math::{digamma, lgamma, trigamma};
use elbo::{Distribution, Error, KlDivergence, Prior};
use rand::SeedableRng;
use rand::rngs::StdRng;

// import mpmath; mpmath.mp.dps = 40
// [(x, mpmath.digamma(x), mpmath.polygamma(1, x)) for x in [1e-3,0.3,1.0,2.5,7.0,55.5,1e4]]
const PSI_REF: [(f64, f64, f64); 7] = [
    (0.001, -1000.5755719318103, 1000001.6425331958),
    (0.3, -3.5025242222001331, 12.245364546107731),
    (1.0, -0.57721566490153286, 1.6449340668482264),
    (2.5, 0.70315664064524319, 0.49035775610023486),
    (7.0, 1.8727843350984671, 0.15354517795933755),
    (55.5, 4.0073469585404439, 0.018181317363221761),
    (10000.0, 9.2102903711428494, 0.00010000500016666667),
];

#[test]
fn digamma_and_trigamma_match_mpmath() {
    for (x, psi, psi1) in PSI_REF {
        // Asymptotic series truncated at x^-10 for x ≥ 10: error < 3e-14; the recurrence adds
        // a few roundings of terms up to 1/x.
        assert!(
            (digamma(x) - psi).abs() < 1e-12 * psi.abs().max(1.0),
            "ψ({x}) = {} vs {psi}",
            digamma(x)
        );
        assert!(
            (trigamma(x) / psi1 - 1.0).abs() < 1e-12,
            "ψ'({x}) = {} vs {psi1}",
            trigamma(x)
        );
    }
    assert!(digamma(0.0).is_nan() && trigamma(-1.0).is_nan());
}

fn direction(d: usize) -> Vec<f64> {
    let v: Vec<f64> = (0..d).map(|i| ((i as f64) * 0.7 + 1.1).cos()).collect();
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

#[test]
fn sampler_matches_the_exact_marginal_and_mean() {
    // n = 4000 per (d, κ), seed 77; KS at α = 0.001 (1.949/√n); mean within 4 SE.
    let device = common::device();
    device.seed(77);
    let n = 4000;
    let mut rng = StdRng::seed_from_u64(77);
    for d in [3usize, 10, 100] {
        let mu_host = direction(d);
        let row: Vec<f32> = mu_host.iter().map(|&v| v as f32).collect();
        let mu = Tensor::<2>::from_data(TensorData::new(row, [1, d]), &device).repeat_dim(0, n);
        for k in [0.1f64, 1.0, 10.0, 100.0, 1e4] {
            let q = PowerSpherical::new(mu.clone(), Tensor::full([n], k, &device)).unwrap();
            let z: Vec<f32> = q
                .sample_with_rng(&mut rng)
                .try_into_vec_as::<f32>()
                .unwrap();
            let w: Vec<f64> = z
                .chunks(d)
                .map(|row| {
                    let norm: f64 = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
                    assert!((norm - 1.0).abs() < 1e-5, "‖z‖ = {norm}");
                    row.iter().zip(&mu_host).map(|(&a, &b)| a as f64 * b).sum()
                })
                .collect();
            let (mean, sd) = mean_and_sd(&w);
            let expected = k / (d as f64 - 1.0 + k);
            assert!(
                (mean - expected).abs() <= 4.0 * sd / (n as f64).sqrt() + 1e-6,
                "d {d}, κ {k}: {mean} vs {expected}"
            );
            // u = 1 − w has density ∝ (2 − u)^κ (u(2 − u))^{(d−3)/2} on [0, 2].
            let exact = ExactCdf::new(|u| {
                k * (2.0 - u).max(1e-300).ln()
                    + (d as f64 - 3.0) / 2.0 * (u * (2.0 - u)).max(1e-300).ln()
            });
            let ks = exact.ks_statistic(&w);
            assert!(ks < 1.949 / (n as f64).sqrt(), "d {d}, κ {k}: KS {ks}");
        }
    }
}

#[test]
fn kl_matches_monte_carlo_and_normalizer_gradient_matches_finite_difference() {
    // 20,000 draws, seed 31: |closed form − MC| < 4 SE.
    let device = common::device();
    device.seed(31);
    let (n, d, k) = (20_000, 6, 7.5f32);
    let mu = Tensor::<2>::zeros([n, d], &device).slice_fill([0..n, 1..2], 1.0);
    let q = PowerSpherical::new(mu, Tensor::full([n], k, &device)).unwrap();
    let prior = UniformSphere::new(d).unwrap();
    let z = q.sample_with_rng(&mut StdRng::seed_from_u64(31));
    let mc = host(&(q.log_prob(&z) - prior.log_prob(&z)));
    let (mean, sd) = mean_and_sd(&mc);
    let se = sd / (n as f64).sqrt();
    let kl = q.kl(&prior).narrow(0, 0, 1).into_scalar::<f32>() as f64;
    assert!((mean - kl).abs() < 4.0 * se, "KL {kl} vs MC {mean} ± {se}");

    // d/dκ ln C against a central difference of the closed form in f64 (h = 1e-5 κ).
    let log_c = |k: f64| {
        let (b, a) = ((d as f64 - 1.0) / 2.0, (d as f64 - 1.0) / 2.0 + k);
        -((a + b) * std::f64::consts::LN_2 + b * std::f64::consts::PI.ln() + lgamma(a)
            - lgamma(a + b))
    };
    let ad = common::device().autodiff();
    for k in [0.5f64, 7.5, 300.0] {
        let kappa = Tensor::<1>::from_floats([k as f32], &ad).require_grad();
        let q = PowerSpherical::new(Tensor::<2>::ones([1, d], &ad), kappa.clone()).unwrap();
        let value = q.log_normalizer();
        assert!(
            (value.clone().into_scalar::<f32>() as f64 - log_c(k)).abs()
                < 1e-4 * log_c(k).abs().max(1.0)
        );
        let got = kappa
            .grad(&value.sum().backward())
            .unwrap()
            .into_scalar::<f32>() as f64;
        let h = 1e-5 * k;
        let fd = (log_c(k + h) - log_c(k - h)) / (2.0 * h);
        assert!(
            (got - fd).abs() < 1e-5 * fd.abs().max(1e-3),
            "κ {k}: {got} vs {fd}"
        );
    }
}

#[test]
fn bad_parameters_are_errors() {
    let device = common::device();
    let mu = Tensor::<2>::from_floats([[0.0, 1.0]], &device);
    assert!(matches!(
        PowerSpherical::new(mu.clone(), Tensor::from_floats([0.0], &device)),
        Err(Error::InvalidConfig { field: "kappa", .. })
    ));
    assert!(matches!(
        PowerSpherical::new(mu, Tensor::from_floats([f32::NAN], &device)),
        Err(Error::InvalidConfig { field: "kappa", .. })
    ));
    assert!(
        PowerSpherical::new(
            Tensor::<2>::zeros([1, 2], &device),
            Tensor::from_floats([1.0], &device)
        )
        .is_err()
    );
    assert!(
        PowerSpherical::new(
            Tensor::<2>::ones([1, 1], &device),
            Tensor::from_floats([1.0], &device)
        )
        .is_err()
    );
}
