//! The custom-model example's networks (`examples/custom_model/model.rs`, included by
//! `main.rs` as it is), in a short version of the example: user-written trunk and decoder in
//! elbo's `Vae` train with `fit` on 512 dequantised MNIST digits (the −ELBO falls by more
//! than 300 nats over 4 epochs; it starts near 1,500), the importance-sampled NLL is finite
//! and below the −ELBO (to 4 standard errors), and `restore` gives back the same weights:
//! reconstructions (deterministic: the posterior mode) match the trained model's exactly.

use burn::module::Module;
use elbo::objective::{LikelihoodConfig, elbo_estimate, log_likelihood};
use elbo::train::{FitConfig, fit, restore};
use rand::SeedableRng;

use crate::common::{self, host};
use crate::custom_example::{CustomVaeConfig, Dequantized, bits_per_dim_8bit};

#[test]
fn the_custom_model_trains_evaluates_and_restores() {
    let device = common::device();
    let dir = std::env::temp_dir().join(format!("elbo-test-custom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let images = common::mnist_train(576);
    let (train, test) = (
        images.slice(0, 512).unwrap(),
        images.slice(512, 64).unwrap(),
    );
    let config = CustomVaeConfig::new(1, 28).with_latent(8).with_width(16);
    let mut fit_config = FitConfig::new(4, 32);
    fit_config.progress = false;
    fit_config.checkpoint_dir = Some(dir.clone());
    let (model, history) = fit(
        config.init(&device).unwrap(),
        &config,
        &Dequantized(train),
        &fit_config,
        &device,
    )
    .unwrap();
    let (first, last) = (history.epochs[0].neg_bound, history.epochs[3].neg_bound);
    assert!(first - last > 300.0, "-ELBO {first} → {last}");

    let model = model.valid();
    let test = Dequantized(test);
    let x = test
        .tensor(&mut rand::rngs::StdRng::seed_from_u64(3), &device)
        .unwrap();
    let ll = log_likelihood(&model, &x, &LikelihoodConfig::new(64)).unwrap();
    let elbo = elbo_estimate(&model, &x, 1).unwrap();
    assert!(ll.mean.is_finite() && ll.std_error.is_finite());
    assert!(
        ll.mean > elbo.mean - 4.0 * (ll.std_error + elbo.std_error),
        "log p(x) {} below the ELBO {}",
        ll.mean,
        elbo.mean
    );
    let bits = bits_per_dim_8bit(ll.mean, 784);
    assert!(bits.is_finite() && bits > 0.0, "{bits} bits/dim");

    let (restored, restored_config) = restore::<CustomVaeConfig>(&dir, &device).unwrap();
    assert_eq!((restored_config.latent, restored_config.width), (8, 16));
    assert_eq!(
        host(&restored.reconstruct(&x).unwrap()),
        host(&model.reconstruct(&x).unwrap())
    );
    let _ = std::fs::remove_dir_all(&dir);
}
