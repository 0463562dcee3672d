//! BN-VAE: the KL floor holds at every training step, and bad scales are errors.

use crate::common;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::Tensor;
use common::host;
use elbo::data::{Binarization, ImageData, TrainData, shuffled_batches};
use elbo::models::{BnScale, BnVae, BnVaeConfig};
use elbo::objective::ElboObjective;
use elbo::{Error, LatentVariableModel};
use rand::SeedableRng;

const EPS: f64 = 1e-5; // BnVaeConfig's default BN ε
const DELTA: f64 = 1e-6; // the split head's minimum variance

fn mnist(n: usize) -> ImageData {
    ImageData::new(common::mnist_train(n), Binarization::Dynamic)
}

/// Per-dimension ratio `v / (v + ε)` of BN's output variance for the raw mean (`second =
/// false`) or the raw standard deviation (`second = true`), v = biased batch variance as
/// BN uses.
fn bn_ratio(vae: &BnVae, x: &Tensor<2>, second: bool, n: usize) -> Vec<f64> {
    let (mean, other) = vae.encoder.head.raw(vae.encoder.features(x));
    let raw = if second { other } else { mean }.detach();
    let v = raw
        .var_bias(0)
        .reshape([n])
        .try_into_vec_as::<f32>()
        .unwrap();
    v.iter().map(|&v| v as f64 / (v as f64 + EPS)).collect()
}

/// Trains for `steps` steps and checks at each that the batch-mean KL is at least the
/// analytic floor computed with BN's realised variance ratio. Returns the last KL.
fn check_floor_over_training(scale: BnScale, steps: usize) -> f64 {
    let device = common::device().autodiff();
    device.seed(4);
    let n = 8;
    let data = mnist(1024);
    let mut vae = BnVaeConfig::new(784, n)
        .with_hidden(vec![128])
        .with_scale(scale)
        .init(&device)
        .unwrap();
    let mut optimizer = AdamConfig::new().init();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let mut step = 0;
    let mut last_kl = 0.0;
    while step < steps {
        for idx in shuffled_batches(data.len(), 64, &mut rng) {
            if step == steps {
                break;
            }
            let x = data.batch(&idx, &mut rng, &device).unwrap();
            let (gamma_mu, gamma_sigma) = vae.encoder.head.scales();
            let (gamma_mu, gamma_sigma) = (host(&gamma_mu), host(&gamma_sigma));
            let r_mu = bn_ratio(&vae, &x, false, n);
            let floor: f64 = match scale {
                // ½ Σ_d γ² r_d: the mean's second moment alone (β² and the σ terms are ≥ 0).
                BnScale::Fixed(g) => r_mu.iter().map(|r| 0.5 * g * g * r).sum(),
                // ½ Σ_d (γ_μ² r_μ + m − log m − 1), m = γ_σ² r_σ + δ (Jensen on −log).
                BnScale::LearnedSplit(_) => {
                    let r_sigma = bn_ratio(&vae, &x, true, n);
                    (0..n)
                        .map(|d| {
                            let m = gamma_sigma[d].powi(2) * r_sigma[d] + DELTA;
                            0.5 * (gamma_mu[d].powi(2) * r_mu[d] + m - m.ln() - 1.0)
                        })
                        .sum()
                }
            };
            let terms = vae.elbo(&x).unwrap();
            let kl = terms.kl_total().mean().detach().into_scalar::<f32>() as f64;
            // f32 sums over 64 × 8 terms of O(1): 1e-4 relative slack.
            assert!(
                kl >= floor * (1.0 - 1e-4),
                "step {step}: batch KL {kl:.5} below the floor {floor:.5}"
            );
            last_kl = kl;
            let loss = ElboObjective::default().loss(&terms, step);
            let grads = GradientsParams::from_grads(loss.backward(), &vae);
            vae = optimizer.step(1e-3, vae, grads);
            step += 1;
        }
    }
    // The analytic floor of the encoder agrees with the hand formula (ε aside).
    let floor = vae.encoder.head.kl_floor();
    if let BnScale::Fixed(g) = scale {
        assert!((floor - n as f64 * g * g / 2.0).abs() < 1e-12);
    }
    assert!(floor > 0.0);
    last_kl
}

#[test]
fn fixed_gamma_floor_holds_at_every_training_step() {
    let kl = check_floor_over_training(BnScale::Fixed(0.5), 120);
    assert!(kl >= 8.0 * 0.25 / 2.0 * 0.999, "{kl}");
}

#[test]
fn learned_split_floor_holds_at_every_training_step() {
    let kl = check_floor_over_training(BnScale::LearnedSplit(0.5), 120);
    // −(n/2) log(1 − τ) = 4 ln 2 is a floor for every θ.
    assert!(kl >= 4.0 * 2f64.ln() * 0.999, "{kl}");
}

#[test]
fn learned_split_scales_sum_to_one_and_respect_tau() {
    let device = common::device();
    let vae = BnVaeConfig::new(4, 3)
        .with_hidden(vec![5])
        .with_scale(BnScale::LearnedSplit(0.3))
        .init(&device)
        .unwrap();
    let (mu, sigma) = vae.encoder.head.scales();
    for (m, s) in host(&mu).into_iter().zip(host(&sigma)) {
        assert!((m * m + s * s - 1.0).abs() < 1e-6);
        assert!(m * m >= 0.3 - 1e-6);
    }
    // Inference mode (running statistics) gives finite posteriors.
    let valid = vae.valid();
    let terms = valid.elbo(&Tensor::<2>::ones([2, 4], &device)).unwrap();
    assert!(host(&terms.elbo()).iter().all(|v| v.is_finite()));
}

#[test]
fn invalid_scales_are_errors() {
    let device = common::device();
    for (scale, field) in [
        (BnScale::Fixed(0.0), "gamma"),
        (BnScale::Fixed(-1.0), "gamma"),
        (BnScale::Fixed(f64::NAN), "gamma"),
        (BnScale::LearnedSplit(0.0), "tau"),
        (BnScale::LearnedSplit(1.0), "tau"),
        (BnScale::LearnedSplit(f64::NAN), "tau"),
    ] {
        match BnVaeConfig::new(4, 2).with_scale(scale).init(&device) {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!(
                "{scale:?}: expected InvalidConfig, got {:?}",
                other.map(|_| ())
            ),
        }
    }
    assert!(
        BnVaeConfig::new(4, 2)
            .with_momentum(2.0)
            .init(&device)
            .is_err()
    );
    assert!(
        BnVaeConfig::new(4, 2)
            .with_epsilon(0.0)
            .init(&device)
            .is_err()
    );
}
