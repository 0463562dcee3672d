//! What the benches share: the device, the MNIST batches and the timed training step.

// Each bench uses its own subset.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use criterion::Criterion;
use elbo::LatentVariableModel;
use elbo::data::{
    Binarization, CharVocab, ImageData, Images, SentenceData, TokenBatch, TrainData, read_sentences,
};
use elbo::objective::Objective;
use rand::SeedableRng;

/// The device named by `$ELBO_BENCH_DEVICE`: `flex` (the default) or `wgpu` (with the
/// `wgpu` feature).
pub fn device() -> Device {
    match std::env::var("ELBO_BENCH_DEVICE").as_deref() {
        #[cfg(feature = "wgpu")]
        Ok("wgpu") => Device::wgpu(Default::default()),
        Ok("flex") | Err(_) => Device::flex(),
        Ok(other) => panic!("ELBO_BENCH_DEVICE={other}: use flex or wgpu (with --features wgpu)"),
    }
}

/// `../shared/data/mnist-10k`, or `$ELBO_MNIST_DIR`.
pub fn mnist_dir() -> PathBuf {
    std::env::var_os("ELBO_MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist-10k")
        })
}

/// `../shared/data/fortune-sentences`, or `$ELBO_TEXT_DIR`.
pub fn text_dir() -> PathBuf {
    std::env::var_os("ELBO_TEXT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/fortune-sentences")
        })
}

/// 16 batches of `batch_size` training sentences (a fixed spread over the file, so batch
/// lengths vary as in training), with the vocabulary built from the training file.
pub fn sentence_batches(device: &Device, batch_size: usize) -> (CharVocab, Vec<TokenBatch>) {
    let text = read_sentences(text_dir().join("train.txt"), 64).expect("sentence data");
    let vocab = CharVocab::from_sentences(&text);
    let data = SentenceData::new(&text, &vocab);
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let batches = (0..16)
        .map(|i| {
            let idx: Vec<usize> = (0..batch_size)
                .map(|j| (i * 541 + j * 97) % data.len())
                .collect();
            data.batch(&idx, &mut rng, device).unwrap()
        })
        .collect();
    (vocab, batches)
}

/// 16 dynamically binarised MNIST training batches of `batch_size` flat images.
pub fn mnist_train_batches(device: &Device, batch_size: usize) -> Vec<Tensor<2>> {
    let images = Images::load(mnist_dir().join("train-images-idx3-ubyte.gz")).expect("MNIST data");
    let data = ImageData::new(images, Binarization::Dynamic);
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

/// Benches `name`: forward (the ELBO loss plus the model's penalty, if any), backward and an
/// Adam step of `model` (on an autodiff device) on rotating `batches`, ending on a device
/// sync (the loss of the step just taken).
pub fn bench_train_step<M>(c: &mut Criterion, name: &str, model: M, batches: &[M::Input])
where
    M: Module + LatentVariableModel,
{
    let mut model = Some(model);
    let mut optimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let objective = Objective::default();
    let mut i = 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            let m = model.take().unwrap();
            let x = &batches[i % batches.len()];
            i += 1;
            let loss = objective.step_loss(&m, x, 0).unwrap().loss;
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            let m = optimizer.step(1e-3, m, grads);
            let _: f32 = loss.into_scalar();
            model = Some(m);
        })
    });
}
