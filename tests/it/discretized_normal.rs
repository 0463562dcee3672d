//! DDPM's discretized Normal decoder against an independent f64 host implementation of
//! Ho et al. 2020, eq. 13 (Φ from an f64 `erfc`, itself checked against Python's
//! `math.erfc`), its sampler against those bin masses with a chi-square test, and its
//! input checks.
//!
//! Every host reference uses the f32-rounded `x`, `μ` and `log σ` the library sees, so the
//! comparisons measure the library's arithmetic, not the rounding of its inputs.

use crate::common;

use std::f64::consts::{PI, SQRT_2};

use burn::tensor::{Device, Tensor, TensorData};
use elbo::distributions::DiscretizedNormal;
use elbo::{Distribution, Error};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const H: f64 = 1.0 / 255.0;

fn t2(values: Vec<f32>, dims: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, dims), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    common::host(&t)
}

/// `v` rounded to f32 and back.
fn f32r(v: f64) -> f64 {
    v as f32 as f64
}

/// Grey level `k` in `[−1, 1]` space, as the f32 the library sees.
fn level(k: usize) -> f64 {
    f32r(2.0 * k as f64 / 255.0 - 1.0)
}

// ---- f64 host reference --------------------------------------------------------------

/// The standard normal CDF, `½ erfc(−z/√2)`: accurate in relative terms in both tails.
fn phi(z: f64) -> f64 {
    0.5 * common::erfc(-z / SQRT_2)
}

/// The exact mass of bin `k` for `N(mu, exp(log_s)²)` (f32-rounded parameters), eq. 13:
/// edges collect the tails, interior bins are CDF differences, taken on the side of the
/// mean where both CDFs are small (no cancellation in f64 at any mass tested).
fn bin_mass(k: usize, mu: f64, log_s: f64) -> f64 {
    let (x, mu, s) = (level(k), f32r(mu), f32r(log_s).exp());
    let (u, l) = ((x + H - mu) / s, (x - H - mu) / s);
    match k {
        0 => phi(u),
        255 => phi(-l),
        _ if l > 0.0 => phi(-l) - phi(-u),
        _ => phi(u) - phi(l),
    }
}

/// `ln P(bin k)` for `k = 0..=255` of every row of a one-dimensional distribution `[R, 1]`:
/// the rows tiled 256 times, row `j·R + i` scored at grey level `j`.
fn log_probs_of_all_bins(p: &DiscretizedNormal, device: &Device) -> Vec<Vec<f64>> {
    let rows = p.batch_size();
    let x: Vec<f32> = (0..256 * rows).map(|r| level(r / rows) as f32).collect();
    let lp = host(p.repeat_rows(256).log_prob(&t2(x, [256 * rows, 1], device)));
    (0..rows)
        .map(|i| (0..256).map(|k| lp[k * rows + i]).collect())
        .collect()
}

/// One-dimensional discretized Normals, one per `(μ, log σ)`: shape `[R, 1]`.
fn one_dim(params: &[(f64, f64)], device: &Device) -> DiscretizedNormal {
    let n = params.len();
    DiscretizedNormal::new(
        t2(params.iter().map(|p| p.0 as f32).collect(), [n, 1], device),
        t2(params.iter().map(|p| p.1 as f32).collect(), [n, 1], device),
    )
    .unwrap()
}

/// The f32 value the library returns at the floor: `ln(1e-12)` computed in f32.
fn floor_f32() -> f64 {
    f64::from((1e-12f32).ln())
}

// ---- tests ---------------------------------------------------------------------------

#[test]
fn host_erfc_matches_python() {
    // import math
    // for x in [-3.0, -0.5, 0.0, 0.3, 1.0, 1.9, 2.1, 3.0, 4.5, 6.0, 8.0, 10.0]:
    //     print(f"({x!r}, {math.erfc(x)!r}),")
    // Tolerance 1e-13 relative: both are f64 implementations accurate to a few ulps except
    // 1 − erf near x = 2 (under 3 digits lost: 1e-13 covers it), so a wrong branch or
    // truncation shows up as an error many orders of magnitude larger.
    let python = [
        (-3.0, 1.9999779095030015),
        (-0.5, 1.5204998778130465),
        (0.0, 1.0),
        (0.3, 0.6713732405408726),
        (1.0, 0.15729920705028513),
        (1.9, 0.0072095707647425325),
        (2.1, 0.002979466656332984),
        (3.0, 2.2090496998585438e-05),
        (4.5, 1.9661604415428873e-10),
        (6.0, 2.1519736712498916e-17),
        (8.0, 1.1224297172982928e-29),
        (10.0, 2.088487583762545e-45),
    ];
    for (x, reference) in python {
        let ours = common::erfc(x);
        assert!(
            ((ours - reference) / reference).abs() < 1e-13,
            "erfc({x}) = {ours:e}, Python {reference:e}"
        );
    }
}

#[test]
fn bin_probabilities_sum_to_one() {
    // 60 random one-dimensional settings (host seed 13): μ ~ U(−1.5, 1.5), log σ ~ U(−7, 1),
    // plus the six corners μ ∈ {−1.5, 0, 1.5} × log σ ∈ {−7, 1}. Exact masses telescope
    // to 1. Each computed mass is a difference of two Φ values with absolute error below
    // ~1e-7 in f32 (or a floored mass, adding at most 1e-12), so 256 bins are within
    // 256 · 1e-7 ≈ 3e-5 of 1 at worst: tolerance 1e-4. A wrong edge (tails not collected)
    // misses up to half the mass at the corners with μ = ±1.5.
    let device = common::device();
    let mut rng = StdRng::seed_from_u64(13);
    let mut params: Vec<(f64, f64)> = (0..60)
        .map(|_| (rng.random_range(-1.5..1.5), rng.random_range(-7.0..1.0)))
        .collect();
    for mu in [-1.5, 0.0, 1.5] {
        for log_s in [-7.0, 1.0] {
            params.push((mu, log_s));
        }
    }
    let p = one_dim(&params, &device);
    for (i, lp) in log_probs_of_all_bins(&p, &device).into_iter().enumerate() {
        assert!(lp.iter().all(|v| v.is_finite()), "{:?}: {lp:?}", params[i]);
        let total: f64 = lp.iter().map(|v| v.exp()).sum();
        assert!(
            (total - 1.0).abs() < 1e-4,
            "μ {}, log σ {}: Σ P = {total}",
            params[i].0,
            params[i].1
        );
    }
}

#[test]
fn log_prob_matches_python_constants() {
    // import math, struct
    // f32 = lambda v: struct.unpack('f', struct.pack('f', v))[0]
    // Phi = lambda z: 0.5 * math.erfc(-z / math.sqrt(2))
    // def mass(k, mu, log_s):  # the f32-rounded x, mu and log_s, then f64
    //     x, mu, s = f32(2 * k / 255 - 1), f32(mu), math.exp(f32(log_s))
    //     u, l = (x + 1 / 255 - mu) / s, (x - 1 / 255 - mu) / s
    //     return Phi(u) if k == 0 else Phi(-l) if k == 255 else (
    //         Phi(-l) - Phi(-u) if l > 0 else Phi(u) - Phi(l))
    // cases = [(127, 0.0, -3.0), (115, -0.1, -4.6), (200, 0.1, -2.0), (243, 0.1, -2.0),
    //          (10, -0.3, -2.0), (3, 0.2, 1.0), (255, 0.9, -2.5), (0, 0.2, -1.0),
    //          (0, -0.2, -2.0), (0, 0.0, -3.0), (255, -1.2, -2.0)]
    // for k, mu, ls in cases:
    //     print(f"({k}, {mu!r}, {ls!r}, {math.log(max(mass(k, mu, ls), 1e-12))!r}),")
    // Tolerance 1e-4 relative on ln P (see the next test for why it holds); the last two
    // are at the floor and must be exactly ln(1e-12) in f32. (243, 0.1, −2) and
    // (0, −0.2, −2) have masses 4.6e-10 and 2.0e-9: in f32, 1 + erf cannot even represent
    // them, so these check the tail forms.
    let device = common::device();
    let cases: [(usize, f64, f64, f64); 11] = [
        (127, 0.0, -3.0, -2.7711842008963337),  // P = 6.259e-02
        (115, -0.1, -4.6, -1.210246308839959),  // P = 2.981e-01
        (200, 0.1, -2.0, -9.760714188866125),   // P = 5.767e-05
        (243, 0.1, -2.0, -21.491523444701688),  // P = 4.638e-10
        (10, -0.3, -2.0, -14.311175736539344),  // P = 6.092e-07
        (3, 0.2, 1.0, -6.860712815862983),      // P = 1.048e-03
        (255, 0.9, -2.5, -2.1127510404292043),  // P = 1.209e-01
        (0, 0.2, -1.0, -7.462120571475008),     // P = 5.744e-04
        (0, -0.2, -2.0, -20.01848173547971),    // P = 2.023e-09
        (0, 0.0, -3.0, -27.631021115928547),    // P = 2.404e-89
        (255, -1.2, -2.0, -27.631021115928547), // P = 1.626e-59
    ];
    let n = cases.len();
    let p = one_dim(
        &cases.iter().map(|c| (c.1, c.2)).collect::<Vec<_>>(),
        &device,
    );
    let x = t2(
        cases.iter().map(|c| level(c.0) as f32).collect(),
        [n, 1],
        &device,
    );
    let lp = host(p.log_prob(&x));
    for (i, &(k, mu, log_s, reference)) in cases.iter().enumerate() {
        if i >= n - 2 {
            assert_eq!(lp[i], floor_f32(), "k {k}, μ {mu}, log σ {log_s}: floor");
        } else {
            assert!(
                ((lp[i] - reference) / reference).abs() < 1e-4,
                "k {k}, μ {mu}, log σ {log_s}: {} vs Python {reference}",
                lp[i]
            );
        }
    }
}

#[test]
fn log_prob_matches_cdf_differences_at_interior_and_edge_bins() {
    // log_prob at every grey level of 12 one-dimensional settings against ln of the f64
    // host mass (bin_mass), including DDPM's σ_1 = √β_1 = 0.01 (log σ = −4.6) and the
    // extremes log σ = −7 and 1.
    //
    // Tolerance where P > 1e-6: |Δ| < 1e-4 · max(|ln P|, 1) — 1e-4 relative on ln P, and
    // 1e-4 nats near ln P = 0. Error budget: the standardised bounds carry f32 rounding
    // of ~3e-7 relative (x − μ, ± 1/255, × 1/σ are each correctly rounded), which moves
    // ln P by ~3e-7 · z² ≈ 6e-7 · |ln P| in a tail; Φ itself has relative error below
    // 2e-7, amplified by the cancellation Φ/P, at most ~1e3 for the narrowest bins
    // (σ = e: P ≈ 1e-3 against Φ ≈ 0.5), i.e. 1e-4 relative in P, 1e-4 nats in ln P
    // where |ln P| ≈ 7. The same tolerance is applied to 1e-12 < P < 1e-6 (masses within
    // a factor 2 of the floor are skipped: f32 may land on either side); computing Φ as
    // 1 + erf in f32 there would be off by 1e-2 (at P = 1e-6) to 100 % relative, far
    // outside it. Below 0.5e-12 the value must be exactly ln(1e-12) in f32.
    let device = common::device();
    let params: [(f64, f64); 12] = [
        (0.0, -3.0),
        (0.1, -2.0),
        (-0.3, -2.0),
        (0.37, -1.0),
        (-0.1, -4.6),
        (0.5, -4.6),
        (0.2, 0.0),
        (0.2, 1.0),
        (0.9, -2.5),
        (-1.2, -2.0),
        (0.013, -7.0),
        (1.4, -0.5),
    ];
    let p = one_dim(&params, &device);
    let all = log_probs_of_all_bins(&p, &device);
    let mut checked = [0usize; 4]; // [P > 1e-6, tail, floor, edge bins above the floor]
    for (&(mu, log_s), row) in params.iter().zip(&all) {
        for (k, &value) in row.iter().enumerate() {
            let mass = bin_mass(k, mu, log_s);
            let context = format!("μ {mu}, log σ {log_s}, k {k}: {value} (mass {mass:e})");
            if mass < 0.5e-12 {
                assert_eq!(value, floor_f32(), "{context}: floor");
                checked[2] += 1;
            } else if mass > 2e-12 {
                let reference = mass.ln();
                assert!(
                    (value - reference).abs() < 1e-4 * reference.abs().max(1.0),
                    "{context} vs {reference}"
                );
                checked[if mass > 1e-6 { 0 } else { 1 }] += 1;
                if k == 0 || k == 255 {
                    checked[3] += 1;
                }
            }
        }
    }
    // The cases reach every regime: bulk, tails, floor, and both edges above the floor.
    assert!(
        checked[0] > 200 && checked[1] > 50 && checked[2] > 1000 && checked[3] >= 8,
        "{checked:?}"
    );
}

#[test]
fn batch_sums_over_dimensions() {
    // 3 rows × 5 dimensions, each element with its own (μ, log σ) and grey level: log_prob
    // of each row against Σ_i ln P_i from the f64 host (tolerance 1e-4 · Σ max(|ln P_i|, 1),
    // the per-element tolerance of the previous test summed, plus f32 summation of five
    // terms, ~1e-6), and exactly the sum of log_prob_per_dim (up to the order of f32
    // additions: 1e-5).
    let device = common::device();
    let (rows, d) = (3, 5);
    let mut rng = StdRng::seed_from_u64(5);
    let mut mus = vec![];
    let mut log_ss = vec![];
    let mut ks = vec![];
    for _ in 0..rows * d {
        mus.push(rng.random_range(-1.0..1.0));
        log_ss.push(rng.random_range(-4.0..0.0));
        ks.push(rng.random_range(0..256usize));
    }
    // Make sure both edges appear, with masses above the floor.
    (mus[0], log_ss[0], ks[0]) = (-0.9, -2.0, 0);
    (mus[7], log_ss[7], ks[7]) = (0.95, -3.0, 255);
    let to_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    let p = DiscretizedNormal::new(
        t2(to_f32(&mus), [rows, d], &device),
        t2(to_f32(&log_ss), [rows, d], &device),
    )
    .unwrap();
    let x = t2(
        ks.iter().map(|&k| level(k) as f32).collect(),
        [rows, d],
        &device,
    );
    let lp = host(p.log_prob(&x));
    let per_dim = host(p.log_prob_per_dim(&x));
    assert_eq!(lp.len(), rows);
    for r in 0..rows {
        let (mut reference, mut tolerance) = (0.0, 0.0);
        for j in r * d..(r + 1) * d {
            let term = bin_mass(ks[j], mus[j], log_ss[j]).max(1e-12).ln();
            reference += term;
            tolerance += 1e-4 * term.abs().max(1.0);
        }
        assert!(
            (lp[r] - reference).abs() < tolerance,
            "row {r}: {} vs {reference}",
            lp[r]
        );
        let summed: f64 = per_dim[r * d..(r + 1) * d].iter().sum();
        assert!(
            (lp[r] - summed).abs() < 1e-5,
            "row {r}: {} vs {summed}",
            lp[r]
        );
    }
}

#[test]
fn sample_frequencies_match_bin_masses() {
    // n = 20,000 draws of a two-dimensional distribution, μ = (−0.93, 0.9),
    // log σ = (−3, −2.5), so that each edge bin is among the tested cells (bottom bin of
    // dimension 0: mass 0.08; top bin of dimension 1: 0.12). Noise: Box–Muller normals
    // from host uniforms (seed 2020). For each dimension, Pearson's chi-square over the
    // bins with expected count ≥ 5 (the rest pooled into one cell, kept if its expected
    // count is ≥ 5) against the exact f64 masses, at α = 0.001 per dimension (critical
    // value from the Wilson–Hilferty approximation).
    let device = common::device();
    let n = 20_000;
    let params = [(-0.93, -3.0), (0.9, -2.5)];
    let d = params.len();
    let mean: Vec<f32> = (0..n * d).map(|i| params[i % d].0 as f32).collect();
    let log_s: Vec<f32> = (0..n * d).map(|i| params[i % d].1 as f32).collect();
    let p = DiscretizedNormal::new(t2(mean, [n, d], &device), t2(log_s, [n, d], &device)).unwrap();
    let mut rng = StdRng::seed_from_u64(2020);
    let mut noise = Vec::with_capacity(n * d);
    while noise.len() < n * d {
        let u1 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2 = rng.random::<f64>();
        let radius = (-2.0 * u1.ln()).sqrt();
        noise.push((radius * (2.0 * PI * u2).cos()) as f32);
        noise.push((radius * (2.0 * PI * u2).sin()) as f32);
    }
    noise.truncate(n * d);
    let draws = host(p.sample_with_noise(t2(noise, [n, d], &device)).unwrap());
    for (j, &(mu, log_sigma)) in params.iter().enumerate() {
        let mut counts = [0usize; 256];
        for x in draws.iter().skip(j).step_by(d) {
            let k = ((x + 1.0) * 127.5).round();
            assert!(
                ((x + 1.0) * 127.5 - k).abs() < 1e-4 && (0.0..=255.0).contains(&k),
                "draw {x} is not a grey level"
            );
            counts[k as usize] += 1;
        }
        let expected: Vec<f64> = (0..256)
            .map(|k| n as f64 * bin_mass(k, mu, log_sigma))
            .collect();
        let edge = if j == 0 { 0 } else { 255 };
        assert!(expected[edge] > 1000.0, "edge bin {edge} is tested");
        let (chi2, critical, cells) = common::chi_square(&counts, &expected);
        assert!(cells >= 20, "dimension {j}: {cells} cells");
        assert!(
            chi2 < critical,
            "dimension {j}: chi-square {chi2:.1} ≥ {critical:.1} on {} df",
            cells - 1
        );
    }
}

#[test]
fn mean_sample_and_log_variance_constructor() {
    // mean(): μ clamped to [−1, 1], exactly (a clamp of f32 values).
    let device = common::device();
    let mean = t2(vec![-1.3, -0.25, 0.6, 1.7], [2, 2], &device);
    let log_s = t2(vec![-2.0, -1.0, (0.1f32).ln(), 0.0], [2, 2], &device);
    let p = DiscretizedNormal::new(mean.clone(), log_s.clone()).unwrap();
    assert_eq!(
        host(p.mean()),
        vec![-1.0, f64::from(-0.25f32), f64::from(0.6f32), 1.0]
    );

    // sample_with_noise: clamp(μ + σ ε, −1, 1) rounded to the nearest grey level
    // 2k/255 − 1, i.e. k = round(127.5 · (y + 1)):
    //   −1.3 + e^{−2}·0 = −1.3     → −1             → k = 0
    //   −0.25 + e^{−1}·1 = 0.1179  → 127.5 · 1.1179 = 142.53 → k = 143
    //   0.6 + 0.1·(−2.01) = 0.399  → 127.5 · 1.399 = 178.37  → k = 178
    //   1.7 + 1·(−0.5) = 1.2       → 1              → k = 255
    // (none is within 0.03 of a rounding tie, far beyond f32 error).
    let noise = t2(vec![0.0, 1.0, -2.01, -0.5], [2, 2], &device);
    let draw = host(p.sample_with_noise(noise).unwrap());
    let expected_k = [0.0, 143.0, 178.0, 255.0];
    for (x, k) in draw.iter().zip(expected_k) {
        assert!(
            ((x + 1.0) * 127.5 - k).abs() < 1e-4,
            "{draw:?} vs levels {expected_k:?}"
        );
    }

    // sample(): grey levels in [−1, 1].
    let draws = host(p.repeat_rows(200).sample());
    assert_eq!(draws.len(), 800);
    for x in draws {
        let k = (x + 1.0) * 127.5;
        assert!(
            (k - k.round()).abs() < 1e-4 && (-1.0..=1.0).contains(&x),
            "{x}"
        );
    }

    // from_log_variance(μ, 2 log σ) is new(μ, log σ): identical log-probabilities (halving
    // is exact in f32).
    let q = DiscretizedNormal::from_log_variance(mean, log_s.mul_scalar(2.0)).unwrap();
    let x = t2(
        [0usize, 100, 200, 255].map(|k| level(k) as f32).to_vec(),
        [2, 2],
        &device,
    );
    assert_eq!(host(p.log_prob(&x)), host(q.log_prob(&x)));
    assert_eq!(host(q.log_scale()), host(p.log_scale()));
}

#[test]
fn gradients_are_finite_and_match_the_analytic_derivative() {
    // Means far outside [−1, 1], log-scales from −20 to 4, at edge, interior, tail and
    // floored bins: the unselected branches (edges, symmetric form, erf/erfc switch) must
    // not leak inf or NaN into the gradients. Where the mass is above 1e-6, ∂ ln P/∂μ
    // matches the analytic (φ(l) − φ(u)) / (σ P) (edges: −φ(u) or φ(l) alone) within
    // 1e-3 relative + 1e-3 absolute. Relative part: the f32 rounding of the bounds
    // (~3e-7 relative, amplified by z ≤ 5) and the derivative of the erfc fit are far
    // below 1e-3. Absolute part: for wide Normals (σ = e, e^4) the gradient is a
    // difference of two nearly equal f32 densities, each rounded by ~3e-8, divided by
    // σ P ≥ (2/255) · φ(z) ≈ 3e-3: up to ~2e-5 absolute (measured 1.5e-5 at σ = e^4),
    // harmless for training and well under 1e-3. A wrong sign, σ factor or edge branch
    // is off by O(1) in the sharp cases (σ ≤ e^-2, gradients 2 to 5000).
    let device = common::device().autodiff();
    let params: Vec<(f64, f64)> = (0..20)
        .map(|i| {
            (
                [-5.0, 5.0, 0.3, 1.0, -1.0][i % 5],
                [-20.0, 4.0, -7.0, 0.0][i % 4],
            )
        })
        .chain([
            (0.1, -2.0),
            (0.1, -2.0),
            (-0.9, -2.0),
            (0.95, -3.0),
            (0.2, 1.0),
        ])
        .collect();
    let ks: Vec<usize> = (0..20)
        .map(|i| [0usize, 1, 128, 254, 255][i % 5])
        .chain([200, 140, 0, 255, 30])
        .collect();
    let n = params.len();
    let mean = t2(params.iter().map(|p| p.0 as f32).collect(), [n, 1], &device).require_grad();
    let log_s = t2(params.iter().map(|p| p.1 as f32).collect(), [n, 1], &device).require_grad();
    let p = DiscretizedNormal::new(mean.clone(), log_s.clone()).unwrap();
    let x = t2(
        ks.iter().map(|&k| level(k) as f32).collect(),
        [n, 1],
        &device,
    );
    let lp = p.log_prob(&x);
    let values = host(lp.clone());
    assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
    let grads = lp.sum().backward();
    let g_mu = host(mean.grad(&grads).unwrap());
    let g_ls = host(log_s.grad(&grads).unwrap());
    assert!(
        g_mu.iter().chain(&g_ls).all(|v| v.is_finite()),
        "{g_mu:?} {g_ls:?}"
    );
    let density = |z: f64| (-0.5 * z * z).exp() / (2.0 * PI).sqrt();
    let mut checked = 0;
    for i in 0..n {
        let (mu, log_sigma, k) = (params[i].0, params[i].1, ks[i]);
        let mass = bin_mass(k, mu, log_sigma);
        if mass < 1e-6 {
            continue;
        }
        let (x, s) = (level(k), f32r(log_sigma).exp());
        let (u, l) = ((x + H - f32r(mu)) / s, (x - H - f32r(mu)) / s);
        let flux = match k {
            0 => -density(u),
            255 => density(l),
            _ => density(l) - density(u),
        };
        let reference = flux / (s * mass);
        assert!(
            (g_mu[i] - reference).abs() < 1e-3 * reference.abs() + 1e-3,
            "μ {mu}, log σ {log_sigma}, k {k}: ∂/∂μ {} vs {reference}",
            g_mu[i]
        );
        checked += 1;
    }
    assert!(checked >= 6, "{checked} gradients checked");
}

#[test]
fn bad_shapes_and_values_are_errors() {
    let device = common::device();
    let z = |dims: [usize; 2]| Tensor::<2>::zeros(dims, &device);
    let shape_err = |r: Result<DiscretizedNormal, Error>| {
        assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{r:?}");
    };
    shape_err(DiscretizedNormal::new(z([2, 3]), z([2, 4])));
    shape_err(DiscretizedNormal::new(z([2, 3]), z([3, 2])));
    shape_err(DiscretizedNormal::new(z([0, 3]), z([0, 3])));
    shape_err(DiscretizedNormal::new(z([2, 0]), z([2, 0])));
    shape_err(DiscretizedNormal::from_log_variance(z([2, 3]), z([2, 1])));
    shape_err(DiscretizedNormal::from_log_variance(z([0, 3]), z([0, 3])));

    let p = DiscretizedNormal::new(z([2, 3]), z([2, 3])).unwrap();
    assert!(matches!(
        p.sample_with_noise(z([2, 4])),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        p.check_value(&z([3, 3])),
        Err(Error::ShapeMismatch { .. })
    ));
    let with = |v: f32| {
        let mut values = vec![level(3) as f32; 6];
        values[4] = v;
        t2(values, [2, 3], &device)
    };
    assert!(p.check_value(&with(level(254) as f32)).is_ok());
    assert!(p.check_value(&with(-1.0)).is_ok());
    assert!(matches!(
        p.check_value(&with(f32::NAN)),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        p.check_value(&with(0.5)), // 191.25 steps: between grey levels
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        p.check_value(&with(1.0 + 2.0 / 255.0)), // one level above the top
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        p.check_value(&with(128.0 / 255.0)), // [0, 1] data, not rescaled: off the grid
        Err(Error::InvalidConfig { .. })
    ));
}
