//! The variational information bottleneck: its ELBO terms, importance weights and class
//! probabilities against a host f64 recomputation from the module's own weights; training
//! through the shared fit loop; the rate falling with β; bad input as errors.

use crate::common;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::host;
use elbo::data::{Images, LabeledBatch, LabeledImageData, TrainData};
use elbo::models::{Vib, VibConfig};
use elbo::train::{FitConfig, fit};
use elbo::{Batch, Error, LatentVariableModel};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const INPUT: usize = 4;
const HIDDEN: usize = 5;
const LATENT: usize = 3;
const CLASSES: usize = 3;

/// A `rows × cols` host matrix times a `[cols, out]` weight plus a bias (burn's `Linear`
/// stores the weight as `[d_in, d_out]`: `y = x W + b`).
fn affine(x: &[f64], rows: usize, w: &[f64], b: &[f64], out: usize) -> Vec<f64> {
    let cols = x.len() / rows;
    let mut y = vec![0.0; rows * out];
    for r in 0..rows {
        for o in 0..out {
            let mut s = b[o];
            for c in 0..cols {
                s += x[r * cols + c] * w[c * out + o];
            }
            y[r * out + o] = s;
        }
    }
    y
}

fn linear_weights(layer: &burn::nn::Linear) -> (Vec<f64>, Vec<f64>) {
    (
        host(&layer.weight.val()),
        host(&layer.bias.as_ref().unwrap().val()),
    )
}

/// The encoder's mean and log-variance, recomputed on the host from the module's weights
/// (`x → ReLU(x W₁ + b₁) → (h W_μ + b_μ, h W_v + b_v)`).
fn host_encoder(vib: &Vib, x: &[f64], rows: usize) -> (Vec<f64>, Vec<f64>) {
    let trunk = vib.encoder.trunk.as_ref().unwrap();
    assert_eq!(trunk.layers.len(), 1);
    let (w1, b1) = linear_weights(&trunk.layers[0]);
    let h: Vec<f64> = affine(x, rows, &w1, &b1, HIDDEN)
        .into_iter()
        .map(|v| v.max(0.0))
        .collect();
    let (wm, bm) = linear_weights(&vib.encoder.head.mean);
    let (wv, bv) = linear_weights(&vib.encoder.head.log_var);
    (
        affine(&h, rows, &wm, &bm, LATENT),
        affine(&h, rows, &wv, &bv, LATENT),
    )
}

/// Host log-softmax of each row, by the max-shifted log-sum-exp in f64.
fn host_log_softmax(logits: &[f64], classes: usize) -> Vec<f64> {
    logits
        .chunks(classes)
        .flat_map(|row| {
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            row.iter().map(move |v| v - lse).collect::<Vec<_>>()
        })
        .collect()
}

fn tensor2(values: &[f64], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

fn small_vib(device: &Device) -> Vib {
    VibConfig::new(INPUT, CLASSES)
        .with_hidden(vec![HIDDEN])
        .with_latent_dim(LATENT)
        .init(device)
        .unwrap()
}

/// Fixed inputs, labels and noise for the deterministic checks.
fn fixture(rows: usize, draws: usize, seed: u64) -> (Vec<f64>, Vec<i64>, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = (0..rows * INPUT)
        .map(|_| rng.random::<f64>() * 4.0 - 2.0)
        .collect();
    let y = (0..rows).map(|i| (i % CLASSES) as i64).collect();
    let eps = (0..draws * rows * LATENT)
        .map(|_| rng.random::<f64>() * 4.0 - 2.0)
        .collect();
    (x, y, eps)
}

fn host_z(mu: &[f64], lv: &[f64], eps: &[f64]) -> Vec<f64> {
    // Noise row j·B + i belongs to example i.
    eps.iter()
        .enumerate()
        .map(|(r, e)| {
            let i = r % mu.len();
            mu[i] + (0.5 * lv[i]).exp() * e
        })
        .collect()
}

#[test]
fn elbo_terms_match_a_host_recomputation_from_the_weights() {
    // Tolerance 1e-4 absolute: every quantity is O(1–10) and computed in f32 on the device
    // (relative rounding ~1e-7 per operation, a few dozen operations), against f64 here.
    let device = common::device();
    device.seed(11);
    let vib = small_vib(&device);
    let rows = 6;
    let (x, y, eps) = fixture(rows, 1, 1);
    let batch = LabeledBatch::from_labels(tensor2(&x, rows, INPUT, &device), &y).unwrap();
    let terms = vib
        .elbo_with_noise(&batch, tensor2(&eps, rows, LATENT, &device))
        .unwrap();

    let (mu, lv) = host_encoder(&vib, &x, rows);
    let z = host_z(&mu, &lv, &eps);
    let (wc, bc) = linear_weights(&vib.classifier);
    let log_p = host_log_softmax(&affine(&z, rows, &wc, &bc, CLASSES), CLASSES);
    let rec = host(&terms.reconstruction);
    let kl = host(&terms.kl[0]);
    assert_eq!(terms.kl.len(), 1);
    for i in 0..rows {
        let want_rec = log_p[i * CLASSES + y[i] as usize];
        let want_kl: f64 = (0..LATENT)
            .map(|d| {
                let (m, v) = (mu[i * LATENT + d], lv[i * LATENT + d]);
                0.5 * (m * m + v.exp() - 1.0 - v)
            })
            .sum();
        assert!(
            (rec[i] - want_rec).abs() < 1e-4,
            "row {i}: log q(y|z) {} vs host {want_rec}",
            rec[i]
        );
        assert!(
            (kl[i] - want_kl).abs() < 1e-4,
            "row {i}: KL {} vs host {want_kl}",
            kl[i]
        );
    }
    // The random wrapper gives the same shapes and a valid log-probability.
    let terms = vib.elbo(&batch).unwrap();
    assert_eq!(terms.elbo().dims(), [rows]);
    assert!(host(&terms.reconstruction).iter().all(|&r| r <= 1e-6));
}

#[test]
fn the_cross_entropy_is_stable_for_huge_logits() {
    // Noise of ±300 puts z, and so the logits, in the hundreds: a naive log(softmax(·)) in
    // f32 underflows to −inf for every label but the arg-max. The stable log-softmax stays
    // finite and matches the f64 host value; tolerance 1e-2 absolute on values of
    // magnitude up to ~1e3 (f32 relative rounding ~6e-8 on logits of a few hundred).
    let device = common::device();
    device.seed(12);
    let vib = small_vib(&device);
    let rows = 6;
    let (x, y, eps) = fixture(rows, 1, 2);
    let eps: Vec<f64> = eps.iter().map(|e| e * 150.0).collect();
    let batch = LabeledBatch::from_labels(tensor2(&x, rows, INPUT, &device), &y).unwrap();
    let terms = vib
        .elbo_with_noise(&batch, tensor2(&eps, rows, LATENT, &device))
        .unwrap();
    let (mu, lv) = host_encoder(&vib, &x, rows);
    let z = host_z(&mu, &lv, &eps);
    let (wc, bc) = linear_weights(&vib.classifier);
    let log_p = host_log_softmax(&affine(&z, rows, &wc, &bc, CLASSES), CLASSES);
    let rec = host(&terms.reconstruction);
    let mut saw_tiny = false;
    for i in 0..rows {
        let want = log_p[i * CLASSES + y[i] as usize];
        saw_tiny |= want < -104.0; // below f32's smallest subnormal, e^-103.3
        assert!(rec[i].is_finite(), "row {i}: {}", rec[i]);
        assert!(
            (rec[i] - want).abs() < 1e-2,
            "row {i}: {} vs {want}",
            rec[i]
        );
    }
    assert!(
        saw_tiny,
        "the fixture should include a label whose probability underflows f32 ({log_p:?})"
    );
}

#[test]
fn importance_weights_match_a_host_recomputation() {
    // log w = log q(y|z) + log N(z; 0, I) − log N(z; μ, σ²), k = 3 draws per example.
    // Tolerance 1e-4 absolute, as for the ELBO terms.
    let device = common::device();
    device.seed(13);
    let vib = small_vib(&device);
    let (rows, k) = (4, 3);
    let (x, y, eps) = fixture(rows, k, 3);
    let batch = LabeledBatch::from_labels(tensor2(&x, rows, INPUT, &device), &y).unwrap();
    let log_w = vib
        .log_importance_weights_with_noise(&batch, tensor2(&eps, k * rows, LATENT, &device))
        .unwrap();
    assert_eq!(log_w.dims(), [rows, k]);
    let log_w = host(&log_w);
    let (mu, lv) = host_encoder(&vib, &x, rows);
    // Tile μ and log σ² as the noise is laid out (row j·B + i is draw j of example i).
    let mu_k: Vec<f64> = (0..k).flat_map(|_| mu.iter().cloned()).collect();
    let lv_k: Vec<f64> = (0..k).flat_map(|_| lv.iter().cloned()).collect();
    let z = host_z(&mu_k, &lv_k, &eps);
    let (wc, bc) = linear_weights(&vib.classifier);
    let log_p = host_log_softmax(&affine(&z, k * rows, &wc, &bc, CLASSES), CLASSES);
    let ln_2pi = (2.0 * std::f64::consts::PI).ln();
    for j in 0..k {
        for i in 0..rows {
            let r = j * rows + i;
            let mut log_prior = 0.0;
            let mut log_q = 0.0;
            for d in 0..LATENT {
                let (zz, m, v) = (
                    z[r * LATENT + d],
                    mu_k[r * LATENT + d],
                    lv_k[r * LATENT + d],
                );
                log_prior += -0.5 * (zz * zz + ln_2pi);
                log_q += -0.5 * (ln_2pi + v + (zz - m).powi(2) / v.exp());
            }
            let want = log_p[r * CLASSES + y[i] as usize] + log_prior - log_q;
            let got = log_w[i * k + j];
            assert!(
                (got - want).abs() < 1e-4,
                "example {i}, draw {j}: {got} vs {want}"
            );
        }
    }
    assert_eq!(
        vib.log_importance_weights(&batch, 5).unwrap().dims(),
        [rows, 5]
    );
}

#[test]
fn predicted_probabilities_average_the_softmax_over_draws() {
    // Tolerance 1e-5: probabilities in [0, 1] from f32 softmaxes, averaged over 4 draws.
    let device = common::device();
    device.seed(14);
    let vib = small_vib(&device);
    let (rows, draws) = (5, 4);
    let (x, _, eps) = fixture(rows, draws, 4);
    let xt = tensor2(&x, rows, INPUT, &device);
    let p = vib
        .predict_proba_with_noise(&xt, tensor2(&eps, draws * rows, LATENT, &device))
        .unwrap();
    assert_eq!(p.dims(), [rows, CLASSES]);
    let p = host(&p);
    let (mu, lv) = host_encoder(&vib, &x, rows);
    let mu_k: Vec<f64> = (0..draws).flat_map(|_| mu.iter().cloned()).collect();
    let lv_k: Vec<f64> = (0..draws).flat_map(|_| lv.iter().cloned()).collect();
    let z = host_z(&mu_k, &lv_k, &eps);
    let (wc, bc) = linear_weights(&vib.classifier);
    let log_p = host_log_softmax(&affine(&z, draws * rows, &wc, &bc, CLASSES), CLASSES);
    for i in 0..rows {
        for c in 0..CLASSES {
            let want = (0..draws)
                .map(|s| log_p[(s * rows + i) * CLASSES + c].exp())
                .sum::<f64>()
                / draws as f64;
            let got = p[i * CLASSES + c];
            assert!(
                (got - want).abs() < 1e-5,
                "row {i}, class {c}: {got} vs {want}"
            );
        }
    }
    // The random version: rows are distributions (sum to 1 within f32 rounding of a
    // 3-term sum of means, 1e-5).
    let p = host(&vib.predict_proba(&xt, 12).unwrap());
    for row in p.chunks(CLASSES) {
        assert!(row.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{row:?}");
    }
}

#[test]
fn labeled_batches_keep_inputs_and_labels_together() {
    let device = common::device();
    let x = Tensor::<2>::from_floats([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], &device);
    let batch = LabeledBatch::from_labels(x, &[0, 1, 2]).unwrap();
    let picked = batch.select_rows(Tensor::<1, Int>::from_ints([2, 0, 2], &device));
    assert_eq!(picked.labels().unwrap(), vec![2, 0, 2]);
    assert_eq!(host(&picked.x), vec![2.0, 2.0, 0.0, 0.0, 2.0, 2.0]);
    let tiled = batch.repeat_rows(2).narrow_rows(2, 3);
    assert_eq!(tiled.labels().unwrap(), vec![2, 0, 1]);
    assert_eq!(host(&tiled.x), vec![2.0, 2.0, 0.0, 0.0, 1.0, 1.0]);
}

/// Three linearly separable classes as 1×4 "images": class `c` lights pixel `c` (grey
/// level 150–255), every other pixel stays dark (0–80); the fourth pixel is noise only.
/// So `x_c − max_{d≠c} x_d >= 70/255` for every example.
fn separable(n: usize, seed: u64) -> LabeledImageData {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut pixels = Vec::with_capacity(n * 4);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % 3;
        for d in 0..4 {
            pixels.push(if d == c {
                rng.random_range(150..=255u8)
            } else {
                rng.random_range(0..=80u8)
            });
        }
        labels.push(c as u8);
    }
    let images = Images {
        count: n,
        channels: 1,
        rows: 1,
        cols: 4,
        pixels,
    };
    LabeledImageData::new(images, labels, 3).unwrap()
}

fn train(beta: f64, epochs: usize, data: &LabeledImageData, device: &Device) -> Vib {
    device.seed(5);
    let config = VibConfig::new(4, 3)
        .with_hidden(vec![32])
        .with_latent_dim(4)
        .with_beta(beta);
    let mut fit_config = FitConfig::new(epochs, 32);
    fit_config.progress = false;
    fit_config.seed = 5;
    fit_config.learning_rate = 1e-2;
    fit_config.objective = config.objective();
    let model = config.init(device).unwrap();
    let (model, history) = fit(model, &config, data, &fit_config, device).unwrap();
    assert!(history.epochs.iter().all(|e| e.loss.is_finite()));
    model.valid()
}

#[test]
fn fit_reaches_high_accuracy_on_separable_data() {
    // 300 examples, batch 32: 10 steps per epoch, 8 epochs. The classes are separated by a
    // margin of 70 grey levels, so a trained linear read-out is perfect; 90% on a fresh
    // test set leaves room for the posterior noise and an unlucky initialisation.
    let device = common::device();
    let data = separable(300, 21);
    let test = separable(300, 22).range(0, 300, &device).unwrap();
    let vib = train(1e-3, 8, &data, &device);
    let accuracy = vib.accuracy(&test, 12).unwrap();
    assert!(accuracy > 0.9, "test accuracy {accuracy}");
}

#[test]
fn a_larger_beta_gives_a_smaller_rate() {
    // Same data, seed and steps (8 epochs of 10 steps); β = 1 against β = 1e-4.
    // With β = 1 coding never pays: the rate E_x KL(p(z|x) ‖ r) is at least I(Z; X) ≥
    // I(Z; Y), and I(Z; Y) is the most the cross-entropy can gain, so the optimum is the
    // trivial encoder at rate 0. With β = 1e-4 the model must classify the training set
    // (we check > 90%), and by Fano's inequality 90% on three balanced classes needs
    // I(Z; Y) ≥ ln 3 − h(0.1) − 0.1·ln 2 ≈ 0.70 nats, hence a rate ≥ 0.70 nats.
    // We require the small-β rate to exceed the β = 1 rate by 0.5 nats and by a factor 2:
    // safe on both sides of that argument (seed 5 gives ≈ 19 and ≈ 0.05 nats).
    let device = common::device();
    let data = separable(300, 23);
    let all = data.range(0, 300, &device).unwrap();
    let high = train(1.0, 8, &data, &device).mean_kl(&all.x).unwrap();
    let low_model = train(1e-4, 8, &data, &device);
    let low = low_model.mean_kl(&all.x).unwrap();
    let accuracy = low_model.accuracy(&all, 12).unwrap();
    assert!(
        accuracy > 0.9,
        "training accuracy with β = 1e-4: {accuracy}"
    );
    assert!(
        low > 2.0 * high && low - high > 0.5,
        "rate with β = 1e-4: {low:.3} nats, with β = 1: {high:.3} nats"
    );
    assert!(high >= 0.0);
}

#[test]
fn bad_input_is_an_error() {
    let device = common::device();
    let base = || VibConfig::new(INPUT, CLASSES).with_hidden(vec![HIDDEN]);
    for config in [
        base().with_beta(-1e-3),
        base().with_beta(f64::NAN),
        base().with_beta(f64::INFINITY),
        base().with_latent_dim(0),
        base().with_hidden(vec![0]),
        VibConfig::new(0, CLASSES),
        VibConfig::new(INPUT, 1),
        VibConfig::new(INPUT, 0),
    ] {
        assert!(
            matches!(config.init(&device), Err(Error::InvalidConfig { .. })),
            "{config:?} should be rejected"
        );
    }

    let vib = small_vib(&device);
    let x = Tensor::<2>::ones([3, INPUT], &device);
    // Labels out of range (too large, negative).
    for labels in [[0, 1, 3], [0, -1, 2]] {
        let batch = LabeledBatch::from_labels(x.clone(), &labels).unwrap();
        assert!(matches!(vib.elbo(&batch), Err(Error::InvalidConfig { .. })));
        assert!(vib.log_importance_weights(&batch, 2).is_err());
        assert!(vib.accuracy(&batch, 1).is_err());
    }
    // Label count differs from the rows of x: the constructor refuses, and so does the
    // model when the fields are set directly.
    let y = Tensor::<1, Int>::from_ints([0, 1], &device);
    assert!(matches!(
        LabeledBatch::new(x.clone(), y.clone()),
        Err(Error::ShapeMismatch { .. })
    ));
    let bad = LabeledBatch { x: x.clone(), y };
    assert!(matches!(vib.elbo(&bad), Err(Error::ShapeMismatch { .. })));
    // Wrong input width.
    let wide = LabeledBatch::from_labels(Tensor::ones([3, INPUT + 1], &device), &[0, 1, 2]);
    let wide = wide.unwrap();
    assert!(matches!(vib.elbo(&wide), Err(Error::ShapeMismatch { .. })));
    assert!(vib.predict_proba(&wide.x, 2).is_err());
    assert!(vib.mean_kl(&wide.x).is_err());
    // Zero draws, noise of the wrong shape, a latent of the wrong width.
    let good = LabeledBatch::from_labels(x.clone(), &[0, 1, 2]).unwrap();
    assert!(vib.predict_proba(&x, 0).is_err());
    assert!(vib.log_importance_weights(&good, 0).is_err());
    assert!(
        vib.elbo_with_noise(&good, Tensor::zeros([3, LATENT + 1], &device))
            .is_err()
    );
    assert!(
        vib.predict_proba_with_noise(&x, Tensor::zeros([4, LATENT], &device))
            .is_err()
    );
    assert!(
        vib.logits(&Tensor::zeros([2, LATENT + 1], &device))
            .is_err()
    );

    // Labelled images: label count, label range, number of classes.
    let images = Images {
        count: 3,
        channels: 1,
        rows: 1,
        cols: 2,
        pixels: vec![0; 6],
    };
    assert!(matches!(
        LabeledImageData::new(images.clone(), vec![0, 1], 2),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        LabeledImageData::new(images.clone(), vec![0, 1, 2], 2),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(LabeledImageData::new(images.clone(), vec![0, 0, 0], 1).is_err());
    let data = LabeledImageData::new(images, vec![0, 1, 1], 2).unwrap();
    let mut rng = StdRng::seed_from_u64(0);
    assert!(data.batch(&[0, 3], &mut rng, &device).is_err());
    assert!(data.range(2, 2, &device).is_err());
}
