//! What users wait for with the sentence VAEs of `examples/text_vae.rs` (embedding 32,
//! encoder LSTM 64, decoder LSTM 128, latent 32): a training step at batch 32 for the
//! Gaussian and BN heads, and importance-sampled evaluation (sentence-samples per second).
//!
//! ```text
//! cargo bench --bench text
//! ```
//! Reads `../shared/data/fortune-sentences` (or `$ELBO_TEXT_DIR`). Every timed closure ends
//! on a device sync (`into_scalar` or a host read).

mod common;

use std::path::PathBuf;

use burn::tensor::Device;
use common::bench_train_step;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use elbo::data::{CharVocab, SentenceData, TokenBatch, TrainData, read_sentences};
use elbo::models::{BnScale, TextVaeConfig};
use elbo::objective::{LikelihoodConfig, log_likelihood};
use rand::SeedableRng;

fn data_dir() -> PathBuf {
    std::env::var_os("ELBO_TEXT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/fortune-sentences")
        })
}

fn setup() -> (TextVaeConfig, SentenceData) {
    let text = read_sentences(data_dir().join("train.txt"), 64).expect("sentence data");
    let vocab = CharVocab::from_sentences(&text);
    let config = TextVaeConfig::new(vocab.len())
        .with_embedding(32)
        .with_encoder_hidden(64)
        .with_decoder_hidden(128);
    (config, SentenceData::new(&text, &vocab))
}

fn batches(data: &SentenceData, device: &Device) -> Vec<TokenBatch> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    (0..16)
        .map(|i| {
            let idx: Vec<usize> = (0..32).map(|j| (i * 541 + j * 97) % data.len()).collect();
            data.batch(&idx, &mut rng, device).unwrap()
        })
        .collect()
}

fn train_steps(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let (config, data) = setup();
    let batches = batches(&data, &device);
    bench_train_step(
        c,
        "text/train_step/batch32/gaussian",
        config.gaussian(&device).unwrap(),
        &batches,
    );
    bench_train_step(
        c,
        "text/train_step/batch32/bn_fixed_gamma",
        config.bn(BnScale::Fixed(0.6), &device).unwrap(),
        &batches,
    );
}

fn importance_sampling(c: &mut Criterion) {
    let device = Device::flex();
    let (config, data) = setup();
    let vae = config.gaussian(&device).unwrap();
    let x = TokenBatch::new(&data.sequences[..20], &device).unwrap();
    let k = 100;
    let mut group = c.benchmark_group("text/importance_sampling/k100");
    group.sample_size(10);
    group.throughput(Throughput::Elements((20 * k) as u64));
    group.bench_function("sentence_samples", |b| {
        b.iter(|| {
            log_likelihood(&vae, &x, &LikelihoodConfig::new(k))
                .unwrap()
                .mean
        })
    });
    group.finish();
}

criterion_group!(benches, train_steps, importance_sampling);
criterion_main!(benches);
