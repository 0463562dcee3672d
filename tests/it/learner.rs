//! Training through burn-train's `Learner` (feature `train`): on two replicas the summed
//! gradient of two half-batches is the gradient of the whole batch, and BatchNorm's running
//! statistics come out as one device's; a non-finite loss is an error. (That one device
//! gives `fit`'s numbers is in `tests/replay.rs`: it replays the device's random stream.)
//!
//! This machine has one CPU device per backend (burn's flex device has a single id, and
//! lavapipe is one Vulkan adapter), so "two devices" here are two replicas on one device:
//! burn's multi-device strategy runs one thread per entry of its device list whether or not
//! the entries are the same device, and combines their gradients the same way.

use std::sync::Arc;

use burn::module::Module;
use burn::optim::SgdConfig;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::tensor::{Device, Tensor};
use burn::train::logger::InMemoryMetricLogger;
use burn::train::{ExecutionStrategy, Learner, MultiDeviceOptim, SupervisedTraining};
use elbo::data::{Binarization, ImageData, TrainData};
use elbo::learner::{DeviceStrategy, ElboDataLoader, Trainable, fit_with_learner};
use elbo::models::{BnVae, BnVaeConfig, GaussianVae, GaussianVaeConfig};
use elbo::objective::Objective;
use elbo::train::FitConfig;
use elbo::{
    Decoder, Distribution, ElboTerms, Encoder, Error, KlDivergence, LatentVariableModel, Posterior,
};

use crate::common::{self, flatten, host, max_abs_diff};

/// A Gaussian VAE whose "bound" uses the posterior mode instead of a draw: a deterministic
/// function of the weights and the batch, so one device and two replicas can be compared
/// exactly (the real bound draws noise from the device's one random stream, which two
/// replica threads read in an order neither controls).
#[derive(Module, Debug)]
struct ModeVae {
    vae: GaussianVae,
}

impl LatentVariableModel for ModeVae {
    type Input = Tensor<2>;

    fn elbo(&self, x: &Tensor<2>) -> elbo::Result<ElboTerms> {
        let q = self.vae.encoder.encode(x);
        let reconstruction = self.vae.decoder.decode(&q.mode()).log_prob(x);
        Ok(ElboTerms::new(reconstruction, vec![q.kl(&self.vae.prior)]))
    }

    fn log_importance_weights(&self, _x: &Tensor<2>, _k: usize) -> elbo::Result<Tensor<2>> {
        Err(Error::config("k", "any", "the ELBO (a test double)"))
    }
}

/// One SGD step at rate 1 through burn's `SupervisedTraining` on `devices` (each entry a
/// replica), `batch` examples per replica; returns the trained module.
fn one_sgd_step<M>(model: M, data: &Arc<ImageData>, batch: usize, devices: Vec<Device>) -> M
where
    M: Module + burn::module::ModuleDisplay + LatentVariableModel<Input = Tensor<2>> + 'static,
{
    let replicas = devices.len();
    let trainable = Trainable::new(model.fork(&devices[0]), Objective::default(), replicas);
    sgd_steps(trainable, data, batch, devices).model
}

/// SGD at rate 1 for one epoch of `data` through burn's `SupervisedTraining` on `devices`,
/// `batch` examples per replica; returns the trained `Trainable`.
fn sgd_steps<M>(
    trainable: Trainable<M>,
    data: &Arc<ImageData>,
    batch: usize,
    devices: Vec<Device>,
) -> Trainable<M>
where
    M: Module + burn::module::ModuleDisplay + LatentVariableModel<Input = Tensor<2>> + 'static,
{
    let main = devices[0].clone();
    let strategy = if devices.len() == 1 {
        ExecutionStrategy::single(main.clone())
    } else {
        ExecutionStrategy::multi(devices, MultiDeviceOptim::OptimMainDevice)
    };
    let train = ElboDataLoader::new(data.clone(), batch, 7, 0, &main);
    let valid = ElboDataLoader::new(data.clone(), data.len(), 7, 0, &main);
    let learner = Learner::new(trainable, SgdConfig::new().init(), ConstantLr::new(1.0));
    let dir = std::env::temp_dir().join(format!("elbo-test-learner-{}", std::process::id()));
    let result = SupervisedTraining::new(&dir, Arc::new(train), Arc::new(valid))
        .num_epochs(1)
        .with_metric_logger(InMemoryMetricLogger::new())
        .with_application_logger(None)
        .with_training_strategy(strategy.into())
        .launch(learner);
    result.model
}

/// The EMA is updated once per optimiser step, after it, on the main device: after one SGD
/// step (32 examples: one batch of 32 on one device, or 16 on each of two replicas) the
/// average with decay `d` is `d·θ_0 + (1−d)·θ_1`, θ_1 the weights after the step (1e-5
/// absolute, f32 blends of weights of order 1). An update per replica would give
/// `d²·θ_0 + (1−d²)·θ_1`; one before the step, `θ_0`.
#[test]
fn the_ema_follows_each_optimiser_step_once() {
    let device = common::device().autodiff();
    let data = Arc::new(ImageData::new(
        common::mnist_train(32),
        Binarization::Fixed { seed: 3 },
    ));
    let config = GaussianVaeConfig::new(784, 4).with_hidden(vec![16]);
    device.seed(13);
    let start = ModeVae {
        vae: config.init(&device).unwrap(),
    };
    let theta_0 = flatten(&start);
    let d = 0.6;
    for replicas in [1usize, 2] {
        let trainable = Trainable::new(start.clone(), Objective::default(), replicas)
            .with_ema(d)
            .unwrap();
        let trained = sgd_steps(
            trainable,
            &data,
            32 / replicas,
            vec![device.clone(); replicas],
        );
        let theta_1 = flatten(&trained.model);
        let average = flatten(&trained.ema_model().unwrap());
        let step = max_abs_diff(&theta_0, &theta_1);
        assert!(
            step > 1e-2,
            "{replicas} replica(s): the step moved the weights by {step}"
        );
        let expected: Vec<f64> = theta_0
            .iter()
            .zip(&theta_1)
            .map(|(a, b)| d * a + (1.0 - d) * b)
            .collect();
        let diff = max_abs_diff(&average, &expected);
        assert!(
            diff < 1e-5,
            "{replicas} replica(s): the average is off by {diff}"
        );
    }
}

#[test]
fn two_replicas_of_half_a_batch_take_the_whole_batchs_step() {
    let device = common::device().autodiff();
    // Fixed binarisation: the batches carry no randomness of their own.
    let data = Arc::new(ImageData::new(
        common::mnist_train(64),
        Binarization::Fixed { seed: 1 },
    ));
    let config = GaussianVaeConfig::new(784, 4).with_hidden(vec![16]);
    device.seed(11);
    let start = ModeVae {
        vae: config.init(&device).unwrap(),
    };
    let before = flatten(&start);
    let whole = flatten(&one_sgd_step(
        start.clone(),
        &data,
        64,
        vec![device.clone()],
    ));
    let halves = flatten(&one_sgd_step(
        start,
        &data,
        32,
        vec![device.clone(), device.clone()],
    ));
    // θ − ∇ (rate 1): the step itself is of order 0.1–10 per weight; the two paths add the
    // same per-example gradients in a different order, so they agree to float rounding
    // (1e-4 allows for sums of 64 terms of this size in f32). Without the 1/replicas
    // factor the replicas' sum would be twice the mean's gradient and differ by the whole
    // step.
    let step = max_abs_diff(&before, &whole);
    assert!(step > 1e-2, "the step moved the weights by only {step}");
    let diff = max_abs_diff(&whole, &halves);
    assert!(
        diff < 1e-4 * step.max(1.0),
        "one device and two replicas differ by {diff} (step {step})"
    );
}

#[test]
fn batch_norm_statistics_of_two_replicas_are_one_devices() {
    let device = common::device().autodiff();
    let data = Arc::new(ImageData::new(
        common::mnist_train(64),
        Binarization::Fixed { seed: 2 },
    ));
    let config = BnVaeConfig::new(784, 4).with_hidden(vec![16]);
    device.seed(12);
    let start: BnVae = config.init(&device).unwrap();
    let running_mean = |vae: &BnVae| host(&vae.encoder.head.mean_norm.running_mean.value());
    // The reference: burn's update (1 − m)·μ_0 + m·(batch mean of the raw posterior mean),
    // computed here from the starting weights on the whole batch.
    let m = start.encoder.head.mean_norm.momentum;
    let indices: Vec<usize> = (0..data.len()).collect();
    let x = data
        .batch(&indices, &mut rand::SeedableRng::seed_from_u64(0), &device)
        .unwrap();
    let (mean_raw, _) = start.encoder.head.raw(start.encoder.features(&x));
    let batch_mean = host(&mean_raw.mean_dim(0).reshape([4]));
    let expected: Vec<f64> = running_mean(&start)
        .iter()
        .zip(&batch_mean)
        .map(|(r0, b)| (1.0 - m) * r0 + m * b)
        .collect();
    // `valid().train()` copies the running state: a clone would share it.
    let copy = |vae: &BnVae| vae.valid().train();
    let one = running_mean(&one_sgd_step(copy(&start), &data, 64, vec![device.clone()]));
    let two = running_mean(&one_sgd_step(
        copy(&start),
        &data,
        32,
        vec![device.clone(), device.clone()],
    ));
    // The replicas share one running state, which averages their updates: with equal halves
    // that is the whole batch's update, up to f32 rounding of the means (1e-5 of values of
    // order 0.1). The encoder's μ before BN depends only on the weights and the batch, not on
    // the noise. Two updates applied one after the other would give about (2 − m)× the
    // first's change.
    for (name, got) in [("one device", &one), ("two replicas", &two)] {
        let diff = max_abs_diff(got, &expected);
        assert!(
            diff < 1e-5,
            "{name}: running mean {got:?}, expected {expected:?}"
        );
    }
}

#[test]
fn a_non_finite_loss_or_a_bad_config_is_an_error() {
    let device = common::device();
    let data = Arc::new(ImageData::new(
        common::mnist_train(64),
        Binarization::Dynamic,
    ));
    let config = GaussianVaeConfig::new(784, 4).with_hidden(vec![16]);
    let mut fit_config = FitConfig::new(1, 32);
    fit_config.progress = false;
    // A learning rate that overflows Adam's first steps into NaN weights.
    fit_config.learning_rate = 1e30;
    let result = fit_with_learner(
        config.init(&device).unwrap(),
        data.clone(),
        data.clone(),
        &fit_config,
        DeviceStrategy::Single(device.clone()),
    );
    match result {
        Err(Error::NonFiniteLoss { epoch, step, .. }) => assert_eq!((epoch, step > 0), (1, true)),
        other => panic!("expected NonFiniteLoss, got {:?}", other.map(|(_, h)| h)),
    }
    assert!(matches!(
        DeviceStrategy::from_devices(Vec::new()),
        Err(Error::InvalidConfig { .. })
    ));
    // burn 0.22.1 all-reduces only on CUDA; anywhere else DDP is a config error, not
    // burn's panic. (On a CUDA test device this part has nothing to check.)
    if !format!("{device:?}").contains("Cuda(") {
        let ddp = fit_with_learner(
            config.init(&device).unwrap(),
            data.clone(),
            data,
            &FitConfig::new(1, 32),
            DeviceStrategy::Ddp(vec![device.clone(), device.clone()]),
        );
        assert!(
            matches!(ddp, Err(Error::InvalidConfig { .. })),
            "{:?}",
            ddp.err()
        );
    }
}

/// Every kind of data the crate ships goes through the Learner: sentences (length-bucketed
/// batches of `TokenBatch`es) and labelled images (`LabeledBatch`es), each trained for two
/// epochs with a finite bound that falls (a model that learns nothing from 2 epochs at
/// rate 1e-2 on these tiny sets would not lower it).
#[test]
fn sentences_and_labelled_images_train_through_the_learner() {
    use elbo::data::{CharVocab, Images, LabeledImageData, SentenceData};
    use elbo::models::TextVaeConfig;
    use elbo::models::cvae::ConditionalVaeConfig;

    let device = common::device();
    let mut fit_config = FitConfig::new(2, 8);
    fit_config.progress = false;
    fit_config.learning_rate = 1e-2;

    let text: Vec<String> = (0..32)
        .map(|i| ["abc.", "abd!", "bca.", "cab?"][i % 4].to_string())
        .collect();
    let vocab = CharVocab::from_sentences(text.iter().map(String::as_str));
    let sentences = Arc::new(SentenceData::new(&text, &vocab));
    let config = TextVaeConfig::new(vocab.len())
        .with_latent_dim(3)
        .with_embedding(5)
        .with_encoder_hidden(6)
        .with_decoder_hidden(7)
        .with_max_chars(12);
    let (_, history) = fit_with_learner(
        config.gaussian(&device).unwrap(),
        sentences.clone(),
        sentences,
        &fit_config,
        DeviceStrategy::Single(device.clone()),
    )
    .unwrap();
    let (first, last) = (history.epochs[0].neg_bound, history.epochs[1].neg_bound);
    assert!(
        last.is_finite() && last < first,
        "sentences: −ELBO {first} → {last}"
    );

    let (count, mut labels, mut pixels) = (32, Vec::new(), Vec::new());
    for n in 0..count {
        labels.push((n % 2) as u8);
        pixels.extend((0..16).map(|p| if (p % 4 < 2) == (n % 2 == 0) { 255 } else { 0 }));
    }
    let images = Images {
        count,
        channels: 1,
        rows: 4,
        cols: 4,
        pixels,
    };
    let labelled = Arc::new(LabeledImageData::new(images, labels, 2).unwrap());
    let config = ConditionalVaeConfig::new(16, 2, 2).with_hidden(vec![16]);
    let (_, history) = fit_with_learner(
        config.init(&device).unwrap(),
        labelled.clone(),
        labelled,
        &fit_config,
        DeviceStrategy::Multi(vec![device.clone(), device.clone()]),
    )
    .unwrap();
    let (first, last) = (history.epochs[0].neg_bound, history.epochs[1].neg_bound);
    assert!(
        last.is_finite() && last < first,
        "labelled images: −ELBO {first} → {last}"
    );
}
