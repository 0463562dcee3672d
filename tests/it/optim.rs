//! The fused Adam / AdamW optimizer against burn's own `Adam` and `AdamW` (an independent
//! implementation of the same algorithm, composed from tensor operations), its state
//! through a record round trip, copy-on-write of shared parameters, and bad
//! hyper-parameters.

// burn's own `forward` is the independent reference of these tests (the models run
// their layers through `elbo::kernels::Run`).
#![allow(clippy::disallowed_methods)]

use crate::common;

use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};

use common::host;
use elbo::Error;
use elbo::optim::FusedAdamConfig;

/// A 5 → 3 linear layer with fixed weights (no draw from the device's random stream).
fn linear(device: &Device) -> Linear {
    LinearConfig::new(5, 3)
        .with_initializer(Initializer::Constant { value: 0.3 })
        .init(device)
}

/// The gradients of `Σ (W x + b)² · scale` over a fixed batch, whose sign and size change
/// from step to step so both moments matter.
fn grads(model: &Linear, step: usize, device: &Device) -> GradientsParams {
    let x: Vec<f32> = (0..20)
        .map(|i| (((i * 7 + step * 3) % 11) as f32 - 5.0) / 4.0)
        .collect();
    let x = Tensor::<1>::from_floats(x.as_slice(), device).reshape([4, 5]);
    let scale = if step.is_multiple_of(2) { 1.0 } else { -0.01 };
    let loss = model.forward(x).powf_scalar(2.0).sum().mul_scalar(scale);
    GradientsParams::from_grads(loss.backward(), model)
}

/// `steps` optimizer steps at learning rate `lr`; the weights and bias after each, on the
/// host.
fn run(mut optimizer: ModuleOptimizer, steps: usize, lr: f64) -> Vec<Vec<f64>> {
    let device = common::device().autodiff();
    let mut model = linear(&device);
    let mut trace = Vec::new();
    for step in 0..steps {
        let g = grads(&model, step, &device);
        model = optimizer.step(lr, model, g);
        let mut values = host(&model.weight.val());
        values.extend(host(&model.bias.as_ref().unwrap().val()));
        trace.push(values);
    }
    trace
}

/// Asserts that two traces agree to `1e-5 · lr` per step taken plus `1e-6 · |θ|`: both
/// compute the update in f32, burn's AdamW with the bias corrections applied to the moments
/// and ours folded into two scalars, so they differ by a few roundings of an update of size
/// about `lr` per step.
fn assert_traces_agree(ours: &[Vec<f64>], burns: &[Vec<f64>], lr: f64, what: &str) {
    for (step, (a, b)) in ours.iter().zip(burns).enumerate() {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let tolerance = 1e-5 * lr * (step + 1) as f64 + 1e-6 * y.abs();
            assert!(
                (x - y).abs() < tolerance,
                "{what}, step {}, value {i}: {x} vs burn's {y}",
                step + 1
            );
        }
    }
    assert_eq!(ours.len(), burns.len());
}

#[test]
fn adam_matches_burns_adam() {
    let lr = 1e-2;
    let ours = run(FusedAdamConfig::new().init().unwrap(), 6, lr);
    let burns = run(AdamConfig::new().with_epsilon(1e-8).init(), 6, lr);
    assert_traces_agree(&ours, &burns, lr, "Adam");
    // The steps move the weights by more than one step size (so agreement is not two
    // copies of the start).
    let moved = ours[5].iter().map(|w| (w - 0.3).abs()).fold(0.0, f64::max);
    assert!(moved > lr, "largest move {moved}");
}

#[test]
fn adamw_matches_burns_adamw() {
    let lr = 1e-2;
    let ours = run(
        FusedAdamConfig::new()
            .with_weight_decay(0.5)
            .with_beta_1(0.8)
            .with_beta_2(0.99)
            .init()
            .unwrap(),
        6,
        lr,
    );
    let burns = run(
        AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(0.5)
            .with_beta_1(0.8)
            .with_beta_2(0.99)
            .init(),
        6,
        lr,
    );
    assert_traces_agree(&ours, &burns, lr, "AdamW");
    // Without decay the result differs by far more than the tolerance: the decay is applied.
    let undecayed = run(
        FusedAdamConfig::new()
            .with_beta_1(0.8)
            .with_beta_2(0.99)
            .init()
            .unwrap(),
        6,
        lr,
    );
    assert!((undecayed[5][0] - ours[5][0]).abs() > 1e-4);
}

/// A resumed optimizer takes the same next step as the one it was saved from: the moments
/// and the step count (which sets the bias corrections) come back from the record.
#[test]
fn state_survives_a_record_round_trip() {
    let device = common::device().autodiff();
    let config = FusedAdamConfig::new();
    let mut optimizer = config.init().unwrap();
    let mut model = linear(&device);
    for step in 0..3 {
        let g = grads(&model, step, &device);
        model = optimizer.step(1e-2, model, g);
    }
    let bytes = optimizer.into_bytes().unwrap();
    let mut restored = config.init().unwrap().from_bytes(bytes).unwrap();
    let expected = optimizer.step(1e-2, model.clone(), grads(&model, 3, &device));
    let actual = restored.step(1e-2, model.clone(), grads(&model, 3, &device));
    // A fresh optimizer (step 1, zero moments) takes a different step.
    let fresh = config
        .init()
        .unwrap()
        .step(1e-2, model.clone(), grads(&model, 3, &device));
    let (e, a, f) = (
        host(&expected.weight.val()),
        host(&actual.weight.val()),
        host(&fresh.weight.val()),
    );
    assert_eq!(e, a, "the same update from the same state");
    assert!(e.iter().zip(&f).any(|(x, y)| (x - y).abs() > 1e-4));
}

/// The update happens in place only where the parameter's buffer is not shared: a copy of
/// the model kept before the step (as the weight average keeps one) is unchanged.
#[test]
fn a_kept_copy_of_the_model_is_not_updated() {
    let device = common::device().autodiff();
    let mut optimizer = FusedAdamConfig::new().init().unwrap();
    let model = linear(&device);
    let kept = model.clone();
    let g = grads(&model, 0, &device);
    let updated = optimizer.step(1e-2, model, g);
    assert!(
        host(&kept.weight.val())
            .iter()
            .all(|&w| w == 0.3_f32 as f64)
    );
    assert!(
        host(&updated.weight.val())
            .iter()
            .all(|&w| (w - 0.3).abs() > 1e-3)
    );
    // And the weights valid() hands out for evaluation are the updated ones.
    assert_eq!(
        host(&updated.valid().weight.val()),
        host(&updated.weight.val())
    );
}

#[test]
fn bad_hyper_parameters_are_errors() {
    let bad = [
        FusedAdamConfig::new().with_beta_1(1.0),
        FusedAdamConfig::new().with_beta_2(-0.1),
        FusedAdamConfig::new().with_beta_2(f32::NAN),
        FusedAdamConfig::new().with_epsilon(0.0),
        FusedAdamConfig::new().with_epsilon(f32::NAN),
        FusedAdamConfig::new().with_weight_decay(-1e-4),
        FusedAdamConfig::new().with_weight_decay(f32::INFINITY),
    ];
    for config in bad {
        match config.init() {
            Err(Error::InvalidConfig { field, .. }) => {
                assert!(
                    ["beta_1", "beta_2", "epsilon", "weight_decay"].contains(&field),
                    "{field}"
                );
            }
            Err(other) => panic!("{config:?}: unexpected error {other}"),
            Ok(_) => panic!("{config:?} was accepted"),
        }
    }
}
