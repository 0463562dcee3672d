//! What users wait for with DDPM on 28×28 MNIST: a training step (`L_simple`, forward,
//! backward, Adam) of the reference U-Net at base width 32 (about 0.4 M parameters) at
//! batch 64, and one ancestral reverse step at batch 16 — the two rows of the issue's
//! PyTorch comparison (`../shared/reference-pytorch/ddpm.py --ch 32 --bench`).
//!
//! ```text
//! cargo bench --bench ddpm                                  # flex (CPU)
//! ELBO_BENCH_DEVICE=wgpu cargo bench --features wgpu --bench ddpm
//! ```
//! Reads `../shared/data/mnist-10k` (or `$ELBO_MNIST_DIR`). Every timed closure ends on a
//! device sync (`into_scalar`).

mod common;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Distribution as TensorDistribution, Tensor};
use common::{device, mnist_dir};
use criterion::{Criterion, criterion_group, criterion_main};
use elbo::data::Images;
use elbo::models::ddpm::DdpmConfig;

fn train_step(c: &mut Criterion) {
    let train = device().autodiff();
    let images = Images::load(mnist_dir().join("train-images-idx3-ubyte.gz")).expect("MNIST data");
    let batches: Vec<Tensor<2>> = (0..8)
        .map(|i| {
            let slice = images.slice(i * 64, 64).unwrap();
            slice.to_tensor(slice.unit(), &train).unwrap()
        })
        .collect();
    let mut model = Some(DdpmConfig::mnist_small().init(&train).unwrap().train());
    let mut optimizer = AdamConfig::new().init();
    let mut i = 0;
    c.bench_function("ddpm_unet32/train_step_batch64", |b| {
        b.iter(|| {
            let m = model.take().unwrap();
            let loss = m.loss(&batches[i % batches.len()]).unwrap();
            i += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            let m = optimizer.step(2e-4, m, grads);
            let _: f32 = loss.into_scalar();
            model = Some(m);
        })
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
