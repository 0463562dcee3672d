//! Tests that replay the device's random stream exactly: each runs the fit loop twice from
//! the same seed and compares the weights to the last bit. `device.seed` seeds one stream
//! for the whole process, so these cannot share a process with the other integration
//! tests (`tests/it/`), whose draws would land between their two runs; here they take
//! turns, and nothing else draws.

// The helpers of tests/it/, of which these tests use two.
#[allow(dead_code)]
#[path = "it/common.rs"]
mod common;

use std::sync::Mutex;

use burn::module::Module;

use common::host;
use elbo::data::{Binarization, ImageData, Images};
use elbo::models::GaussianVaeConfig;
use elbo::train::{FitConfig, fit};

/// The tests reseed the process-wide device stream; they take turns.
static SEED_LOCK: Mutex<()> = Mutex::new(());

fn small_data() -> ImageData {
    let images = Images {
        count: 32,
        channels: 1,
        rows: 2,
        cols: 2,
        pixels: (0..128).map(|i| ((i * 37) % 256) as u8).collect(),
    };
    ImageData::new(images, Binarization::Dynamic)
}

/// With decay 0 the average is the last weights: a run with `ema_decay = Some(0)` returns
/// exactly the weights of the same run without it (same seed, same data).
#[test]
fn decay_zero_through_fit_returns_the_last_weights() {
    let _turn = SEED_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let device = common::device();
    let data = small_data();
    let config = GaussianVaeConfig::new(4, 2).with_hidden(vec![8]);
    let run = |ema_decay: Option<f64>| {
        device.seed(3);
        let model = config.init(&device).unwrap();
        let mut fit_config = FitConfig::new(2, 8);
        fit_config.progress = false;
        fit_config.ema_decay = ema_decay;
        let (model, _) = fit(model, &config, &data, &fit_config, &device).unwrap();
        host(&model.valid().decoder.mlp.layers[0].weight.val())
    };
    assert_eq!(run(None), run(Some(0.0)));
}

/// A run stopped after 2 epochs and resumed from its checkpoint to 3 returns the same
/// average as the run done in one go (same seed; the fit loop reseeds every epoch, so the
/// weights match and only a lost average could differ). Restarting the average from the
/// epoch-2 weights instead leaves it `d^4 ≈ 0.96` of the way at those weights after the 4
/// steps of epoch 3, a difference far above the 1e-5 allowed here for f32 reloads.
#[test]
fn the_average_survives_a_checkpoint_and_resume() {
    let _turn = SEED_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let device = common::device();
    let data = small_data();
    let config = GaussianVaeConfig::new(4, 2).with_hidden(vec![8]);
    let dir = std::env::temp_dir().join(format!("elbo-test-ema-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = |epochs: usize, checkpoint: bool| {
        device.seed(5);
        let model = config.init(&device).unwrap();
        let mut fit_config = FitConfig::new(epochs, 8);
        fit_config.progress = false;
        fit_config.learning_rate = 1e-2;
        fit_config.ema_decay = Some(0.99);
        if checkpoint {
            fit_config.checkpoint_dir = Some(dir.clone());
            fit_config.resume = true;
        }
        let (model, _) = fit(model, &config, &data, &fit_config, &device).unwrap();
        host(&model.valid().decoder.mlp.layers[0].weight.val())
    };
    let whole = run(3, false);
    run(2, true);
    let resumed = run(3, true);
    let _ = std::fs::remove_dir_all(&dir);
    let gap = whole
        .iter()
        .zip(&resumed)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(gap < 1e-5, "largest difference {gap}");
}

/// Checkpoint → restore → sample: the model `restore` rebuilds from a checkpoint folder
/// draws, from the same seed, exactly the samples the trained model draws (the weight
/// average's, which `fit` returns and `restore` prefers); for the Gaussian VAE and a small
/// DDPM. A config of another type is an error.
#[test]
fn restored_models_sample_bit_identically() {
    use elbo::models::ddpm::DdpmConfig;
    use elbo::nn::UNetConfig;
    use elbo::train::restore;

    let _turn = SEED_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let device = common::device();
    let dir = std::env::temp_dir().join(format!("elbo-test-restore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut fit_config = FitConfig::new(2, 8);
    fit_config.progress = false;
    fit_config.ema_decay = Some(0.9);
    fit_config.checkpoint_dir = Some(dir.join("vae"));

    let config = GaussianVaeConfig::new(4, 2).with_hidden(vec![8]);
    let (trained, _) = fit(
        config.init(&device).unwrap(),
        &config,
        &small_data(),
        &fit_config,
        &device,
    )
    .unwrap();
    let trained = trained.valid();
    device.seed(9);
    let want = host(&trained.generate(16, &device));
    let (restored, restored_config) =
        restore::<GaussianVaeConfig>(dir.join("vae"), &device).unwrap();
    assert_eq!(restored_config.hidden, vec![8]);
    device.seed(9);
    assert_eq!(host(&restored.generate(16, &device)), want);
    assert!(restore::<DdpmConfig>(dir.join("vae"), &device).is_err());

    let ddpm = DdpmConfig::new(1, 2, 2).with_steps(10).with_unet(
        UNetConfig::new(1)
            .with_base_channels(8)
            .with_channel_mults(vec![1]),
    );
    fit_config.checkpoint_dir = Some(dir.join("ddpm"));
    fit_config.objective = elbo::objective::Objective::ModelLoss;
    let (trained, _) = fit(
        ddpm.init(&device).unwrap(),
        &ddpm,
        &small_data(),
        &fit_config,
        &device,
    )
    .unwrap();
    let trained = trained.valid();
    device.seed(11);
    let want = host(&trained.sample_ancestral(4, false, &device).unwrap());
    let (restored, _) = restore::<DdpmConfig>(dir.join("ddpm"), &device).unwrap();
    device.seed(11);
    assert_eq!(
        host(&restored.sample_ancestral(4, false, &device).unwrap()),
        want
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// NVAE as the trait's default sees it: the same `elbo` and `log_importance_weights`, and
/// `visit_log_importance_weights` left to the default (the whole model, bottom-up tower
/// included, once per chunk).
struct DefaultChunks(elbo::models::nvae::Nvae);

impl elbo::LatentVariableModel for DefaultChunks {
    type Input = burn::tensor::Tensor<2>;

    fn elbo(&self, x: &Self::Input) -> elbo::Result<elbo::ElboTerms> {
        self.0.elbo(x)
    }

    fn log_importance_weights(
        &self,
        x: &Self::Input,
        k: usize,
    ) -> elbo::Result<burn::tensor::Tensor<2>> {
        self.0.log_importance_weights(x, k)
    }
}

/// NVAE's own chunked importance weights (its bottom-up tower once per batch of examples)
/// give the same estimate as the trait's default (the tower once per chunk): the tower is
/// deterministic, and both draw the latents in the same order from the same seed, so the
/// per-example estimates agree to f32 rounding of the repeated features (1e-4 nats, on
/// values of several hundred). Chunks of 7 draws for K = 20 leave a short last chunk.
#[test]
fn nvae_chunked_importance_weights_match_the_default() {
    use elbo::models::nvae::NvaeConfig;
    use elbo::objective::{LikelihoodConfig, log_likelihood};
    let _turn = SEED_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let device = common::device();
    device.seed(11);
    let model = NvaeConfig::new(1, 8, 8)
        .with_channels(4)
        .with_latent_channels(2)
        .init(&device)
        .unwrap()
        .valid();
    let x = burn::tensor::Tensor::<2>::random(
        [3, 64],
        burn::tensor::Distribution::Bernoulli(0.4),
        &device,
    );
    let config = LikelihoodConfig::new(20)
        .with_example_chunk(2)
        .with_sample_chunk(7);
    device.seed(12);
    let own = log_likelihood(&model, &x, &config).unwrap();
    device.seed(12);
    let default = log_likelihood(&DefaultChunks(model), &x, &config).unwrap();
    for (a, b) in own.per_example.iter().zip(&default.per_example) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}

/// On one device the Learner path gives `fit`'s epochs and weights (feature `train`).
#[cfg(feature = "train")]
#[test]
fn on_one_device_the_learner_gives_fits_epochs() {
    let _turn = SEED_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let device = common::device();
    let images = common::mnist_train(576);
    let train = ImageData::new(images.slice(0, 512).unwrap(), Binarization::Dynamic);
    let valid = ImageData::new(images.slice(512, 64).unwrap(), Binarization::Dynamic);
    let config = GaussianVaeConfig::new(784, 8).with_hidden(vec![64]);
    let mut fit_config = FitConfig::new(3, 64);
    fit_config.progress = false;
    fit_config.seed = 5;
    fit_config.lr_schedule = elbo::train::LrSchedule::Cosine { min_lr: 1e-4 };
    // A warm-up over 10 of the 24 steps: the KL weight reads the step count the batches carry.
    fit_config.objective = elbo::objective::Objective::Elbo(elbo::objective::ElboObjective {
        warmup_steps: 10,
        ..elbo::objective::ElboObjective::default()
    });

    // The same starting weights: each init from the same seed.
    let init = || {
        device.seed(9);
        config.init(&device).unwrap()
    };
    let (fitted, fit_history) = fit(init(), &config, &train, &fit_config, &device).unwrap();
    let (learned, learner_history) = elbo::learner::fit_with_learner(
        init(),
        std::sync::Arc::new(train),
        std::sync::Arc::new(valid),
        &fit_config,
        elbo::learner::DeviceStrategy::Single(device.clone()),
    )
    .unwrap();

    // The same batches, rates, steps and operations in the same order: only float
    // non-associativity may differ, far below the 1e-5 allowed. One step out of place (a
    // rate, a warm-up weight or a batch) moves the first epoch's mean by more than 1e-3.
    assert_eq!(learner_history.epochs.len(), 3);
    for (f, l) in fit_history.epochs.iter().zip(&learner_history.epochs) {
        for (name, a, b) in [
            ("loss", f.loss, l.loss),
            ("-ELBO", f.neg_bound, l.neg_bound),
            ("KL", f.kl, l.kl),
            ("rate", f.learning_rate, l.learning_rate),
        ] {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "epoch {}: {name} {a} by fit, {b} by the Learner",
                f.epoch
            );
        }
    }
    let diff = common::max_abs_diff(&common::flatten(&fitted), &common::flatten(&learned));
    assert!(diff < 1e-5, "weights differ by {diff}");
}

/// `ElboBatcher` seeds each device once, the first time it batches for it, from its own
/// seed (feature `train`): with `Binarization::DynamicOnDevice` its draws repeat from its
/// seed and go on from batch to batch (`common::assert_batcher_repeats_from_its_seed`; a
/// batcher that reseeded the device per batch would draw the same batch twice).
#[cfg(feature = "train")]
#[test]
fn the_batcher_seeds_each_device_once() {
    let _turn = SEED_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    common::assert_batcher_repeats_from_its_seed(Binarization::DynamicOnDevice);
}
