//! The discretized mixture of logistics against an independent f64 host implementation of
//! PixelCNN++ eq. 2 (logistic CDF differences evaluated directly in f64, where the
//! cancellation that the library avoids in f32 costs nothing at the masses tested), and its
//! sampler against those bin masses with a chi-square test.

use crate::common;

use burn::tensor::{Device, Tensor, TensorData};
use elbo::distributions::DiscretizedLogisticMixture;
use elbo::{Distribution, Error};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const H: f64 = 1.0 / 255.0;

fn t5(values: Vec<f32>, dims: [usize; 5], device: &Device) -> Tensor<5> {
    Tensor::from_data(TensorData::new(values, dims), device)
}

fn t4(values: Vec<f32>, dims: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, dims), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    common::host(&t)
}

/// One-pixel, one-channel mixtures, one per row: parameters `[rows][M]`.
fn pixel_mixture(
    logits: &[Vec<f64>],
    means: &[Vec<f64>],
    log_scales: &[Vec<f64>],
    device: &Device,
) -> DiscretizedLogisticMixture {
    let rows = logits.len();
    let m = logits[0].len();
    let flat = |v: &[Vec<f64>]| v.iter().flatten().map(|&x| x as f32).collect::<Vec<_>>();
    DiscretizedLogisticMixture::new(
        t5(flat(logits), [rows, m, 1, 1, 1], device),
        t5(flat(means), [rows, m, 1, 1, 1], device),
        t5(flat(log_scales), [rows, m, 1, 1, 1], device),
    )
    .unwrap()
}

// ---- f64 host reference --------------------------------------------------------------

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Exact mass of bin `k` under one logistic with mean `mu` (in [-1, 1]) and log-scale
/// `log_s` (clamped at −7), by CDF differences in f64.
fn bin_mass(k: usize, mu: f64, log_s: f64) -> f64 {
    let s = log_s.max(-7.0).exp();
    let y = 2.0 * k as f64 / 255.0 - 1.0;
    let upper = sigmoid((y + H - mu) / s);
    let lower = sigmoid((y - H - mu) / s);
    match k {
        0 => upper,
        255 => sigmoid(-(y - H - mu) / s), // 1 − σ(b), without cancellation
        _ => upper - lower,
    }
}

/// PixelCNN++'s fallback for interior bins of mass < 1e-5: logistic density at the bin
/// centre times the bin width 2/255.
fn fallback_mass(k: usize, mu: f64, log_s: f64) -> f64 {
    let s = log_s.max(-7.0).exp();
    let t = (2.0 * k as f64 / 255.0 - 1.0 - mu) / s;
    let e = (-t.abs()).exp(); // symmetric density e^{-|t|} / (s (1 + e^{-|t|})²)
    e / (s * (1.0 + e).powi(2)) * 2.0 * H
}

/// The mass the specification assigns to bin `k` (exact, or the fallback for tiny
/// interior bins).
fn spec_mass(k: usize, mu: f64, log_s: f64) -> f64 {
    let exact = bin_mass(k, mu, log_s);
    if k != 0 && k != 255 && exact < 1e-5 {
        fallback_mass(k, mu, log_s)
    } else {
        exact
    }
}

fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = e.iter().sum();
    e.into_iter().map(|v| v / total).collect()
}

/// `[P(bin k) for k in 0..=255]` of each row's one-pixel mixture: its `log_prob` at every
/// grey level (the rows are tiled 256 times: row `j·P + i` is pixel `i` at level `j/255`).
fn log_probs_of_all_bins(p: &DiscretizedLogisticMixture, device: &Device) -> Vec<Vec<f64>> {
    let rows = p.batch_size();
    let tiled = p.repeat_rows(256);
    let x: Vec<f32> = (0..256 * rows).map(|r| (r / rows) as f32 / 255.0).collect();
    let lp = host(tiled.log_prob(&t4(x, [256 * rows, 1, 1, 1], device)));
    (0..rows)
        .map(|i| (0..256).map(|k| lp[k * rows + i]).collect())
        .collect()
}

// ---- tests ---------------------------------------------------------------------------

#[test]
fn bin_probabilities_sum_to_one() {
    // 60 random one-pixel mixtures (host seed 17): M = 1..=5 components, logits U(−3, 3),
    // means U(−1.2, 1.2) (beyond both edges), log-scales U(−6, 1), plus the extremes
    // log-scale −6 and 1 at mean ±1.2. The 256 bin masses telescope to 1 exactly; the sum
    // of exp(log_prob) is within 1e-4 of 1: f32 rounding (~1e-7 relative) over 256 terms
    // is ~3e-5 at worst, and PixelCNN++'s density fallback on bins of mass < 1e-5 changes
    // each of the few such bins next to a sharp peak by under 1e-5.
    let device = common::device();
    let mut rng = StdRng::seed_from_u64(17);
    let (mut logits, mut means, mut log_scales) = (vec![], vec![], vec![]);
    let m_max = 5;
    for i in 0..60 {
        let m = 1 + i % m_max;
        // Pad to m_max with components of weight e^{-200} (≈ 0 in f32 softmax: exactly
        // what a mixture of m components gives), so every row has the same M.
        let mut l: Vec<f64> = (0..m_max)
            .map(|j| {
                if j < m {
                    rng.random_range(-3.0..3.0)
                } else {
                    -200.0
                }
            })
            .collect();
        let mut mu: Vec<f64> = (0..m_max).map(|_| rng.random_range(-1.2..1.2)).collect();
        let mut ls: Vec<f64> = (0..m_max).map(|_| rng.random_range(-6.0..1.0)).collect();
        if i < 4 {
            // Single sharp or wide component at the edges.
            l = vec![0.0, -200.0, -200.0, -200.0, -200.0];
            mu[0] = [-1.2, 1.2, -1.2, 1.2][i];
            ls[0] = [-6.0, -6.0, 1.0, 1.0][i];
        }
        logits.push(l);
        means.push(mu);
        log_scales.push(ls);
    }
    let p = pixel_mixture(&logits, &means, &log_scales, &device);
    for (i, lp) in log_probs_of_all_bins(&p, &device).into_iter().enumerate() {
        assert!(lp.iter().all(|v| v.is_finite()), "pixel {i}: {lp:?}");
        let total: f64 = lp.iter().map(|v| v.exp()).sum();
        assert!(
            (total - 1.0).abs() < 1e-4,
            "pixel {i}: Σ P = {total} (logits {:?}, means {:?}, log-scales {:?})",
            logits[i],
            means[i],
            log_scales[i]
        );
    }
}

#[test]
fn single_logistic_matches_cdf_differences_at_interior_and_edge_bins() {
    // One component: log_prob at k/255 against ln of the f64 CDF difference (bin_mass).
    // Tolerance 1e-4 nats for s < 1: f32 rounding of y and μ (6e-8 relative) is amplified
    // by 1/s ≤ e^6 ≈ 400 into the standardised arguments, whose effect on ln P is O(1) per
    // unit. For s ≥ 1 nothing is amplified (a handful of f32 operations on O(1) values,
    // ~1e-6), so 1e-5: tight enough to catch ln(1 − e^{−δ}) evaluated without its series
    // (3.8e-5 off at s = e^4, measured by disabling the series).
    // Bins of mass < 1e-5 are compared with the f64 fallback (density × 2/255) instead;
    // masses within a factor 2 of the 1e-5 switch are skipped (f32 may decide either way).
    let device = common::device();
    // (0, 4): s ≈ 55, bin width 1.4e-4 in standard units, where ln(1 − e^{−δ}) without
    // its series would lose ~4e-4 nats to cancellation.
    let cases: [(f64, f64); 9] = [
        (0.0, 4.0),
        (0.0, -3.0),
        (0.37, -6.0),
        (-0.9, -1.0),
        (1.2, -2.0),
        (-1.2, -4.5),
        (0.5, 1.0),
        (-0.1, 0.0),
        (0.99, -5.0),
    ];
    let bins = [0usize, 1, 2, 40, 127, 128, 174, 200, 253, 254, 255];
    let mut checked = (0, 0);
    for (mu, log_s) in cases {
        let p = pixel_mixture(&[vec![0.0]], &[vec![mu]], &[vec![log_s]], &device);
        let lp = &log_probs_of_all_bins(&p, &device)[0];
        for k in bins {
            let exact = bin_mass(k, mu, log_s);
            let interior = k != 0 && k != 255;
            let reference = if interior && exact < 0.5e-5 {
                checked.1 += 1;
                fallback_mass(k, mu, log_s).ln()
            } else if !interior || exact > 2e-5 {
                checked.0 += 1;
                exact.ln()
            } else {
                continue;
            };
            // Plus a few f32 ulp of the value itself (4e-7 relative): where ln P is large,
            // as at an edge bin far from μ (ln σ(a) ≈ a ≈ −551), it is a rounded product of
            // f32 terms, and GPU `exp` is accurate to a few ulp, not correctly rounded.
            let tolerance = if log_s >= 0.0 { 1e-5 } else { 1e-4 } + 4e-7 * reference.abs();
            assert!(
                (lp[k] - reference).abs() < tolerance,
                "μ {mu}, log s {log_s}, k {k}: {} vs {reference} (mass {exact:e})",
                lp[k]
            );
        }
    }
    assert!(
        checked.0 >= 40 && checked.1 >= 5,
        "cases cover both branches: {checked:?}"
    );

    // Log-scales below −7 are clamped to −7 (PixelCNN++): identical log-probabilities.
    let clamped = pixel_mixture(&[vec![0.0]], &[vec![0.01]], &[vec![-20.0]], &device);
    let at_min = pixel_mixture(&[vec![0.0]], &[vec![0.01]], &[vec![-7.0]], &device);
    assert_eq!(
        log_probs_of_all_bins(&clamped, &device),
        log_probs_of_all_bins(&at_min, &device)
    );
}

#[test]
fn mixture_is_the_weighted_sum_of_its_components() {
    // Three components in each of 4 rows; reference ln Σ_m π_m P_m(k) in f64, with each
    // P_m the specification's mass (exact, or the fallback below 1e-5). Tolerance 1e-4 nats
    // as for the single logistic (f32 rounding amplified by 1/s ≤ e^5), plus the f32
    // log-softmax (~1e-7).
    let device = common::device();
    let logits = vec![
        vec![0.0, 1.0, -1.0],
        vec![2.0, -2.0, 0.5],
        vec![-0.3, -0.3, 3.0],
        vec![0.0, 0.0, 0.0],
    ];
    let means = vec![
        vec![-0.8, 0.1, 0.9],
        vec![-1.1, 1.1, 0.0],
        vec![0.2, 0.25, -0.4],
        vec![-1.0, 1.0, 0.5],
    ];
    let log_scales = vec![
        vec![-2.0, -4.0, -1.0],
        vec![-3.0, -3.0, 0.5],
        vec![-5.0, -1.5, -3.5],
        vec![-4.0, -4.0, -5.0],
    ];
    let p = pixel_mixture(&logits, &means, &log_scales, &device);
    let lp = log_probs_of_all_bins(&p, &device);
    for row in 0..4 {
        let pi = softmax(&logits[row]);
        for (k, &value) in lp[row].iter().enumerate() {
            let mass: f64 = (0..3)
                .map(|m| pi[m] * spec_mass(k, means[row][m], log_scales[row][m]))
                .sum();
            assert!(
                (value - mass.ln()).abs() < 1e-4,
                "row {row}, k {k}: {value} vs {}",
                mass.ln()
            );
        }
    }

    // The sum over C, H, W: a 1×2×3 image of those four mixtures (and two more) is the sum
    // of per-element log-probabilities.
    let m = 3;
    let elems = 6; // C = 1, H = 2, W = 3
    let pick = |v: &Vec<Vec<f64>>| -> Vec<f32> {
        // [1, M, 1, 2, 3]: component-major, element e uses row e % 4.
        (0..m)
            .flat_map(|j| (0..elems).map(move |e| (j, e)))
            .map(|(j, e)| v[e % 4][j] as f32)
            .collect()
    };
    let image = DiscretizedLogisticMixture::new(
        t5(pick(&logits), [1, m, 1, 2, 3], &device),
        t5(pick(&means), [1, m, 1, 2, 3], &device),
        t5(pick(&log_scales), [1, m, 1, 2, 3], &device),
    )
    .unwrap();
    let levels = [0usize, 17, 128, 200, 254, 255];
    let x: Vec<f32> = levels.iter().map(|&k| k as f32 / 255.0).collect();
    let total = host(image.log_prob(&t4(x, [1, 1, 2, 3], &device)))[0];
    let reference: f64 = (0..elems).map(|e| lp[e % 4][levels[e]]).sum();
    assert!((total - reference).abs() < 1e-4, "{total} vs {reference}");
}

#[test]
fn sample_frequencies_match_bin_masses() {
    // n = 20,000 draws of one pixel from π = (0.3, 0.7), μ = (−0.5, 0.3),
    // log s = (−3, −2), with uniforms from host seed 2017. Pearson chi-square over the bins
    // with expected count ≥ 5 (the rest pooled into one cell, kept if its expected count is
    // ≥ 5), against the exact f64 masses (the sampler has no density fallback). Critical
    // value at α = 0.001 from the Wilson–Hilferty approximation. The top bin (mass ≈ 4e-3,
    // ≈ 80 draws) is among the tested cells, so the edge handling is checked too.
    let device = common::device();
    let n = 20_000;
    let logits = [0.3f64.ln(), 0.7f64.ln()];
    let means = [-0.5, 0.3];
    let log_scales = [-3.0, -2.0];
    let p = pixel_mixture(
        &[logits.to_vec()],
        &[means.to_vec()],
        &[log_scales.to_vec()],
        &device,
    )
    .repeat_rows(n);
    let mut rng = StdRng::seed_from_u64(2017);
    let mut uniforms = || -> Vec<f32> { (0..n).map(|_| rng.random::<f32>()).collect() };
    let (u_component, u_logistic) = (uniforms(), uniforms());
    let draws = host(
        p.sample_with_noise(
            t4(u_component, [n, 1, 1, 1], &device),
            t4(u_logistic, [n, 1, 1, 1], &device),
        )
        .unwrap(),
    );
    let mut counts = [0usize; 256];
    for x in draws {
        let k = (x * 255.0).round();
        assert!(
            (x * 255.0 - k).abs() < 1e-4 && (0.0..=255.0).contains(&k),
            "draw {x} is not a grey level"
        );
        counts[k as usize] += 1;
    }
    let pi = softmax(&logits);
    let expected: Vec<f64> = (0..256)
        .map(|k| {
            n as f64
                * (0..2)
                    .map(|m| pi[m] * bin_mass(k, means[m], log_scales[m]))
                    .sum::<f64>()
        })
        .collect();
    assert!(
        expected[255] > 50.0,
        "the top bin is tested: {}",
        expected[255]
    );
    let (chi2, critical, cells) = common::chi_square(&counts, &expected);
    assert!(
        chi2 < critical,
        "chi-square {chi2:.1} ≥ {critical:.1} on {} df",
        cells - 1
    );
}

#[test]
fn sample_gives_grey_levels_and_mean_is_the_weighted_mean() {
    // mean(): Σ π_m μ_m mapped to (y + 1)/2 and clamped, against f64 (f32 rounding: 1e-6).
    let device = common::device();
    let logits = vec![vec![0.0, 1.0], vec![-1.0, 2.0], vec![0.0, 0.0]];
    let means = vec![vec![-0.5, 0.5], vec![0.9, 1.5], vec![-1.3, -1.1]];
    let log_scales = vec![vec![-2.0, -3.0]; 3];
    let p = pixel_mixture(&logits, &means, &log_scales, &device);
    let mean = host(p.mean());
    for row in 0..3 {
        let pi = softmax(&logits[row]);
        let y: f64 = (0..2).map(|m| pi[m] * means[row][m]).sum();
        let reference = ((y + 1.0) / 2.0).clamp(0.0, 1.0);
        assert!(
            (mean[row] - reference).abs() < 1e-6,
            "row {row}: {} vs {reference}",
            mean[row]
        );
    }
    let draws = host(p.repeat_rows(100).sample());
    assert_eq!(draws.len(), 300);
    for x in draws {
        let k = x * 255.0;
        assert!(
            (k - k.round()).abs() < 1e-4 && (0.0..=1.0).contains(&x),
            "{x}"
        );
    }
}

#[test]
fn network_output_is_split_component_major() {
    // [1, 3·M·C, 1, 1] with M = 3, C = 2 and output channel i holding the value i:
    // logits are channels 0..6, means 6..12, log-scales 12..18, and inside each block
    // channel m·C + c is component m of image channel c.
    let device = common::device();
    let (m, c) = (3, 2);
    let params = t4((0..18).map(|i| i as f32).collect(), [1, 18, 1, 1], &device);
    let p = DiscretizedLogisticMixture::from_network_output(params, c, m).unwrap();
    assert_eq!(p.mixtures(), 3);
    assert_eq!(p.image_dims(), [1, 2, 1, 1]);
    let block = |offset: usize| -> Vec<f64> {
        (0..m)
            .flat_map(|j| (0..c).map(move |ch| (offset + j * c + ch) as f64))
            .collect()
    };
    assert_eq!(host(p.logit_pi()), block(0));
    assert_eq!(host(p.means()), block(6));
    assert_eq!(host(p.log_scales()), block(12));
    // Log-scales below −7 come back clamped.
    let params = Tensor::<4>::full([1, 3, 1, 1], -9.0, &device);
    let p = DiscretizedLogisticMixture::from_network_output(params, 1, 1).unwrap();
    assert_eq!(host(p.log_scales()), vec![-7.0]);
}

#[test]
fn gradients_stay_finite_at_extreme_parameters() {
    // Means far outside [−1, 1], log-scales from −20 (clamped) to 4, logits ±30, at edge,
    // interior and tail bins: the unselected branches of the edge/fallback selection must
    // not leak inf or NaN into the gradients.
    let device = common::device().autodiff();
    let rows = 5;
    let m = 3;
    let logits: Vec<f32> = (0..rows * m).map(|i| [30.0, -30.0, 0.0][i % 3]).collect();
    let means: Vec<f32> = (0..rows * m)
        .map(|i| [-5.0, 5.0, 0.3, 1.0, -1.0][i % 5])
        .collect();
    let log_scales: Vec<f32> = (0..rows * m)
        .map(|i| [-20.0, 4.0, -7.0, 0.0][i % 4])
        .collect();
    let logits = t5(logits, [rows, m, 1, 1, 1], &device).require_grad();
    let means = t5(means, [rows, m, 1, 1, 1], &device).require_grad();
    let log_scales = t5(log_scales, [rows, m, 1, 1, 1], &device).require_grad();
    let p =
        DiscretizedLogisticMixture::new(logits.clone(), means.clone(), log_scales.clone()).unwrap();
    let x: Vec<f32> = [0usize, 1, 128, 254, 255]
        .iter()
        .map(|&k| k as f32 / 255.0)
        .collect();
    let lp = p.log_prob(&t4(x, [rows, 1, 1, 1], &device));
    let values = host(lp.clone());
    assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
    let grads = lp.sum().backward();
    for (name, param) in [
        ("logits", logits),
        ("means", means),
        ("log_scales", log_scales),
    ] {
        let g: Vec<f32> = param
            .grad(&grads)
            .unwrap()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "{name}: {g:?}");
    }
}

#[test]
fn bad_shapes_and_sizes_are_errors() {
    let device = common::device();
    let z = |dims: [usize; 5]| Tensor::<5>::zeros(dims, &device);
    let shape_err = |r: Result<DiscretizedLogisticMixture, Error>| {
        matches!(r, Err(Error::ShapeMismatch { .. }))
    };
    // Mismatched parameter shapes.
    assert!(shape_err(DiscretizedLogisticMixture::new(
        z([2, 3, 1, 4, 4]),
        z([2, 3, 1, 4, 5]),
        z([2, 3, 1, 4, 4])
    )));
    assert!(shape_err(DiscretizedLogisticMixture::new(
        z([2, 3, 1, 4, 4]),
        z([2, 3, 1, 4, 4]),
        z([2, 2, 1, 4, 4])
    )));
    // Zero mixtures / channels / pixels.
    assert!(shape_err(DiscretizedLogisticMixture::new(
        z([2, 0, 1, 4, 4]),
        z([2, 0, 1, 4, 4]),
        z([2, 0, 1, 4, 4])
    )));
    for empty in [[2, 3, 0, 4, 4], [0, 3, 1, 4, 4], [2, 3, 1, 4, 0]] {
        assert!(shape_err(DiscretizedLogisticMixture::new(
            z(empty),
            z(empty),
            z(empty)
        )));
    }

    let out = |ch: usize| Tensor::<4>::zeros([2, ch, 4, 4], &device);
    let config_err = |r: Result<DiscretizedLogisticMixture, Error>, field: &str| matches!(r, Err(Error::InvalidConfig { field: f, .. }) if f == field);
    assert!(config_err(
        DiscretizedLogisticMixture::from_network_output(out(30), 1, 0),
        "mixtures"
    ));
    assert!(config_err(
        DiscretizedLogisticMixture::from_network_output(out(30), 0, 10),
        "channels"
    ));
    assert!(config_err(
        DiscretizedLogisticMixture::from_network_output(out(30), usize::MAX, 2),
        "mixtures"
    ));
    // 3·M·C = 30 expected, 29 and 31 given; and 30 channels read as C = 3, M = 10 (90).
    for (ch, c, m) in [(29, 1, 10), (31, 1, 10), (30, 3, 10), (0, 1, 1)] {
        let err = DiscretizedLogisticMixture::from_network_output(out(ch), c, m).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
        assert!(err.to_string().contains("output channels"), "{err}");
    }
    for empty in [[2, 3, 4, 0], [2, 3, 0, 4], [0, 3, 4, 4]] {
        let params = Tensor::<4>::zeros(empty, &device);
        assert!(shape_err(DiscretizedLogisticMixture::from_network_output(
            params, 1, 1
        )));
    }

    // Noise and values of the wrong shape, NaN, and values off the k/255 grid.
    let p = DiscretizedLogisticMixture::from_network_output(out(30), 1, 10).unwrap();
    let good = Tensor::<4>::full([2, 1, 4, 4], 0.5, &device);
    let bad = Tensor::<4>::full([2, 1, 4, 5], 0.5, &device);
    assert!(matches!(
        p.sample_with_noise(good.clone(), bad.clone()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        p.sample_with_noise(bad.clone(), good.clone()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(p.sample_with_noise(good.clone(), good).is_ok());
    assert!(matches!(
        p.check_value(&bad),
        Err(Error::ShapeMismatch { .. })
    ));
    let level = |v: f32| Tensor::<4>::full([2, 1, 4, 4], v, &device);
    assert!(p.check_value(&level(17.0 / 255.0)).is_ok());
    assert!(p.check_value(&level(0.0)).is_ok());
    assert!(p.check_value(&level(1.0)).is_ok());
    assert!(matches!(
        p.check_value(&level(f32::NAN)),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        p.check_value(&level(17.5 / 255.0)),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        p.check_value(&level(-1.0 / 255.0)),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        p.check_value(&level(2.0)),
        Err(Error::InvalidConfig { .. })
    ));
}
