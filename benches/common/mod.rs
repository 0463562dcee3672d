//! What the benches share: the device, the MNIST batches and the timed training step.

// Each bench uses its own subset.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use criterion::Criterion;
use elbo::LatentVariableModel;
use elbo::data::{
    Binarization, CharVocab, ImageData, Mnist, SentenceCorpus, SentenceData, TokenBatch, TrainData,
};
use elbo::models::ddpm::{Ddpm, DdpmConfig};
use elbo::nn::UNet;
use elbo::objective::Objective;
use elbo::optim::FusedAdamConfig;
use rand::SeedableRng;

/// The device named by `$ELBO_BENCH_DEVICE` (`flex`, `wgpu`, `cuda`, as
/// [`elbo::device::from_name`] reads it; a backend needs its cargo feature), else the
/// build's default ([`elbo::device::DEFAULT_NAME`]). Also keeps freed memory in the
/// process ([`elbo::retain_freed_memory`]), as the examples and any training program
/// should, so the figures are what a training run sees.
pub fn device() -> Device {
    elbo::retain_freed_memory();
    let name =
        std::env::var("ELBO_BENCH_DEVICE").unwrap_or_else(|_| elbo::device::DEFAULT_NAME.into());
    elbo::device::from_name(&name).unwrap_or_else(|e| panic!("ELBO_BENCH_DEVICE: {e}"))
}

/// The repository's `data/mnist-10k` (found from `CARGO_MANIFEST_DIR`), or
/// `$ELBO_MNIST_DIR`.
pub fn mnist_dir() -> PathBuf {
    std::env::var_os("ELBO_MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist-10k"))
}

/// The MNIST folder of [`mnist_dir`]; a missing or wrong folder stops the bench with the
/// loader's message.
pub fn mnist() -> Mnist {
    Mnist::load(mnist_dir())
        .map_err(|e| e.set_by("$ELBO_MNIST_DIR"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The repository's `data/fortune-sentences` (found from `CARGO_MANIFEST_DIR`), or
/// `$ELBO_TEXT_DIR`.
pub fn text_dir() -> PathBuf {
    std::env::var_os("ELBO_TEXT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/fortune-sentences"))
}

/// The first 16 batches of `batch_size` training sentences that the fit loop would draw
/// in an epoch (length-bucketed, see `TrainData::epoch_batches`), with the vocabulary
/// built from the training file.
pub fn sentence_batches(device: &Device, batch_size: usize) -> (CharVocab, Vec<TokenBatch>) {
    let text = SentenceCorpus::load(text_dir(), 64)
        .map_err(|e| e.set_by("$ELBO_TEXT_DIR"))
        .unwrap_or_else(|e| panic!("{e}"))
        .train;
    let vocab = CharVocab::from_sentences(&text);
    let data = SentenceData::new(&text, &vocab);
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let batches = data
        .epoch_batches(batch_size, &mut rng)
        .iter()
        .take(16)
        .map(|idx| data.batch(idx, &mut rng, device).unwrap())
        .collect();
    (vocab, batches)
}

/// The DDPM training step of the reference U-Net (`DdpmConfig::mnist_small()`, base width
/// 32) on `device` (autodiff), with 8 batches of 64 training images in grey levels (the
/// model scales them to [−1, 1]).
pub fn ddpm_train_step(device: &Device) -> (TrainStep<Ddpm<UNet>>, Vec<Tensor<2>>) {
    let images = mnist().train;
    let batches = (0..8)
        .map(|i| {
            let slice = images.slice(i * 64, 64).unwrap();
            slice.to_tensor(slice.unit(), device).unwrap()
        })
        .collect();
    let model = DdpmConfig::mnist_small().init(device).unwrap().train();
    (
        TrainStep::with_objective(model, Objective::ModelLoss),
        batches,
    )
}

/// The first `n` images of the fixed binarisation of the MNIST test set, flat.
pub fn mnist_binary_test(device: &Device, n: usize) -> Tensor<2> {
    let x = mnist().binarized_test().slice(0, n).unwrap();
    x.to_tensor(x.binary().unwrap(), device).unwrap()
}

/// 16 dynamically binarised MNIST training batches of `batch_size` flat images.
pub fn mnist_train_batches(device: &Device, batch_size: usize) -> Vec<Tensor<2>> {
    let data = ImageData::new(mnist().train, Binarization::Dynamic);
    let mut rng = rand::rngs::StdRng::seed_from_u64(123);
    (0..16)
        .map(|i| {
            let idx: Vec<usize> = (0..batch_size)
                .map(|j| (i * 997 + j * 31) % data.len())
                .collect();
            data.batch(&idx, &mut rng, device).unwrap()
        })
        .collect()
}

/// A model being trained by the benches' step: forward (the ELBO loss plus the model's
/// penalty, if any), backward and an Adam step, on rotating batches.
pub struct TrainStep<M> {
    model: Option<M>,
    optimizer: ModuleOptimizer,
    objective: Objective,
    step: usize,
}

impl<M: Module + LatentVariableModel> TrainStep<M> {
    /// Starts from `model` (on an autodiff device) with a fresh Adam (the fit loop's
    /// [`FusedAdamConfig`] defaults), minimising the ELBO.
    pub fn new(model: M) -> Self {
        Self::with_objective(model, Objective::default())
    }

    /// As [`new`](Self::new), minimising `objective` (`Objective::ModelLoss` for DDPM's
    /// `L_simple`).
    pub fn with_objective(model: M, objective: Objective) -> Self {
        Self {
            model: Some(model),
            optimizer: FusedAdamConfig::new().init().unwrap(),
            objective,
            step: 0,
        }
    }

    /// One step on the next of `batches`, ending on a device sync (the step's loss).
    pub fn run(&mut self, batches: &[M::Input]) {
        let m = self
            .model
            .take()
            .expect("the model is put back after every step");
        let x = &batches[self.step % batches.len()];
        self.step += 1;
        let loss = self.objective.step_loss(&m, x, 0).unwrap().loss;
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let m = self.optimizer.step(1e-3, m, grads);
        let _: f32 = loss.into_scalar();
        self.model = Some(m);
    }
}

/// Benches `name`: one [`TrainStep`] of `model` (on an autodiff device) per iteration.
pub fn bench_train_step<M>(c: &mut Criterion, name: &str, model: M, batches: &[M::Input])
where
    M: Module + LatentVariableModel,
{
    let mut step = TrainStep::new(model);
    c.bench_function(name, |b| b.iter(|| step.run(batches)));
}

/// The median wall time of `f` in seconds over `runs` calls, after `warmup` untimed calls.
/// `f` must end on a device sync.
pub fn median_seconds(warmup: usize, runs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let started = std::time::Instant::now();
            f();
            started.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
