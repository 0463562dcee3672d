//! What users wait for with DDPM on 28×28 MNIST: a training step (`L_simple` through
//! `Objective::ModelLoss`, forward, backward, Adam) of the reference U-Net at base width 32 (about 0.4 M parameters) at
//! batch 64, and one ancestral reverse step at batch 16 — the two rows of the issue's
//! PyTorch comparison (`reference/pytorch/ddpm.py --ch 32 --bench`).
//!
//! ```text
//! cargo bench --bench ddpm                                  # flex (CPU)
//! ELBO_BENCH_DEVICE=wgpu cargo bench --features wgpu --bench ddpm
//! ```
//! Reads the repository's `data/mnist-10k` (or `$ELBO_MNIST_DIR`). Every timed closure ends on a
//! device sync (`into_scalar`).

mod common;

use burn::module::Module;
use burn::tensor::{Distribution as TensorDistribution, Tensor};
use common::{ddpm_train_step, device};
use criterion::{Criterion, criterion_group, criterion_main};
use elbo::models::ddpm::DdpmConfig;

fn train_step(c: &mut Criterion) {
    let train = device().autodiff();
    let (mut step, batches) = ddpm_train_step(&train);
    c.bench_function("ddpm_unet32/train_step_batch64", |b| {
        b.iter(|| step.run(&batches))
    });
}

fn reverse_step(c: &mut Criterion) {
    let device = device();
    let model = DdpmConfig::mnist_small().init(&device).unwrap().valid();
    let x = Tensor::<2>::random([16, 784], TensorDistribution::Normal(0.0, 1.0), &device);
    let mut t = 1000;
    c.bench_function("ddpm_unet32/reverse_step_batch16", |b| {
        b.iter(|| {
            let next = model.reverse_step(x.clone(), t).unwrap();
            t = if t > 2 { t - 1 } else { 1000 };
            let _: f32 = next.sum().into_scalar();
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = train_step, reverse_step
}
criterion_main!(benches);
