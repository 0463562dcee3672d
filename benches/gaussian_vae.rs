//! What users wait for with the classic 784-400-20 Gaussian VAE: a training step at batch
//! 128, and importance-sampled evaluation at K = 1000 (throughput in test images/s).
//!
//! ```text
//! cargo bench --bench gaussian_vae                        # flex (CPU)
//! ELBO_BENCH_DEVICE=wgpu cargo bench --features wgpu --bench gaussian_vae
//! ```
//! Reads `../shared/data/mnist-10k` (or `$ELBO_MNIST_DIR`). Every timed closure ends on a
//! device sync (`into_scalar`) so that asynchronous backends are timed honestly.

use std::path::PathBuf;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use elbo::LatentVariableModel;
use elbo::data::{Binarization, ImageData, Images, TrainData};
use elbo::models::GaussianVaeConfig;
use elbo::objective::{ElboObjective, LikelihoodConfig, log_likelihood};
use rand::SeedableRng;

fn device() -> Device {
    match std::env::var("ELBO_BENCH_DEVICE").as_deref() {
        #[cfg(feature = "wgpu")]
        Ok("wgpu") => Device::wgpu(Default::default()),
        Ok("flex") | Err(_) => Device::flex(),
        Ok(other) => panic!("ELBO_BENCH_DEVICE={other}: use flex or wgpu (with --features wgpu)"),
    }
}

fn data_dir() -> PathBuf {
    std::env::var_os("ELBO_MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist-10k")
        })
}

fn train_step(c: &mut Criterion) {
    let device = device();
    let train_device = device.clone().autodiff();
    let images = Images::load(data_dir().join("train-images-idx3-ubyte.gz")).expect("MNIST data");
    let data = ImageData::new(images, Binarization::Dynamic);
    let mut rng = rand::rngs::StdRng::seed_from_u64(123);
    let batches: Vec<Tensor<2>> = (0..16)
        .map(|i| {
            let idx: Vec<usize> = (0..128).map(|j| (i * 997 + j * 31) % data.len()).collect();
            data.batch(&idx, &mut rng, &train_device).unwrap()
        })
        .collect();
    let mut model = Some(GaussianVaeConfig::mnist_mlp().init(&train_device).unwrap());
    let mut optimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let objective = ElboObjective::default();
    let mut i = 0;
    c.bench_function("gaussian_vae/train_step/batch128", |b| {
        b.iter(|| {
            let m = model.take().unwrap();
            let x = &batches[i % batches.len()];
            i += 1;
            let loss = objective.loss(&m.elbo(x).unwrap(), 0);
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            let m = optimizer.step(1e-3, m, grads);
            // Sync: read one parameter value back.
            let _: f32 = m.encoder.mlp.layers[0]
                .weight
                .val()
                .slice([0..1, 0..1])
                .into_scalar();
            model = Some(m);
        })
    });
}

fn importance_sampling(c: &mut Criterion) {
    let device = device();
    let test = Images::load(data_dir().join("t10k-images-binarized-seed1234-idx3-ubyte.gz"))
        .expect("MNIST data");
    let n = 50;
    let x = test.slice(0, n).unwrap();
    let x = x.to_tensor(x.binary().unwrap(), &device).unwrap();
    let model = GaussianVaeConfig::mnist_mlp()
        .init(&device)
        .unwrap()
        .valid();
    let config = LikelihoodConfig::new(1000);
    let mut group = c.benchmark_group("gaussian_vae/log_likelihood_K1000");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("images", |b| {
        b.iter(|| log_likelihood(&model, &x, &config).unwrap().mean)
    });
    group.finish();
}

criterion_group!(benches, train_step, importance_sampling);
criterion_main!(benches);
