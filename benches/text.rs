//! What users wait for with the sentence VAEs of `examples/text_vae.rs` (embedding 32,
//! encoder LSTM 64, decoder LSTM 128, latent 32): a training step at batch 32 for the
//! Gaussian and BN heads, and importance-sampled evaluation (sentence-samples per second).
//!
//! ```text
//! cargo bench --bench text                                   # flex (CPU)
//! ELBO_BENCH_DEVICE=wgpu cargo bench --features wgpu --bench text
//! ```
//! Reads the repository's `data/fortune-sentences` (or `$ELBO_TEXT_DIR`). The evaluation batch is
//! 20 training sentences. Every timed closure ends
//! on a device sync (`into_scalar` or a host read).

mod common;

use common::{bench_train_step, device, sentence_batches};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use elbo::data::CharVocab;
use elbo::models::{BnScale, TextVaeConfig};
use elbo::objective::{LikelihoodConfig, log_likelihood};

fn config(vocab: &CharVocab) -> TextVaeConfig {
    TextVaeConfig::new(vocab.len())
        .with_embedding(32)
        .with_encoder_hidden(64)
        .with_decoder_hidden(128)
}

fn train_steps(c: &mut Criterion) {
    let device = device().autodiff();
    let (vocab, batches) = sentence_batches(&device, 32);
    let config = config(&vocab);
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
    let device = device();
    let (vocab, batches) = sentence_batches(&device, 20);
    let vae = config(&vocab).gaussian(&device).unwrap();
    let x = &batches[0];
    let k = 100;
    let mut group = c.benchmark_group("text/importance_sampling/k100");
    group.sample_size(10);
    group.throughput(Throughput::Elements((20 * k) as u64));
    group.bench_function("sentence_samples", |b| {
        b.iter(|| {
            log_likelihood(&vae, x, &LikelihoodConfig::new(k))
                .unwrap()
                .mean
        })
    });
    group.finish();
}

criterion_group!(benches, train_steps, importance_sampling);
criterion_main!(benches);
