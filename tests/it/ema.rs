//! The weight average: the closed form of repeated updates and bad decays. Its runs
//! through the fit loop, which replay the device's random stream, are in
//! `tests/replay.rs`.

use crate::common;

use burn::module::Module;
use burn::nn::{Initializer, LinearConfig};

use common::host;
use elbo::Ema;
use elbo::train::FitConfig;

/// `n` updates towards a fixed target `θ*` from `θ_0` give
/// `θ̄_n = d^n θ_0 + (1 − d^n) θ*`; with `θ* = 0` that is `d^n θ_0`, checked on the host to
/// f32 precision (1e-6 relative).
#[test]
fn repeated_updates_follow_the_closed_form() {
    let device = common::device();
    let model = LinearConfig::new(3, 4)
        .with_initializer(Initializer::Constant { value: 0.7 })
        .init(&device);
    let zero = model.clone().map(&mut elbo::ema::Zero);
    let d: f64 = 0.9;
    let mut ema = Ema::new(&model, d).unwrap();
    for _ in 0..7 {
        ema.update(&zero);
    }
    let w0 = host(&model.weight.val());
    let w7 = host(&ema.model().weight.val());
    let b0 = host(&model.bias.as_ref().unwrap().val());
    let b7 = host(&ema.model().bias.as_ref().unwrap().val());
    let factor = d.powi(7);
    for (a, b) in w0.iter().chain(&b0).zip(w7.iter().chain(&b7)) {
        assert!(
            (a * factor - b).abs() < 1e-6 * (1.0 + a.abs()),
            "{a} · {factor} vs {b}"
        );
    }
}

#[test]
fn bad_decays_are_errors() {
    let device = common::device();
    let model = LinearConfig::new(2, 2)
        .with_initializer(Initializer::Constant { value: 0.7 })
        .init(&device);
    for d in [1.0, -0.1, f64::NAN] {
        assert!(Ema::new(&model, d).is_err(), "decay {d}");
    }
    let mut fit_config = FitConfig::new(1, 8);
    fit_config.ema_decay = Some(1.5);
    assert!(fit_config.validate().is_err());
}
