//! What users wait for with the 784-400-20 VAE family: a training step at batch 128 for
//! each posterior head (Gaussian, BN-VAE fixed γ and learned split, vMF fixed and learned
//! κ) and for the small conv VAE, importance-sampled evaluation at K = 1000 (test images/s), and one posterior draw
//! per family at batch 128 × 20 (the cost of vMF's rejection sampler).
//!
//! ```text
//! cargo bench --bench vae                                   # flex (CPU)
//! ELBO_BENCH_DEVICE=wgpu cargo bench --features wgpu --bench vae
//! ```
//! Reads the repository's `data/mnist-10k` (or `$ELBO_MNIST_DIR`). Every timed closure ends on a
//! device sync (`into_scalar`) so that asynchronous backends are timed honestly.

mod common;

use burn::module::Module;
use burn::tensor::{Distribution as TensorDistribution, Tensor};
use common::{bench_train_step, device, mnist_binary_test, mnist_train_batches};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use elbo::Distribution;
use elbo::distributions::{DiagNormal, PowerSpherical, VonMisesFisher};
use elbo::models::{
    BnScale, BnVaeConfig, ConvVaeConfig, GaussianVaeConfig, VmfKappa, VmfVaeConfig,
};
use elbo::objective::{LikelihoodConfig, log_likelihood};

fn train_steps(c: &mut Criterion) {
    let train = device().autodiff();
    let batches = mnist_train_batches(&train, 128);
    let g = GaussianVaeConfig::mnist_mlp();
    bench_train_step(
        c,
        "train_step/batch128/gaussian",
        g.init(&train).unwrap(),
        &batches,
    );
    bench_train_step(
        c,
        "train_step/batch128/conv",
        ConvVaeConfig::mnist().init(&train).unwrap(),
        &batches,
    );
    let bn = BnVaeConfig::new(784, 20);
    bench_train_step(
        c,
        "train_step/batch128/bn_fixed_gamma",
        bn.clone()
            .with_scale(BnScale::Fixed(0.5))
            .init(&train)
            .unwrap(),
        &batches,
    );
    bench_train_step(
        c,
        "train_step/batch128/bn_learned_split",
        bn.with_scale(BnScale::LearnedSplit(0.5))
            .init(&train)
            .unwrap(),
        &batches,
    );
    let vmf = VmfVaeConfig::new(784, 20);
    bench_train_step(
        c,
        "train_step/batch128/vmf_fixed_kappa",
        vmf.clone()
            .with_kappa(VmfKappa::Fixed(20.0))
            .init(&train)
            .unwrap(),
        &batches,
    );
    bench_train_step(
        c,
        "train_step/batch128/vmf_learned_kappa",
        vmf.with_kappa(VmfKappa::Learned).init(&train).unwrap(),
        &batches,
    );
}

fn importance_sampling(c: &mut Criterion) {
    let device = device();
    let n = 50;
    let x = mnist_binary_test(&device, n);
    let model = GaussianVaeConfig::mnist_mlp()
        .init(&device)
        .unwrap()
        .valid();
    let config = LikelihoodConfig::new(1000);
    let mut group = c.benchmark_group("log_likelihood_K1000/gaussian");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("images", |b| {
        b.iter(|| log_likelihood(&model, &x, &config).unwrap().mean)
    });
    group.finish();
}

fn posterior_samples(c: &mut Criterion) {
    let device = device();
    let (n, d) = (128, 20);
    let raw = Tensor::<2>::random([n, d], TensorDistribution::Normal(0.0, 1.0), &device);
    let unit = raw.clone() / raw.clone().powi_scalar(2).sum_dim(1).sqrt();
    let kappa = Tensor::<1>::full([n], 20.0, &device);
    let gaussian = DiagNormal::new(raw.clone(), raw.zeros_like()).unwrap();
    let vmf = VonMisesFisher::new(unit.clone(), kappa.clone()).unwrap();
    let ps = PowerSpherical::new(unit, kappa).unwrap();
    let sync = |z: Tensor<2>| -> f32 { z.sum().into_scalar() };
    c.bench_function("posterior_sample/128x20/diag_normal", |b| {
        b.iter(|| sync(gaussian.sample()))
    });
    c.bench_function("posterior_sample/128x20/von_mises_fisher", |b| {
        b.iter(|| sync(vmf.sample()))
    });
    c.bench_function("posterior_sample/128x20/power_spherical", |b| {
        b.iter(|| sync(ps.sample()))
    });
}

criterion_group!(benches, train_steps, importance_sampling, posterior_samples);
criterion_main!(benches);
