//! A few hundred steps on a small slice of the real data lower −ELBO by a clear margin,
//! and the IWAE objective trains too.

use crate::common;

use elbo::data::{Binarization, ImageData};
use elbo::models::GaussianVaeConfig;
use elbo::objective::Objective;
use elbo::train::{FitConfig, fit};

#[test]
fn a_few_hundred_steps_lower_the_negative_elbo() {
    let device = common::device();
    let images = common::mnist_train(1024);
    let data = ImageData::new(images, Binarization::Dynamic);
    let config = GaussianVaeConfig::new(784, 10).with_hidden(vec![128]);
    // 1024 images / batch 32 = 32 steps per epoch, 10 epochs = 320 steps.
    let mut fit_config = FitConfig::new(10, 32);
    fit_config.progress = false;
    fit_config.seed = 3;
    let (_, history) = fit(
        config.init(&device).unwrap(),
        &config,
        &data,
        &fit_config,
        &device,
    )
    .unwrap();
    let first = history.epochs[0].neg_bound;
    let last = history.epochs.last().unwrap().neg_bound;
    // At initialisation −ELBO is ≈ 784·ln 2 ≈ 543 nats; a working loop reaches < 200 within
    // these steps. Requiring a drop of 100 nats leaves a wide margin for seeds.
    assert!(
        first - last > 100.0,
        "−ELBO went from {first:.1} to {last:.1}"
    );
    assert!(
        history
            .epochs
            .iter()
            .all(|e| e.neg_bound.is_finite() && e.kl >= 0.0)
    );
}

#[test]
fn the_iwae_objective_trains() {
    let device = common::device();
    let images = common::mnist_train(512);
    let data = ImageData::new(images, Binarization::Dynamic);
    let config = GaussianVaeConfig::new(784, 10).with_hidden(vec![64]);
    let mut fit_config = FitConfig::new(5, 32);
    fit_config.progress = false;
    fit_config.objective = Objective::Iwae { k: 5 };
    let (_, history) = fit(
        config.init(&device).unwrap(),
        &config,
        &data,
        &fit_config,
        &device,
    )
    .unwrap();
    let first = history.epochs[0].neg_bound;
    let last = history.epochs.last().unwrap().neg_bound;
    assert!(
        first - last > 50.0,
        "−IWAE_5 went from {first:.1} to {last:.1}"
    );
}
