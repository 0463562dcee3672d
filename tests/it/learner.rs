//! Training through burn-train's `Learner` (feature `train`): on two replicas the summed
//! gradient of two half-batches is the gradient of the whole batch (from our loader and
//! from burn's own), and BatchNorm's running statistics come out as one device's; burn's
//! own loader over `ElboDataset` / `ElboBatcher` gives `fit`'s epochs with the steps
//! counted by the `Trainable`; a non-finite loss or an unreadable batch is an error. (That one device
//! gives `fit`'s numbers is in `tests/replay.rs`: it replays the device's random stream.)
//!
//! This machine has one CPU device per backend (burn's flex device has a single id, and
//! lavapipe is one Vulkan adapter), so "two devices" here are two replicas on one device:
//! burn's multi-device strategy runs one thread per entry of its device list whether or not
//! the entries are the same device, and combines their gradients the same way.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::module::Module;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::{ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor};
use burn::train::logger::InMemoryMetricLogger;
use burn::train::{ExecutionStrategy, Learner, MultiDeviceOptim, SupervisedTraining, TrainStep};
use elbo::data::{Binarization, ImageData, TrainData};
use elbo::learner::{
    DeviceStrategy, ElboBatch, ElboBatcher, ElboDataLoader, ElboDataset, FitSchedule,
    QuietRenderer, Trainable, fit_with_learner,
};
use elbo::models::{BnVae, BnVaeConfig, GaussianVae, GaussianVaeConfig};
use elbo::objective::Objective;
use elbo::train::{EpochRecord, FitConfig};
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

impl ModeVae {
    /// 784 → 16 → 4-dimensional latent, its weights drawn on `device`.
    fn new(device: &Device) -> Self {
        Self::with_hidden(16, device)
    }

    fn with_hidden(hidden: usize, device: &Device) -> Self {
        let config = GaussianVaeConfig::new(784, 4).with_hidden(vec![hidden]);
        Self {
            vae: config.init(device).unwrap(),
        }
    }
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

/// The first `n` MNIST training images, binarised once with `seed`: batches that carry no
/// randomness of their own.
fn fixed_mnist(n: usize, seed: u64) -> Arc<ImageData> {
    Arc::new(ImageData::new(
        common::mnist_train(n),
        Binarization::Fixed { seed },
    ))
}

/// Where the Learner's batches come from.
#[derive(Clone, Copy, Debug)]
enum Loader {
    /// `ElboDataLoader`: `fit`'s batches, each with its position.
    Elbo,
    /// burn's `DataLoaderBuilder` over `ElboDataset` + `ElboBatcher`, without shuffling:
    /// batches without a position.
    Burn,
}

type Batches<I> = Arc<dyn DataLoader<ElboBatch<I>>>;

/// A loader of `data` in batches of `batch` on `device`.
fn loader<T>(kind: Loader, data: &Arc<T>, batch: usize, device: &Device) -> Batches<T::Input>
where
    T: TrainData + Send + Sync + 'static,
    T::Input: Clone + std::fmt::Debug + Send + 'static,
{
    match kind {
        Loader::Elbo => Arc::new(ElboDataLoader::new(data.clone(), batch, 7, 0, device)),
        Loader::Burn => DataLoaderBuilder::new(ElboBatcher::new(data.clone(), 7))
            .batch_size(batch)
            .set_device(device.clone())
            .build(ElboDataset::new(data.clone())),
    }
}

/// Trains `trainable` for `epochs` through burn's `SupervisedTraining` on `train`, checking
/// the bound on `valid` after every epoch, with `optimizer` at the rates of `schedule`, on
/// `strategy` (burn's default, one device, if `None`); quietly, with the metrics kept in
/// memory and nothing written. Returns the trained `Trainable`, which must have met no
/// failure.
fn launch<M>(
    trainable: Trainable<M>,
    (train, valid): (Batches<M::Input>, Batches<M::Input>),
    epochs: usize,
    (optimizer, schedule): (ModuleOptimizer, impl Into<ModuleLrScheduler>),
    strategy: Option<ExecutionStrategy>,
) -> Trainable<M>
where
    M: Module + burn::module::ModuleDisplay + LatentVariableModel + 'static,
    M::Input: Send + 'static,
{
    let learner = Learner::new(trainable, optimizer, schedule);
    let dir = std::env::temp_dir().join(format!("elbo-test-learner-{}", std::process::id()));
    let mut training = SupervisedTraining::new(&dir, train, valid)
        .num_epochs(epochs)
        .with_metric_logger(InMemoryMetricLogger::new())
        .with_application_logger(None)
        .renderer(Box::new(QuietRenderer));
    if let Some(strategy) = strategy {
        training = training.with_training_strategy(strategy.into());
    }
    let trained = training.launch(learner).model;
    if let Some(error) = trained.take_failure() {
        panic!("{error}");
    }
    trained
}

/// One SGD step at rate 1 through burn's `SupervisedTraining` on `devices` (each entry a
/// replica), `batch` examples per replica; returns the trained module.
fn one_sgd_step<M>(
    model: M,
    data: &Arc<ImageData>,
    batch: usize,
    devices: Vec<Device>,
    kind: Loader,
) -> M
where
    M: Module + burn::module::ModuleDisplay + LatentVariableModel<Input = Tensor<2>> + 'static,
{
    let replicas = devices.len();
    let trainable = Trainable::new(model.fork(&devices[0]), Objective::default(), replicas);
    sgd_steps(trainable, data, batch, devices, kind).model
}

/// SGD at rate 1 for one epoch of `data` through burn's `SupervisedTraining` on `devices`,
/// `batch` examples per replica; returns the trained `Trainable`.
fn sgd_steps<M>(
    trainable: Trainable<M>,
    data: &Arc<ImageData>,
    batch: usize,
    devices: Vec<Device>,
    kind: Loader,
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
    let loaders = (
        loader(kind, data, batch, &main),
        loader(kind, data, data.len(), &main),
    );
    let sgd = (SgdConfig::new().init(), ConstantLr::new(1.0));
    launch(trainable, loaders, 1, sgd, Some(strategy))
}

/// The EMA is updated once per optimiser step, after it, on the main device: after one SGD
/// step (32 examples: one batch of 32 on one device, or 16 on each of two replicas) the
/// average with decay `d` is `d·θ_0 + (1−d)·θ_1`, θ_1 the weights after the step (1e-5
/// absolute, f32 blends of weights of order 1). An update per replica would give
/// `d²·θ_0 + (1−d²)·θ_1`; one before the step, `θ_0`.
#[test]
fn the_ema_follows_each_optimiser_step_once() {
    let device = common::device().autodiff();
    let data = fixed_mnist(32, 3);
    device.seed(13);
    let start = ModeVae::new(&device);
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
            Loader::Elbo,
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
    let data = fixed_mnist(64, 1);
    device.seed(11);
    let start = ModeVae::new(&device);
    let before = flatten(&start);
    // Both loaders: ours (fit's shuffled batches; burn slices the epoch's batch order) and
    // burn's own over ElboDataset (burn slices the dataset: examples 0..32 and 32..64).
    for kind in [Loader::Elbo, Loader::Burn] {
        let whole = flatten(&one_sgd_step(
            start.clone(),
            &data,
            64,
            vec![device.clone()],
            kind,
        ));
        let halves = flatten(&one_sgd_step(
            start.clone(),
            &data,
            32,
            vec![device.clone(), device.clone()],
            kind,
        ));
        // θ − ∇ (rate 1): the step itself is of order 0.1–10 per weight; the two paths add
        // the same per-example gradients in a different order, so they agree to float
        // rounding (1e-4 allows for sums of 64 terms of this size in f32). Without the
        // 1/replicas factor the replicas' sum would be twice the mean's gradient and
        // differ by the whole step.
        let step = max_abs_diff(&before, &whole);
        assert!(
            step > 1e-2,
            "{kind:?}: the step moved the weights by {step}"
        );
        let diff = max_abs_diff(&whole, &halves);
        assert!(
            diff < 1e-4 * step.max(1.0),
            "{kind:?}: one device and two replicas differ by {diff} (step {step})"
        );
    }
}

#[test]
fn batch_norm_statistics_of_two_replicas_are_one_devices() {
    let device = common::device().autodiff();
    let data = fixed_mnist(64, 2);
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
    let one = running_mean(&one_sgd_step(
        copy(&start),
        &data,
        64,
        vec![device.clone()],
        Loader::Elbo,
    ));
    let two = running_mean(&one_sgd_step(
        copy(&start),
        &data,
        32,
        vec![device.clone(), device.clone()],
        Loader::Elbo,
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

/// `config.epochs` epochs of `model` through burn's own loader (shuffled) over
/// `ElboDataset` + `ElboBatcher`, validating on the training data; the epochs' records.
fn burn_loader_fit<M, T>(
    model: M,
    data: Arc<T>,
    config: &FitConfig,
    device: &Device,
) -> Vec<EpochRecord>
where
    M: Module + burn::module::ModuleDisplay + LatentVariableModel<Input = T::Input> + 'static,
    T: TrainData + Send + Sync + 'static,
    T::Input: Clone + std::fmt::Debug + Send + 'static,
{
    let main = device.clone().autodiff();
    let trainable = Trainable::new(model.fork(&main).train(), config.objective.clone(), 1);
    let steps = data.len().div_ceil(config.batch_size);
    let schedule = FitSchedule::new(
        config.lr_schedule.clone(),
        config.learning_rate,
        steps,
        config.epochs,
    );
    let shuffled = || {
        DataLoaderBuilder::new(ElboBatcher::new(data.clone(), 3))
            .batch_size(config.batch_size)
            .shuffle(3)
            .set_device(main.clone())
            .build(ElboDataset::new(data.clone()))
    };
    let adam = (config.build_optimizer().unwrap(), schedule);
    launch(
        trainable,
        (shuffled(), shuffled()),
        config.epochs,
        adam,
        None,
    )
    .epoch_records()
}

/// Every kind of data the crate ships goes through the Learner, from our loader and from
/// burn's own: sentences (`TokenBatch`es; length-bucketed batches from ours) and labelled
/// images (`LabeledBatch`es), each trained for two epochs with a finite bound that falls
/// (a model that learns nothing from 2 epochs at rate 1e-2 on these tiny sets would not
/// lower it).
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
    learns_through_both_loaders(
        "sentences",
        || config.gaussian(&device).unwrap(),
        sentences,
        &fit_config,
        DeviceStrategy::Single(device.clone()),
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
    learns_through_both_loaders(
        "labelled images",
        || config.init(&device).unwrap(),
        labelled,
        &fit_config,
        DeviceStrategy::Multi(vec![device.clone(), device.clone()]),
    );
}

/// Trains a model from `init` for the config's two epochs through `fit_with_learner` (our
/// loader, on `strategy`) and through burn's own loader (on the strategy's first device),
/// and checks that the bound falls in both.
fn learns_through_both_loaders<M, T>(
    what: &str,
    init: impl Fn() -> M,
    data: Arc<T>,
    config: &FitConfig,
    strategy: DeviceStrategy,
) where
    M: Module + burn::module::ModuleDisplay + LatentVariableModel<Input = T::Input> + 'static,
    T: TrainData + Send + Sync + 'static,
    T::Input: Clone + std::fmt::Debug + Send + 'static,
{
    let device = match &strategy {
        DeviceStrategy::Single(device) => device.clone(),
        DeviceStrategy::Multi(devices) | DeviceStrategy::Ddp(devices) => devices[0].clone(),
    };
    let (_, history) =
        fit_with_learner(init(), data.clone(), data.clone(), config, strategy).unwrap();
    let burn = burn_loader_fit(init(), data, config, &device);
    for (loader, epochs) in [("ours", &history.epochs), ("burn's", &burn)] {
        let (first, last) = (epochs[0].neg_bound, epochs[1].neg_bound);
        assert!(
            last.is_finite() && last < first,
            "{what}, {loader} loader: −ELBO {first} → {last}"
        );
    }
}

/// `data` with every epoch's batches in index order: `fit` then draws what burn's
/// unshuffled loader draws.
struct InOrder(ImageData);

impl TrainData for InOrder {
    type Input = Tensor<2>;

    fn len(&self) -> usize {
        self.0.len()
    }

    fn batch(
        &self,
        indices: &[usize],
        rng: &mut rand::rngs::StdRng,
        device: &Device,
    ) -> elbo::Result<Tensor<2>> {
        self.0.batch(indices, rng, device)
    }

    fn epoch_batches(&self, batch_size: usize, _rng: &mut rand::rngs::StdRng) -> Vec<Vec<usize>> {
        let all: Vec<usize> = (0..self.len()).collect();
        all.chunks(batch_size).map(<[usize]>::to_vec).collect()
    }
}

/// burn's own `DataLoaderBuilder` over `ElboDataset` + `ElboBatcher` gives `fit`'s epochs:
/// its batches carry no position, so the `Trainable` counts the optimiser steps (for the
/// KL warm-up) and the epochs (a validation pass closes one) itself. The model is
/// deterministic (`ModeVae`) and the binarisation fixed, so the two runs take the same
/// steps on the same batches in the same order with the same rates and warm-up weights:
/// only float non-associativity may differ, far below the 1e-5 (relative) allowed. The
/// warm-up runs over 6 of the 12 steps, across the first epoch's end: a global step off by
/// one (tried) moves the first epoch's mean loss by 0.14 nats, 2.6e-4 of it; no epoch
/// boundary (tried) leaves one record of 12 steps.
#[test]
fn burns_own_loader_gives_fits_epochs_with_the_steps_counted() {
    use elbo::objective::ElboObjective;
    use elbo::train::fit;

    let device = common::device();
    let data = InOrder(ImageData::new(
        common::mnist_train(96),
        Binarization::Fixed { seed: 4 },
    ));
    let config = GaussianVaeConfig::new(784, 4).with_hidden(vec![16]);
    let mut fit_config = FitConfig::new(3, 24);
    fit_config.progress = false;
    fit_config.learning_rate = 1e-2;
    fit_config.objective = Objective::Elbo(ElboObjective {
        warmup_steps: 6,
        ..ElboObjective::default()
    });
    // One draw of the starting weights, cloned: the device's stream is shared with the tests
    // running beside this one, so seeding it twice need not give the same weights twice.
    let start = ModeVae {
        vae: config.init(&device).unwrap(),
    };
    let (fitted, fit_history) = fit(start.clone(), &config, &data, &fit_config, &device).unwrap();

    let main = device.clone().autodiff();
    let data = Arc::new(data);
    let trainable = Trainable::new(start.fork(&main).train(), fit_config.objective.clone(), 1);
    let schedule = FitSchedule::new(
        fit_config.lr_schedule.clone(),
        fit_config.learning_rate,
        4,
        3,
    );
    let loaders = (
        loader(Loader::Burn, &data, 24, &main),
        loader(Loader::Burn, &data, 48, &main),
    );
    let adam = (fit_config.build_optimizer().unwrap(), schedule);
    let trained = launch(trainable, loaders, 3, adam, None);

    assert_same_epochs(&fit_history.epochs, &trained.epoch_records());
    let diff = max_abs_diff(&flatten(&fitted), &flatten(&trained.model));
    assert!(diff < 1e-5, "weights differ by {diff}");
}

/// Checks that two runs that took the same steps in the same order have the same epochs
/// with the same loss, −ELBO, KL and rate, to 1e-5 relative (float rounding; one step
/// out of place moves an epoch's mean by far more, as each test says).
fn assert_same_epochs(expected: &[EpochRecord], got: &[EpochRecord]) {
    let numbers = |epochs: &[EpochRecord]| epochs.iter().map(|e| e.epoch).collect::<Vec<_>>();
    assert_eq!(numbers(expected), numbers(got), "{got:?}");
    for (e, g) in expected.iter().zip(got) {
        for (name, a, b) in [
            ("loss", e.loss, g.loss),
            ("-ELBO", e.neg_bound, g.neg_bound),
            ("KL", e.kl, g.kl),
            ("rate", e.learning_rate, g.learning_rate),
        ] {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "epoch {}: {name} {a} expected, {b} got",
                e.epoch
            );
        }
    }
}

/// An index the data does not have is an error at every stage, never a panic: burn's
/// dataset (`get`), our batcher (the error travels in the batch), and a training step
/// given that batch, which stops training with the same error; `fit_with_learner` over
/// data whose last example cannot be read returns that error. A model whose weights are
/// not tracked (built on a plain device) is an error too, where burn's backward panics.
#[test]
fn an_unreadable_batch_stops_training_with_its_error() {
    use burn::data::dataset::Dataset;

    let device = common::device();
    let data = fixed_mnist(8, 5);
    assert!(ElboDataset::new(data.clone()).get(8).is_err());
    let batch = ElboBatcher::new(data.clone(), 0).batch(vec![3, 8], &device.clone().autodiff());
    assert!(
        matches!(batch.x, Err(Error::InvalidConfig { field: "index", .. })),
        "{:?}",
        batch.x.err()
    );
    let model = GaussianVaeConfig::new(784, 4)
        .with_hidden(vec![16])
        .init(&device.clone().autodiff())
        .unwrap();
    let trainable = Trainable::new(model, Objective::default(), 1);
    let _ = TrainStep::step(&trainable, batch);
    assert!(matches!(
        trainable.take_failure(),
        Some(Error::InvalidConfig { field: "index", .. })
    ));
    let untracked = GaussianVaeConfig::new(784, 4)
        .with_hidden(vec![16])
        .init(&device.clone().without_autodiff())
        .unwrap();
    let trainable = Trainable::new(untracked, Objective::default(), 1);
    let batch = ElboBatcher::new(data.clone(), 0).batch(vec![0, 1], &device);
    let _ = TrainStep::step(&trainable, batch);
    let failure = trainable.take_failure();
    assert!(
        matches!(
            failure,
            Some(Error::InvalidConfig {
                field: "Trainable's model",
                ..
            })
        ),
        "{failure:?}"
    );

    /// Data that claims one example more than it has.
    struct OneTooMany(ImageData);
    impl TrainData for OneTooMany {
        type Input = Tensor<2>;
        fn len(&self) -> usize {
            self.0.len() + 1
        }
        fn batch(
            &self,
            indices: &[usize],
            rng: &mut rand::rngs::StdRng,
            device: &Device,
        ) -> elbo::Result<Tensor<2>> {
            self.0.batch(indices, rng, device)
        }
    }
    let bad = Arc::new(OneTooMany(ImageData::new(
        common::mnist_train(8),
        Binarization::Dynamic,
    )));
    let mut fit_config = FitConfig::new(1, 3);
    fit_config.progress = false;
    let result = fit_with_learner(
        GaussianVaeConfig::new(784, 4)
            .with_hidden(vec![16])
            .init(&device)
            .unwrap(),
        bad.clone(),
        bad,
        &fit_config,
        DeviceStrategy::Single(device.clone()),
    );
    assert!(
        matches!(result, Err(Error::InvalidConfig { field: "index", .. })),
        "{:?}",
        result.map(|(_, h)| h)
    );
}

/// The batcher's host randomness (`Binarization::Dynamic`: each batch's generator seeded
/// from the batcher's stream) repeats from its seed and goes on from batch to batch
/// (`common::assert_batcher_repeats_from_its_seed`). The device's side, which needs the
/// process's one device stream to itself, is in `tests/replay.rs`.
#[test]
fn the_batcher_repeats_from_its_seed() {
    common::assert_batcher_repeats_from_its_seed(Binarization::Dynamic);
}

/// A run continued with `Trainable::resumed_at` goes on as the uninterrupted run: 3 epochs
/// of SGD through burn's unshuffled loader give the same last two epochs (loss, −ELBO, KL)
/// and weights as 1 epoch, then 2 more from its weights with the `Trainable` resumed at
/// epoch 1 after 4 steps. SGD at a constant rate keeps no state, so the weights are all
/// the second run needs, and the model is deterministic (`ModeVae`, fixed binarisation):
/// only float rounding may differ (1e-5 relative). The KL warm-up over 6 steps spans the
/// break, so a count restarted at 0 weighs the second epoch's KL by β(0..3) instead of
/// β(4..7) (tried: epoch 2's loss moves by 0.27 nats, 5e-4 of it).
#[test]
fn a_resumed_trainable_goes_on_counting() {
    use elbo::objective::ElboObjective;

    let device = common::device().autodiff();
    let data = fixed_mnist(96, 6);
    let start = ModeVae::new(&device);
    let objective = Objective::Elbo(ElboObjective {
        warmup_steps: 6,
        ..ElboObjective::default()
    });
    let run = |trainable: Trainable<ModeVae>, epochs: usize| {
        let loaders = (
            loader(Loader::Burn, &data, 24, &device),
            loader(Loader::Burn, &data, 48, &device),
        );
        let sgd = (SgdConfig::new().init(), ConstantLr::new(1e-2));
        launch(trainable, loaders, epochs, sgd, None)
    };
    let whole = run(Trainable::new(start.clone(), objective.clone(), 1), 3);
    let first = run(Trainable::new(start, objective.clone(), 1), 1);
    let rest = run(
        Trainable::new(first.model.clone().train(), objective, 1).resumed_at(1, 4),
        2,
    );

    let whole_records = whole.epoch_records();
    assert_eq!(whole_records.len(), 3, "{whole_records:?}");
    assert_same_epochs(&whole_records[1..], &rest.epoch_records());
    let diff = max_abs_diff(&flatten(&whole.model), &flatten(&rest.model));
    assert!(diff < 1e-5, "weights differ by {diff}");
}

/// `fit_with_learner` with `resume` continues from burn's latest checkpoint as the
/// uninterrupted run would: 1 epoch, then a resumed run to 3, gives the uninterrupted 3
/// epochs' last two (loss, −ELBO, KL, rate) and weights. What must come back for that: the
/// weights, Adam's moments, the schedule's step (the rate, halved each epoch), the loader's epoch (the shuffles) and the KL warm-up's step
/// count (6 steps, across the break). The model is deterministic (`ModeVae`, fixed
/// binarisation), so only float rounding may differ (1e-5 relative). A damaged latest
/// checkpoint (as a run stopped while burn wrote it leaves one) is passed over for the one
/// before, and the run redoes the epoch with the same figures; a checkpoint of another
/// model is an `Error::Checkpoint`, where burn's own loading panics; `resume` with an
/// EMA, which burn's checkpoints do not hold, is refused.
#[test]
fn the_learner_resumes_from_burns_checkpoint() {
    use elbo::objective::ElboObjective;
    use elbo::train::LrSchedule;

    let device = common::device();
    let data = fixed_mnist(64, 8);
    let start = ModeVae::new(&device);
    let base = std::env::temp_dir().join(format!("elbo-test-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let mut fit_config = FitConfig::new(3, 16);
    fit_config.progress = false;
    fit_config.learning_rate = 3e-3;
    // Halved each epoch: a rate that depends on the step count, not on the run's length.
    fit_config.lr_schedule = LrSchedule::Exponential { gamma: 0.5 };
    fit_config.objective = Objective::Elbo(ElboObjective {
        warmup_steps: 6,
        ..ElboObjective::default()
    });
    let run = |epochs: usize, resume: bool, folder: &str, ema: Option<f64>| {
        let mut config = fit_config.clone();
        config.epochs = epochs;
        config.resume = resume;
        config.ema_decay = ema;
        config.checkpoint_dir = Some(base.join(folder));
        fit_with_learner(
            start.clone(),
            data.clone(),
            data.clone(),
            &config,
            DeviceStrategy::Single(device.clone()),
        )
    };
    let (whole, whole_history) = run(3, false, "whole", None).unwrap();
    run(1, false, "split", None).unwrap();
    let (resumed, resumed_history) = run(3, true, "split", None).unwrap();

    assert_same_epochs(&whole_history.epochs[1..], &resumed_history.epochs);
    let diff = max_abs_diff(&flatten(&whole), &flatten(&resumed));
    assert!(diff < 1e-5, "weights differ by {diff}");

    let refused = run(4, true, "split", Some(0.9));
    assert!(
        matches!(
            refused,
            Err(Error::InvalidConfig {
                field: "resume",
                ..
            })
        ),
        "{:?}",
        refused.map(|(_, h)| h)
    );

    // Checkpoint 3 cut short: the run resumes from 2 and redoes epoch 3.
    let model_file = base.join("split/checkpoint/model-3.bpk");
    let bytes = std::fs::read(&model_file).unwrap();
    std::fs::write(&model_file, &bytes[..bytes.len() / 2]).unwrap();
    let (redone, redone_history) = run(3, true, "split", None).unwrap();
    let (w, r) = (&whole_history.epochs[2], &redone_history.epochs[0]);
    assert_eq!((redone_history.epochs.len(), r.epoch), (1, 3));
    assert!(
        (w.loss - r.loss).abs() <= 1e-5 * w.loss.abs(),
        "{w:?} {r:?}"
    );
    let diff = max_abs_diff(&flatten(&whole), &flatten(&redone));
    assert!(diff < 1e-5, "weights differ by {diff}");

    // The checkpoints of another model (a wider hidden layer) cannot be loaded.
    let mut config = fit_config.clone();
    config.resume = true;
    config.checkpoint_dir = Some(base.join("whole"));
    let other = ModeVae::with_hidden(32, &device);
    let mismatched = fit_with_learner(
        other,
        data.clone(),
        data.clone(),
        &config,
        DeviceStrategy::Single(device.clone()),
    );
    assert!(
        matches!(mismatched, Err(Error::Checkpoint { .. })),
        "{:?}",
        mismatched.map(|(_, h)| h)
    );
    let _ = std::fs::remove_dir_all(&base);
}
