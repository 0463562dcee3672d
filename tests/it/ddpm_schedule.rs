//! DDPM schedule and forward process: the linear and cosine tables against an independent
//! Python computation, the forward posterior against the Gaussian-product formula, the
//! moments of `q(x_t | x_0)`, the exact parameterisation conversions, DDIM sub-sequences and
//! bad input.

use crate::common;

use burn::tensor::{Device, Tensor};
use common::{host, mean_and_sd};
use elbo::Error;
use elbo::models::ddpm::{
    BetaSchedule, MAX_BETA, NoiseSchedule, eps_from_v, eps_from_x0, per_row, q_posterior, q_sample,
    v_from, x0_from_eps, x0_from_v,
};
use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;

fn host_normal(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample::<f64, _>(StandardNormal) as f32)
        .collect()
}

fn tensor2(values: &[f32], dims: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::<1>::from_floats(values, device).reshape(dims)
}

/// `|actual − expected| ≤ rel · |expected|` (so an expected 0 must be matched exactly).
fn assert_rel(actual: f64, expected: f64, rel: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= rel * expected.abs(),
        "{what}: got {actual:e}, expected {expected:e} (relative tolerance {rel:e})"
    );
}

/// One row of the reference tables: `(t, ᾱ_t, β̃_t, coef1_t, coef2_t)`.
type Row = (usize, f64, f64, f64, f64);

/// Checks a schedule against Python's numbers. Tolerance 1e-12 relative: both sides are f64
/// and compute the same closed forms (the products `ᾱ_t` accumulate at most 1000 roundings
/// of 1.1e-16, ~1e-13; `cos` may differ by an ulp between libms), so anything larger than
/// 1e-12 is a formula or indexing error, not rounding.
fn check_schedule(schedule: &NoiseSchedule, beta_1: f64, beta_t: f64, rows: &[Row]) {
    const REL: f64 = 1e-12;
    let steps = schedule.steps();
    assert_rel(schedule.beta(1), beta_1, REL, "β_1");
    assert_rel(schedule.beta(steps), beta_t, REL, "β_T");
    assert_eq!(schedule.alpha_bar(0), 1.0);
    for &(t, alpha_bar, post_var, coef1, coef2) in rows {
        assert_rel(schedule.alpha_bar(t), alpha_bar, REL, &format!("ᾱ_{t}"));
        assert_rel(
            schedule.alpha(t),
            1.0 - schedule.beta(t),
            0.0,
            &format!("α_{t}"),
        );
        assert_rel(
            schedule.posterior_variance(t),
            post_var,
            REL,
            &format!("β̃_{t}"),
        );
        assert_rel(
            schedule.posterior_mean_coef1(t),
            coef1,
            REL,
            &format!("coef1_{t}"),
        );
        assert_rel(
            schedule.posterior_mean_coef2(t),
            coef2,
            REL,
            &format!("coef2_{t}"),
        );
        // The clipped log variance: ln β̃_t, and ln β̃_2 at t = 1 (where β̃_1 = 0).
        let expected_log = if t == 1 {
            schedule.posterior_variance(2).ln()
        } else {
            post_var.ln()
        };
        assert_rel(
            schedule.posterior_log_variance_clipped(t),
            expected_log,
            REL,
            &format!("clipped ln β̃_{t}"),
        );
    }
    assert_eq!(schedule.betas().len(), steps);
    assert_eq!(schedule.alpha_bars().len(), steps);
}

// The reference values below were printed by this Python 3 script (standard library only):
//
// import math
// def linear(T, b0, b1):
//     if T == 1: return [b0]
//     return [b0 * (1 - i / (T - 1)) + b1 * (i / (T - 1)) for i in range(T)]
// def cosine(T, s=0.008):
//     f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
//     ab = lambda t: f(t) / f(0)
//     return [min(1 - ab(t) / ab(t - 1), 0.999) for t in range(1, T + 1)]
// def tables(betas):
//     ab, p = [1.0], 1.0
//     for b in betas:
//         p *= 1 - b; ab.append(p)           # ab[t] = alpha_bar_t, ab[0] = 1
//     return ab
// def report(name, betas, ts):
//     ab = tables(betas); T = len(betas)
//     print(name, "beta_1 =", repr(betas[0]), "beta_T =", repr(betas[-1]))
//     for t in ts:
//         b = betas[t - 1]
//         pv = b * (1 - ab[t - 1]) / (1 - ab[t])
//         c1 = b * math.sqrt(ab[t - 1]) / (1 - ab[t])
//         c2 = (1 - ab[t - 1]) * math.sqrt(1 - b) / (1 - ab[t])
//         print(f"  ({t}, {ab[t]!r}, {pv!r}, {c1!r}, {c2!r}),")
// report("linear T=1000", linear(1000, 1e-4, 0.02), [1, 2, 10, 500, 999, 1000])
// report("linear T=10 (1e-4*100, min(0.02*100, 0.999))",
//        linear(10, 1e-4 * 100.0, min(0.02 * 100.0, 0.999)), [1, 2, 5, 10])
// report("cosine T=1000", cosine(1000), [1, 2, 10, 500, 999, 1000])
// report("cosine T=10", cosine(10), [1, 2, 5, 10])

/// Ho et al.'s linear schedule at T = 1000, and its improved-DDPM scaling at T = 10
/// (β_start = 1e-4·100, β_end = 0.02·100 capped at 0.999), against Python; 1e-12 relative
/// (see [`check_schedule`]).
#[test]
fn linear_schedule_matches_python_reference() {
    assert_eq!(
        BetaSchedule::linear_default(1000),
        BetaSchedule::Linear {
            beta_start: 1e-4,
            beta_end: 0.02
        }
    );
    let schedule = NoiseSchedule::new(&BetaSchedule::linear_default(1000), 1000).unwrap();
    assert_eq!(schedule.steps(), 1000);
    check_schedule(
        &schedule,
        0.0001,
        0.02,
        &[
            (1, 0.9999, 0.0, 1.0000000000001101, 0.0),
            (
                2,
                0.9997800920720721,
                5.4531876613021935e-05,
                0.5452914995102903,
                0.4547084989905303,
            ),
            (
                10,
                0.9981052047858344,
                0.00023818202782345307,
                0.14727371743084547,
                0.8527262261023779,
            ),
            (
                500,
                0.07858724288177821,
                0.01003135541461369,
                0.0030700711142649766,
                0.9941066702101666,
            ),
            (
                999,
                4.118193638138444e-05,
                0.0199800633042432,
                0.00012952423622957632,
                0.9899587234910675,
            ),
            (
                1000,
                4.0358297653756754e-05,
                0.01999998352656061,
                0.00012835148717224682,
                0.9899486782675173,
            ),
        ],
    );

    let kind = BetaSchedule::linear_default(10);
    match kind {
        BetaSchedule::Linear {
            beta_start,
            beta_end,
        } => {
            assert_rel(beta_start, 0.01, 1e-12, "scaled β_start at T = 10");
            assert_eq!(beta_end, MAX_BETA, "scaled β_end at T = 10 is capped");
        }
        other => panic!("linear_default gave {other:?}"),
    }
    let schedule = NoiseSchedule::new(&kind, 10).unwrap();
    check_schedule(
        &schedule,
        0.01,
        0.999,
        &[
            (1, 0.99, 0.0, 0.9999999999999991, 0.0),
            (
                2,
                0.8713099999999999,
                0.009316099843724368,
                0.9269402307336685,
                0.07289939952728412,
            ),
            (
                5,
                0.24393013530388516,
                0.3310996346242536,
                0.39581971572647273,
                0.5464269098962218,
            ),
            (
                10,
                8.69961324588809e-07,
                0.9981317769727784,
                0.02946563731777275,
                0.031595293495747606,
            ),
        ],
    );
}

/// Improved DDPM's cosine schedule (s = 0.008, β clipped at 0.999) at T = 1000 and T = 10,
/// against Python; 1e-12 relative (see [`check_schedule`]).
#[test]
fn cosine_schedule_matches_python_reference() {
    let schedule = NoiseSchedule::new(&BetaSchedule::cosine_default(), 1000).unwrap();
    check_schedule(
        &schedule,
        4.128422482196914e-05,
        0.999,
        &[
            (1, 0.999958715775178, 0.0, 1.0, 0.0),
            (
                2,
                0.9999125759273678,
                2.178949614569182e-05,
                0.5277814093344871,
                0.47221859042675934,
            ),
            (
                10,
                0.9993687184016583,
                7.356945118997592e-05,
                0.13462764457592058,
                0.8653723496168824,
            ),
            (
                500,
                0.49384359044063775,
                0.003136199904057811,
                0.004374588226145536,
                0.9953516194721715,
            ),
            (
                999,
                2.428766907034852e-06,
                0.7499939281844208,
                0.002337676189817341,
                0.49999696394667836,
            ),
            (
                1000,
                2.4287669070348542e-09,
                0.9989975760881921,
                0.0015568917154901694,
                0.03162269987413465,
            ),
        ],
    );
    let schedule = NoiseSchedule::new(&BetaSchedule::Cosine { s: 0.008 }, 10).unwrap();
    check_schedule(
        &schedule,
        0.02790726288603096,
        0.999,
        &[
            (1, 0.972092737113969, 0.0, 1.0, 0.0),
            (
                2,
                0.8987059205995089,
                0.02079905158062072,
                0.7348185947295883,
                0.2649037668698122,
            ),
            (
                5,
                0.4938435904406378,
                0.16525901461462864,
                0.37721744808828966,
                0.6082517346152161,
            ),
            (
                10,
                2.4091724140085884e-05,
                0.9749558559515845,
                0.15506361058371124,
                0.03086167290216254,
            ),
        ],
    );
}

/// A custom list is used as given: ᾱ is the running product, computed by hand. Exact up to
/// f64 rounding of three products (1e-15 absolute).
#[test]
fn custom_schedule_is_used_as_given() {
    let schedule = NoiseSchedule::new(&BetaSchedule::Custom(vec![0.1, 0.2, 0.5]), 3).unwrap();
    assert_eq!(schedule.betas(), &[0.1, 0.2, 0.5]);
    for (t, expected) in [(0, 1.0), (1, 0.9), (2, 0.9 * 0.8), (3, 0.9 * 0.8 * 0.5)] {
        assert!((schedule.alpha_bar(t) - expected).abs() < 1e-15, "ᾱ_{t}");
    }
    // T = 1: β̃_1 = 0 has no log, so the clipped log variance falls back to ln β_1.
    let single = NoiseSchedule::new(&BetaSchedule::Custom(vec![0.3]), 1).unwrap();
    assert_eq!(single.posterior_log_variance_clipped(1), 0.3f64.ln());
    assert_eq!(single.subsequence(1).unwrap(), vec![1]);
}

/// `q_posterior` against Bayes' rule written as a product of Gaussians, computed on the host
/// in f64 from the schedule's β and ᾱ (Ho et al. eq. 7 is never used on this side):
///
/// ```text
/// q(x_{t−1} | x_t, x_0) ∝ N(x_t; √α_t x_{t−1}, β_t) · N(x_{t−1}; √ᾱ_{t−1} x_0, 1 − ᾱ_{t−1})
/// precision = α_t / β_t + 1 / (1 − ᾱ_{t−1})
/// mean      = (√α_t x_t / β_t + √ᾱ_{t−1} x_0 / (1 − ᾱ_{t−1})) / precision
/// ```
/// and at t = 1 (where 1 − ᾱ_0 = 0 pins x_0) mean = x_0, log variance = ln β̃_2.
/// Tolerance 1e-5 absolute: the tensor side is f32 (inputs |x| ≲ 4, three roundings of
/// ~6e-8 relative each, ≲ 1e-6), so 1e-5 leaves a 10× margin while any wrong coefficient
/// (they differ from each other by ≥ 1e-4 between adjacent t) fails.
#[test]
fn q_posterior_matches_gaussian_product() {
    let device = common::device();
    let mut rng = StdRng::seed_from_u64(7);
    let t = [1, 2, 3, 10, 100, 500, 999, 1000];
    let (batch, d) = (t.len(), 5);
    for kind in [
        BetaSchedule::linear_default(1000),
        BetaSchedule::cosine_default(),
    ] {
        let schedule = NoiseSchedule::new(&kind, 1000).unwrap();
        let x0 = host_normal(&mut rng, batch * d);
        let xt = host_normal(&mut rng, batch * d);
        let (mean, log_var) = q_posterior(
            &schedule,
            tensor2(&x0, [batch, d], &device),
            tensor2(&xt, [batch, d], &device),
            &t,
        )
        .unwrap();
        assert_eq!(mean.dims(), [batch, d]);
        assert_eq!(log_var.dims(), [batch, d]);
        let (mean, log_var) = (host(&mean), host(&log_var));
        for (row, &step) in t.iter().enumerate() {
            let (expected_log_var, coef_x0, coef_xt) = if step == 1 {
                let b2 = schedule.beta(2);
                let prev = schedule.alpha_bar(1);
                let precision = (1.0 - b2) / b2 + 1.0 / (1.0 - prev);
                ((1.0 / precision).ln(), 1.0, 0.0)
            } else {
                let beta = schedule.beta(step);
                let prev = schedule.alpha_bar(step - 1);
                let precision = (1.0 - beta) / beta + 1.0 / (1.0 - prev);
                (
                    (1.0 / precision).ln(),
                    prev.sqrt() / (1.0 - prev) / precision,
                    (1.0 - beta).sqrt() / beta / precision,
                )
            };
            for j in 0..d {
                let i = row * d + j;
                let expected = coef_x0 * x0[i] as f64 + coef_xt * xt[i] as f64;
                assert!(
                    (mean[i] - expected).abs() < 1e-5,
                    "{kind:?} t = {step}: mean {} vs {expected}",
                    mean[i]
                );
                assert!(
                    (log_var[i] - expected_log_var).abs() < 1e-5,
                    "{kind:?} t = {step}: log_var {} vs {expected_log_var}",
                    log_var[i]
                );
            }
        }
    }
}

/// For a fixed x_0 and N = 20,000 standard-normal noise draws (host StdRng, seed 42), the
/// sample mean and variance of each column of x_t match √ᾱ_t x_0 and 1 − ᾱ_t within 4
/// standard errors: se(mean) = √((1 − ᾱ_t)/N), se(var) = (1 − ᾱ_t)·√(2/(N − 1)) (Normal
/// data). 3 timesteps × 3 columns × 2 statistics = 18 checks, each failing by chance with
/// probability 6e-5, so ~1e-3 in all (and the seed is fixed).
#[test]
fn q_sample_moments_match_marginal() {
    let device = common::device();
    let mut rng = StdRng::seed_from_u64(42);
    let schedule = NoiseSchedule::new(&BetaSchedule::linear_default(1000), 1000).unwrap();
    let n = 20_000;
    let x0_row = [1.5f32, -0.5, 0.0];
    let d = x0_row.len();
    let x0: Vec<f32> = (0..n).flat_map(|_| x0_row).collect();
    for step in [1, 250, 1000] {
        let noise = host_normal(&mut rng, n * d);
        let xt = q_sample(
            &schedule,
            tensor2(&x0, [n, d], &device),
            &vec![step; n],
            tensor2(&noise, [n, d], &device),
        )
        .unwrap();
        let xt = host(&xt);
        let ab = schedule.alpha_bar(step);
        for (j, &x0j) in x0_row.iter().enumerate() {
            let column: Vec<f64> = (0..n).map(|i| xt[i * d + j]).collect();
            let (mean, sd) = mean_and_sd(&column);
            let expected_mean = ab.sqrt() * x0j as f64;
            let expected_var = 1.0 - ab;
            let se_mean = (expected_var / n as f64).sqrt();
            let se_var = expected_var * (2.0 / (n - 1) as f64).sqrt();
            assert!(
                (mean - expected_mean).abs() < 4.0 * se_mean,
                "t = {step}, column {j}: mean {mean} vs {expected_mean} (se {se_mean})"
            );
            assert!(
                (sd * sd - expected_var).abs() < 4.0 * se_var,
                "t = {step}, column {j}: variance {} vs {expected_var} (se {se_var})",
                sd * sd
            );
        }
    }
}

/// The conversions invert each other: x_0 → (x_t, ε) → x_0 and ε, v round trips, at small,
/// middle and large t for both schedules (mixed t within one batch).
///
/// Tolerance: f32 arithmetic on |values| ≲ 5 leaves an error of a few roundings,
/// ≲ 10 · 6e-8 · 5 ≈ 3e-6, before any division. `x0_from_v`, `eps_from_v` and `v_from`
/// are rotations (no amplification): 1e-4. Recovering ε from (x_t, x_0) divides that
/// error by √(1 − ᾱ_t) and recovering x_0 from (x_t, ε) divides it by √ᾱ_t; that amplification
/// κ_t = max(1/√ᾱ_t, 1/√(1 − ᾱ_t)) reaches ~160 (linear, t = T) and ~2e4 (cosine,
/// t = T), so those two round trips get 1e-4 · max(1, κ_t / 10) — still far below any
/// coefficient error, which would show up at O(1).
#[test]
fn conversions_round_trip() {
    let device = common::device();
    let mut rng = StdRng::seed_from_u64(3);
    let t = [1, 2, 10, 250, 500, 750, 999, 1000];
    let (batch, d) = (t.len(), 16);
    for kind in [
        BetaSchedule::linear_default(1000),
        BetaSchedule::cosine_default(),
    ] {
        let schedule = NoiseSchedule::new(&kind, 1000).unwrap();
        let x0_host = host_normal(&mut rng, batch * d);
        let eps_host = host_normal(&mut rng, batch * d);
        let x0 = tensor2(&x0_host, [batch, d], &device);
        let eps = tensor2(&eps_host, [batch, d], &device);
        let xt = q_sample(&schedule, x0.clone(), &t, eps.clone()).unwrap();
        let v = v_from(&schedule, x0.clone(), eps.clone(), &t).unwrap();

        let eps_back = host(&eps_from_x0(&schedule, xt.clone(), x0.clone(), &t).unwrap());
        let x0_back = host(&x0_from_eps(&schedule, xt.clone(), eps.clone(), &t).unwrap());
        let x0_via_v = host(&x0_from_v(&schedule, xt.clone(), v.clone(), &t).unwrap());
        let eps_via_v = host(&eps_from_v(&schedule, xt.clone(), v.clone(), &t).unwrap());
        // v recomputed from the converted pair (x0_from_v, eps_from_v) is v again.
        let x0_v = x0_from_v(&schedule, xt.clone(), v.clone(), &t).unwrap();
        let eps_v = eps_from_v(&schedule, xt.clone(), v.clone(), &t).unwrap();
        let v_again = host(&v_from(&schedule, x0_v, eps_v, &t).unwrap());
        let v = host(&v);

        for (row, &step) in t.iter().enumerate() {
            let ab = schedule.alpha_bar(step);
            let kappa = (1.0 / ab.sqrt()).max(1.0 / (1.0 - ab).sqrt());
            let loose = 1e-4 * (kappa / 10.0).max(1.0);
            for j in 0..d {
                let i = row * d + j;
                let (x0_i, eps_i) = (x0_host[i] as f64, eps_host[i] as f64);
                let checks = [
                    ("eps_from_x0", eps_back[i], eps_i, loose),
                    ("x0_from_eps", x0_back[i], x0_i, loose),
                    ("x0_from_v", x0_via_v[i], x0_i, 1e-4),
                    ("eps_from_v", eps_via_v[i], eps_i, 1e-4),
                    ("v_from(x0_from_v, eps_from_v)", v_again[i], v[i], 1e-4),
                ];
                for (name, got, expected, tol) in checks {
                    assert!(
                        (got - expected).abs() < tol,
                        "{kind:?} t = {step}: {name} gave {got}, expected {expected} (tol {tol:e})"
                    );
                }
            }
        }
    }
}

/// v against its definition v = √ᾱ_t ε − √(1 − ᾱ_t) x_0 computed on the host in f64, and
/// the rotation identity x_t² + v² = x_0² + ε² elementwise (x_t = cos φ x_0 + sin φ ε,
/// v = cos φ ε − sin φ x_0). Tolerance 1e-5 absolute: a few f32 roundings on |values| ≲ 5
/// (squares ≲ 25, so the identity gets 1e-5 · 25 relative room: 2.5e-4 absolute).
#[test]
fn v_matches_definition_and_rotates() {
    let device = common::device();
    let mut rng = StdRng::seed_from_u64(5);
    let schedule = NoiseSchedule::new(&BetaSchedule::cosine_default(), 1000).unwrap();
    let t = [1, 50, 500, 950, 1000];
    let (batch, d) = (t.len(), 8);
    let x0 = host_normal(&mut rng, batch * d);
    let eps = host_normal(&mut rng, batch * d);
    let x0_t = tensor2(&x0, [batch, d], &device);
    let eps_t = tensor2(&eps, [batch, d], &device);
    let v = host(&v_from(&schedule, x0_t.clone(), eps_t.clone(), &t).unwrap());
    let xt = host(&q_sample(&schedule, x0_t, &t, eps_t).unwrap());
    for (row, &step) in t.iter().enumerate() {
        let ab = schedule.alpha_bar(step);
        for j in 0..d {
            let i = row * d + j;
            let (x, e) = (x0[i] as f64, eps[i] as f64);
            let expected = ab.sqrt() * e - (1.0 - ab).sqrt() * x;
            assert!(
                (v[i] - expected).abs() < 1e-5,
                "t = {step}: v {} vs {expected}",
                v[i]
            );
            let lhs = xt[i] * xt[i] + v[i] * v[i];
            let rhs = x * x + e * e;
            assert!(
                (lhs - rhs).abs() < 2.5e-4,
                "t = {step}: |(x_t, v)|² {lhs} vs {rhs}"
            );
        }
    }
}

/// `per_row` builds a `[n, 1]` column that scales rows (exact: small integers in f32).
#[test]
fn per_row_scales_each_row() {
    let device = common::device();
    let column = per_row(&[1.0, -2.0, 0.5], &device);
    assert_eq!(column.dims(), [3, 1]);
    let scaled = host(&(Tensor::<2>::ones([3, 2], &device) * column));
    assert_eq!(scaled, vec![1.0, 1.0, -2.0, -2.0, 0.5, 0.5]);
}

/// DDIM sub-sequences: increasing, in 1..=T, ending at T, of the requested length;
/// count = T is every step and count = 1 is [T]; 0 and T + 1 are errors.
#[test]
fn subsequence_is_evenly_spaced_and_ends_at_t() {
    for steps in [1usize, 7, 10, 1000] {
        let schedule = NoiseSchedule::new(&BetaSchedule::Custom(vec![0.01; steps]), steps).unwrap();
        assert_eq!(
            schedule.subsequence(steps).unwrap(),
            (1..=steps).collect::<Vec<_>>()
        );
        assert_eq!(schedule.subsequence(1).unwrap(), vec![steps]);
        for count in 1..=steps.min(60) {
            let taus = schedule.subsequence(count).unwrap();
            assert_eq!(taus.len(), count);
            assert_eq!(*taus.last().unwrap(), steps);
            assert!(taus[0] >= 1);
            // Even spacing: gaps are ⌊T/count⌋ or ⌈T/count⌉.
            let (lo, hi) = (steps / count, steps.div_ceil(count));
            let mut prev = 0;
            for &tau in &taus {
                assert!(tau > prev, "T = {steps}, count = {count}: {taus:?}");
                assert!(
                    (lo..=hi).contains(&(tau - prev)),
                    "T = {steps}, count = {count}: uneven gap in {taus:?}"
                );
                prev = tau;
            }
        }
        assert!(matches!(
            schedule.subsequence(0),
            Err(Error::InvalidConfig { field: "count", .. })
        ));
        assert!(matches!(
            schedule.subsequence(steps + 1),
            Err(Error::InvalidConfig { field: "count", .. })
        ));
    }
    let schedule = NoiseSchedule::new(&BetaSchedule::linear_default(1000), 1000).unwrap();
    assert_eq!(schedule.subsequence(4).unwrap(), vec![250, 500, 750, 1000]);
}

/// Bad schedules are errors that name the field (and, for β, the offending index).
#[test]
fn bad_schedules_are_errors() {
    for (betas, index) in [
        (vec![0.1, 0.2, 0.0], 2),
        (vec![1.0, 0.2, 0.3], 0),
        (vec![0.1, f64::NAN, 0.3], 1),
        (vec![0.1, -0.2, 0.3], 1),
        (vec![0.1, 0.2, f64::INFINITY], 2),
    ] {
        match NoiseSchedule::new(&BetaSchedule::Custom(betas.clone()), 3) {
            Err(Error::InvalidConfig { field, value, .. }) => {
                assert_eq!(field, "betas");
                assert!(
                    value.contains(&format!("index {index}")),
                    "{betas:?}: message {value:?} should name index {index}"
                );
            }
            other => panic!("{betas:?}: expected InvalidConfig, got {other:?}"),
        }
    }
    let field = |r: Result<NoiseSchedule, Error>| match r {
        Err(Error::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    // Empty list, a list of the wrong length, zero steps.
    assert_eq!(
        field(NoiseSchedule::new(&BetaSchedule::Custom(vec![]), 0)),
        "steps"
    );
    assert_eq!(
        field(NoiseSchedule::new(&BetaSchedule::Custom(vec![]), 1)),
        "steps"
    );
    assert_eq!(
        field(NoiseSchedule::new(&BetaSchedule::Custom(vec![0.1, 0.2]), 3)),
        "steps"
    );
    assert_eq!(
        field(NoiseSchedule::new(&BetaSchedule::linear_default(10), 0)),
        "steps"
    );
    assert_eq!(
        field(NoiseSchedule::new(&BetaSchedule::cosine_default(), 0)),
        "steps"
    );
    // Linear end points outside (0, 1), cosine offsets that are negative or NaN.
    let linear = |beta_start, beta_end| BetaSchedule::Linear {
        beta_start,
        beta_end,
    };
    assert_eq!(
        field(NoiseSchedule::new(&linear(0.0, 0.02), 10)),
        "beta_start"
    );
    assert_eq!(
        field(NoiseSchedule::new(&linear(f64::NAN, 0.02), 10)),
        "beta_start"
    );
    assert_eq!(
        field(NoiseSchedule::new(&linear(1e-4, 1.0), 10)),
        "beta_end"
    );
    assert_eq!(
        field(NoiseSchedule::new(&BetaSchedule::Cosine { s: -0.1 }, 10)),
        "s"
    );
    assert_eq!(
        field(NoiseSchedule::new(
            &BetaSchedule::Cosine { s: f64::NAN },
            10
        )),
        "s"
    );
}

/// Timesteps outside 1..=T, t slices of the wrong length and mismatched shapes are errors in
/// every forward-process function, never panics.
#[test]
fn bad_forward_inputs_are_errors() {
    let device = common::device();
    let schedule = NoiseSchedule::new(&BetaSchedule::linear_default(10), 10).unwrap();
    assert!(schedule.check_step(1).is_ok() && schedule.check_step(10).is_ok());
    for bad in [0, 11, usize::MAX] {
        assert!(matches!(
            schedule.check_step(bad),
            Err(Error::InvalidConfig { field: "t", .. })
        ));
    }
    let x = Tensor::<2>::zeros([2, 3], &device);
    let wrong = Tensor::<2>::zeros([2, 4], &device);
    let good_t = [1, 10];
    type Op = fn(&NoiseSchedule, Tensor<2>, Tensor<2>, &[usize]) -> elbo::Result<Tensor<2>>;
    let ops: [(&str, Op); 7] = [
        ("q_sample", |s, a, b, t| q_sample(s, a, t, b)),
        ("q_posterior", |s, a, b, t| {
            q_posterior(s, a, b, t).map(|(m, _)| m)
        }),
        ("eps_from_x0", eps_from_x0),
        ("x0_from_eps", x0_from_eps),
        ("v_from", v_from),
        ("x0_from_v", x0_from_v),
        ("eps_from_v", eps_from_v),
    ];
    for (name, op) in ops {
        assert!(
            op(&schedule, x.clone(), x.clone(), &good_t).is_ok(),
            "{name}"
        );
        assert!(
            matches!(
                op(&schedule, x.clone(), wrong.clone(), &good_t),
                Err(Error::ShapeMismatch { .. })
            ),
            "{name}: mismatched second tensor"
        );
        for t in [&[1usize][..], &[1, 2, 3][..], &[][..]] {
            assert!(
                matches!(
                    op(&schedule, x.clone(), x.clone(), t),
                    Err(Error::ShapeMismatch { .. })
                ),
                "{name}: t of length {}",
                t.len()
            );
        }
        for t in [[0, 1], [1, 11]] {
            assert!(
                matches!(
                    op(&schedule, x.clone(), x.clone(), &t),
                    Err(Error::InvalidConfig { field: "t", .. })
                ),
                "{name}: t = {t:?}"
            );
        }
    }
}
