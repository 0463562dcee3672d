//! Distributions against independent references: scipy values (the generating snippet is
//! next to each), closed forms, and Monte Carlo within 4 standard errors.

use crate::common;

use burn::tensor::{Device, Tensor, TensorData};
use elbo::distributions::{Bernoulli, DiagNormal, StdNormal};
use elbo::math::{log_mean_exp, log_sum_exp, log_sum_exp_f64};
use elbo::models::{DecoderVariance, GaussianMlpDecoderConfig};
use elbo::{Decoder, Distribution, KlDivergence, Prior};

fn row(values: &[f32], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [1, values.len()]), device)
}

fn vec1(t: Tensor<1>) -> Vec<f64> {
    t.try_into_vec_as::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

#[test]
fn diag_normal_log_prob_and_entropy_match_scipy() {
    // from scipy.stats import norm; import numpy as np
    // x=np.array([0.5,-1.0,2.0]); m=np.array([0.1,0.2,-0.3]); lv=np.array([0.0,-1.0,1.5])
    // norm.logpdf(x, m, np.exp(0.5*lv)).sum()  -> -5.634157789697127
    // norm.entropy(m, np.exp(0.5*lv)).sum()    ->  4.5068155996140185
    let device = common::device();
    let q = DiagNormal::new(
        row(&[0.1, 0.2, -0.3], &device),
        row(&[0.0, -1.0, 1.5], &device),
    )
    .unwrap();
    let lp = vec1(q.log_prob(&row(&[0.5, -1.0, 2.0], &device)))[0];
    let h = vec1(q.entropy())[0];
    // f32 evaluation of O(10) terms: 1e-5 relative.
    assert!((lp - -5.634157789697127).abs() < 1e-4, "{lp}");
    assert!((h - 4.5068155996140185).abs() < 1e-4, "{h}");
}

#[test]
fn bernoulli_log_prob_matches_scipy_and_is_stable_at_extreme_logits() {
    // from scipy.stats import bernoulli; from scipy.special import expit
    // bernoulli.logpmf([1,0,1], expit([2.0,-3.0,0.5])).sum() -> -0.6495923467968213
    let device = common::device();
    let p = Bernoulli::new(row(&[2.0, -3.0, 0.5], &device));
    let lp = vec1(p.log_prob(&row(&[1.0, 0.0, 1.0], &device)))[0];
    assert!((lp - -0.6495923467968213).abs() < 1e-5, "{lp}");
    // Closed form at |logit| = 100: log sigmoid(100) = −ln(1 + e^−100) ≈ −3.7e−44 (0 in f32),
    // log(1 − sigmoid(100)) = −100 − ln(1 + e^−100) ≈ −100. A naive log(sigmoid) gives −inf.
    let cases = [
        (100.0f32, 1.0f32, 0.0f64),
        (100.0, 0.0, -100.0),
        (-100.0, 1.0, -100.0),
        (-100.0, 0.0, 0.0),
    ];
    for (logit, x, expected) in cases {
        let lp = vec1(Bernoulli::new(row(&[logit], &device)).log_prob(&row(&[x], &device)))[0];
        assert!(
            (lp - expected).abs() < 1e-4,
            "logit {logit}, x {x}: {lp} vs {expected}"
        );
    }
    let p = Bernoulli::new(row(&[100.0, 100.0, -100.0, -100.0], &device));
    let zeros = vec1(p.log_prob(&row(&[0.0, 0.0, 0.0, 0.0], &device)))[0];
    assert!((zeros - -200.0).abs() < 1e-3, "{zeros}");
}

/// Whole images: `log_prob` over events of 784 pixels (taken in groups of 16 factors per
/// logarithm), 300 (groups of 15) and 97 (a prime: one factor per logarithm) against the
/// same sum in f64 on the host, logits spread over [−20, 20]. Tolerance 1e-6 of the sum
/// of the terms' magnitudes: f32 rounds each term and the partial sums at 6e-8 relative,
/// and the grouped products add under 1e-6 nats per group.
#[test]
fn bernoulli_log_prob_of_whole_images_matches_an_f64_sum() {
    let device = common::device();
    for n in [784usize, 300, 97] {
        let rows = 3;
        let logits: Vec<f32> = (0..rows * n)
            .map(|i| ((i * 7919) % 4001) as f32 / 100.0 - 20.0)
            .collect();
        let x: Vec<f32> = (0..rows * n)
            .map(|i| ((i * 31) % 3 == 0) as u8 as f32)
            .collect();
        let p = Bernoulli::new(Tensor::<2>::from_data(
            TensorData::new(logits.clone(), [rows, n]),
            &device,
        ));
        let lp = vec1(p.log_prob(&Tensor::from_data(
            TensorData::new(x.clone(), [rows, n]),
            &device,
        )));
        assert_eq!(lp.len(), rows);
        for (r, &got) in lp.iter().enumerate() {
            let (mut sum, mut magnitude) = (0.0f64, 0.0f64);
            for i in r * n..(r + 1) * n {
                let (l, x) = (logits[i] as f64, x[i] as f64);
                let term = x * l - (l.max(0.0) + (-l.abs()).exp().ln_1p());
                sum += term;
                magnitude += term.abs();
            }
            assert!(
                (got - sum).abs() < 1e-6 * magnitude,
                "n {n}, row {r}: {got} vs {sum}"
            );
        }
    }
}

#[test]
fn log_sum_exp_is_exact_at_large_magnitudes() {
    // from scipy.special import logsumexp
    // logsumexp([1e4, 1e4-1.0, -1e4]) -> 10000.31326168752
    // logsumexp([-1e4, -1e4])         -> -9999.30685281944
    let device = common::device();
    let x = Tensor::<2>::from_floats(
        [
            [1.0e4, 1.0e4 - 1.0, -1.0e4],
            [-1.0e4, -1.0e4, f32::NEG_INFINITY],
        ],
        &device,
    );
    let lse = log_sum_exp(x.clone(), 1).try_into_vec_as::<f32>().unwrap();
    // f32 spacing at 1e4 is 9.8e-4: the result must be within one ulp.
    assert!(
        (lse[0] as f64 - 10000.31326168752).abs() < 1e-3,
        "{}",
        lse[0]
    );
    assert!(
        (lse[1] as f64 - -9999.30685281944).abs() < 1e-3,
        "{}",
        lse[1]
    );
    let lme = log_mean_exp(x, 1).try_into_vec_as::<f32>().unwrap();
    assert!((lme[0] as f64 - (10000.31326168752 - 3f64.ln())).abs() < 1e-3);
    // All −inf gives −inf, not NaN.
    let all_neg_inf = Tensor::<2>::from_floats([[f32::NEG_INFINITY, f32::NEG_INFINITY]], &device);
    assert_eq!(
        log_sum_exp(all_neg_inf, 1).into_scalar::<f32>(),
        f32::NEG_INFINITY
    );
    assert!((log_sum_exp_f64(&[1e4, 1e4 - 1.0, -1e4]) - 10000.31326168752).abs() < 1e-9);
}

/// Mean and standard error of `log q(z) − log p(z)` over `z ~ q`, one row per draw.
fn mc_mean_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let m = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

#[test]
fn kl_closed_forms_match_monte_carlo_within_4_se() {
    // 20,000 draws, seed 11: |closed form − MC mean| < 4 standard errors of the MC mean.
    let device = common::device();
    device.seed(11);
    let n = 20_000;
    let mean = row(&[0.5, -1.0, 0.3], &device).repeat_dim(0, n);
    let log_var = row(&[-0.5, 0.4, 0.0], &device).repeat_dim(0, n);
    let q = DiagNormal::new(mean, log_var).unwrap();
    let z = q.sample();

    let prior = StdNormal::new(3).unwrap();
    let kl = vec1(q.kl(&prior))[0];
    let mc: Vec<f64> = vec1(q.log_prob(&z) - prior.log_prob(&z));
    let (m, se) = mc_mean_se(&mc);
    assert!(
        (m - kl).abs() < 4.0 * se,
        "KL to N(0,I): closed {kl}, MC {m} ± {se}"
    );

    let p = DiagNormal::new(
        row(&[0.0, 0.5, -0.2], &device).repeat_dim(0, n),
        row(&[0.3, -0.2, 0.8], &device).repeat_dim(0, n),
    )
    .unwrap();
    let kl = vec1(q.kl(&p))[0];
    let mc: Vec<f64> = vec1(q.log_prob(&z) - p.log_prob(&z));
    let (m, se) = mc_mean_se(&mc);
    assert!(
        (m - kl).abs() < 4.0 * se,
        "KL to N(m,s): closed {kl}, MC {m} ± {se}"
    );

    // Entropy: −E_q[log q].
    let h = vec1(q.entropy())[0];
    let mc: Vec<f64> = vec1(q.log_prob(&z)).into_iter().map(|v| -v).collect();
    let (m, se) = mc_mean_se(&mc);
    assert!(
        (m - h).abs() < 4.0 * se,
        "entropy: closed {h}, MC {m} ± {se}"
    );
}

#[test]
fn gradients_flow_through_reparameterised_samples() {
    // z = μ + exp(½ log_var)·ε; for loss = Σ z², ∂/∂μ = 2z and ∂/∂log_var = z·ε·σ.
    let device = common::device().autodiff();
    let mu = row(&[0.5, -1.0], &device).require_grad();
    let lv = row(&[0.2, -0.6], &device).require_grad();
    let eps = row(&[1.3, -0.4], &device);
    let q = DiagNormal::new(mu.clone(), lv.clone()).unwrap();
    let z = q.sample_with_noise(eps).unwrap();
    let grads = z.clone().powi_scalar(2).sum().backward();
    let g_mu = mu.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap();
    let g_lv = lv.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap();
    for (i, (m, l, e)) in [(0.5f32, 0.2f32, 1.3f32), (-1.0, -0.6, -0.4)]
        .into_iter()
        .enumerate()
    {
        let sigma = (0.5 * l).exp();
        let zi = m + sigma * e;
        assert!(
            (g_mu[i] - 2.0 * zi).abs() < 1e-5,
            "dμ {i}: {} vs {}",
            g_mu[i],
            2.0 * zi
        );
        assert!(
            (g_lv[i] - zi * e * sigma).abs() < 1e-5,
            "dlog_var {i}: {} vs {}",
            g_lv[i],
            zi * e * sigma
        );
    }
    // A draw from `sample()` is differentiable in μ as well.
    let grads = q.sample().sum().backward();
    let g = mu.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap();
    assert_eq!(g, vec![1.0, 1.0]);
}

#[test]
fn gaussian_likelihood_learns_its_variance_and_fixes_it_on_request() {
    let device = common::device().autodiff();
    let learned = GaussianMlpDecoderConfig::new(vec![2, 3])
        .with_variance(DecoderVariance::Learned(2.0))
        .init(&device)
        .unwrap();
    let z = Tensor::<2>::zeros([4, 2], &device);
    let p = learned.decode(&z);
    // log_var starts at ln 2 everywhere.
    let lv = p.log_var().try_into_vec_as::<f32>().unwrap();
    assert!(lv.iter().all(|v| (v - 2f32.ln()).abs() < 1e-6));
    let x = Tensor::<2>::ones([4, 3], &device);
    let grads = p.log_prob(&x).sum().backward();
    let param = learned.learned_log_var.as_ref().unwrap();
    assert!(
        param.val().grad(&grads).is_some(),
        "the learned log-variance gets a gradient"
    );

    let fixed = GaussianMlpDecoderConfig::new(vec![2, 3])
        .with_variance(DecoderVariance::Fixed(0.25))
        .init(&device)
        .unwrap();
    let p = fixed.decode(&z);
    let lv = p.log_var().try_into_vec_as::<f32>().unwrap();
    assert!(lv.iter().all(|v| (v - 0.25f32.ln()).abs() < 1e-6));
    assert!(fixed.learned_log_var.is_none());
    // Invalid variance is an error, not a panic.
    assert!(
        GaussianMlpDecoderConfig::new(vec![2, 3])
            .with_variance(DecoderVariance::Fixed(f64::NAN))
            .init(&device)
            .is_err()
    );
}
