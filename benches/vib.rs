//! What users wait for with the variational information bottleneck on MNIST: a training
//! step of Alemi et al.'s 784-1024-1024-256 model at batch 100 (the VIB loss with β = 1e-3,
//! backward, Adam), and prediction averaged over 12 posterior draws for 100 images.
//!
//! ```text
//! cargo bench --bench vib                                   # flex (CPU)
//! ELBO_BENCH_DEVICE=wgpu cargo bench --features wgpu --bench vib
//! ```
//! Reads the repository's `data/mnist-10k` (or `$ELBO_MNIST_DIR`). Every timed closure ends on a
//! device sync (`into_scalar`).

mod common;

use burn::module::Module;
use common::{bench_train_step, device, mnist};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use elbo::data::{LabeledBatch, LabeledImageData};
use elbo::models::VibConfig;

fn data() -> LabeledImageData {
    let mnist = mnist();
    LabeledImageData::new(mnist.train, mnist.train_labels, 10).expect("MNIST labels in 0..10")
}

fn train_step(c: &mut Criterion) {
    let train = device().autodiff();
    let data = data();
    let batches: Vec<LabeledBatch> = (0..8)
        .map(|i| data.range(i * 100, 100, &train).unwrap())
        .collect();
    let model = VibConfig::mnist().init(&train).unwrap().train();
    // The shared step minimises the plain ELBO (β = 1); the β-weighted VIB loss costs the
    // same (one scalar multiply).
    bench_train_step(c, "vib_mnist/train_step_batch100", model, &batches);
}

fn predict(c: &mut Criterion) {
    let device = device();
    let batch = data().range(0, 100, &device).unwrap();
    let model = VibConfig::mnist().init(&device).unwrap().valid();
    let mut group = c.benchmark_group("vib_mnist");
    group.throughput(Throughput::Elements(100));
    group.bench_function("predict_100_images_12_draws", |b| {
        b.iter(|| {
            let p = model.predict_proba(&batch.x, 12).unwrap();
            let _: f32 = p.sum().into_scalar();
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = train_step, predict
}
criterion_main!(benches);
