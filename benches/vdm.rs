//! What users wait for with a Variational Diffusion Model on 28×28 MNIST: a training step
//! on the VDM's own bound (continuous time, fixed schedule; forward, backward, Adam) with
//! the reference U-Net at base width 32, batch 64, and one ancestral step at batch 16 —
//! the same network and sizes as `cargo bench --bench ddpm`, so the rows compare.
//!
//! ```text
//! cargo bench --bench vdm                                  # flex (CPU)
//! ELBO_BENCH_DEVICE=wgpu cargo bench --features wgpu --bench vdm
//! ```
//! Reads the repository's `data/mnist-10k` (or `$ELBO_MNIST_DIR`). Every timed closure ends
//! on a device sync (`into_scalar`).

mod common;

use burn::module::Module;
use burn::tensor::{Distribution as TensorDistribution, Tensor};
use common::{bench_train_step, device, mnist};
use criterion::{Criterion, criterion_group, criterion_main};
use elbo::models::vdm::VdmConfig;

fn train_step(c: &mut Criterion) {
    let train = device().autodiff();
    let images = mnist().train;
    let batches: Vec<Tensor<2>> = (0..8)
        .map(|i| {
            let slice = images.slice(i * 64, 64).unwrap();
            slice.to_tensor(slice.unit(), &train).unwrap()
        })
        .collect();
    let model = VdmConfig::new(1, 28, 28).init(&train).unwrap().train();
    bench_train_step(c, "vdm_unet32/train_step_batch64", model, &batches);
}

fn ancestral_step(c: &mut Criterion) {
    let device = device();
    let model = VdmConfig::new(1, 28, 28).init(&device).unwrap().valid();
    let z = Tensor::<2>::random([16, 784], TensorDistribution::Normal(0.0, 1.0), &device);
    c.bench_function("vdm_unet32/ancestral_step_batch16", |b| {
        b.iter(|| {
            let noise = z.random_like(TensorDistribution::Normal(0.0, 1.0));
            let next = model
                .ancestral_step_with_noise(z.clone(), 0.5, 0.48, noise)
                .unwrap();
            let _: f32 = next.sum().into_scalar();
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = train_step, ancestral_step
}
criterion_main!(benches);
