//! What users wait for with the NVAE `mnist_small` preset on 28×28 binarised MNIST: a
//! training step at batch 64 (forward, backward with the spectral and batch-norm
//! penalties, Adam step), and drawing 64 samples from the prior.
//!
//! ```text
//! cargo bench --bench nvae                                  # flex (CPU)
//! ELBO_BENCH_DEVICE=wgpu cargo bench --features wgpu --bench nvae
//! ```
//! Reads the repository's `data/mnist-10k` (or `$ELBO_MNIST_DIR`). Every timed closure ends on a
//! device sync (`into_scalar`).

mod common;

use burn::module::Module;
use common::{bench_train_step, device, mnist_train_batches};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use elbo::models::nvae::NvaeConfig;

fn train_step(c: &mut Criterion) {
    let train = device().autodiff();
    let batches = mnist_train_batches(&train, 64);
    let model = NvaeConfig::mnist_small().init(&train).unwrap().train();
    bench_train_step(c, "nvae_small/train_step_batch64", model, &batches);
}

fn sampling(c: &mut Criterion) {
    let device = device();
    let model = NvaeConfig::mnist_small().init(&device).unwrap().valid();
    let mut group = c.benchmark_group("nvae_small");
    group.throughput(Throughput::Elements(64));
    group.bench_function("sample_64_t0.7", |b| {
        b.iter(|| {
            let images = model.sample(64, 0.7, &device).unwrap();
            let _: f32 = images.sum().into_scalar();
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = train_step, sampling
}
criterion_main!(benches);
