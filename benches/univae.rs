//! What users wait for with UniVAE (the default config: width 96, 4 layers, 2 latent layers
//! on `S^31`): a training step at batch 64 on the fortune sentences (forward over
//! `[x ; x]`, the ELBO, backward, Adam), and greedy reconstruction of 64 sentences (the
//! encoder pass, then character-by-character decoding from the mean directions). The
//! model is untrained, so it rarely ends a sentence early: reconstruction runs its
//! worst case, all 65 decoding steps.
//!
//! ```text
//! cargo bench --bench univae                                   # flex (CPU)
//! ELBO_BENCH_DEVICE=wgpu cargo bench --features wgpu --bench univae
//! ```
//! Reads the repository's `data/fortune-sentences` (or `$ELBO_TEXT_DIR`). Every timed closure ends
//! on a device sync (`into_scalar` or a host read).

mod common;

use burn::module::Module;
use common::{bench_train_step, device, sentence_batches};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use elbo::models::univae::UniVaeConfig;

fn train_step(c: &mut Criterion) {
    let train = device().autodiff();
    let (vocab, batches) = sentence_batches(&train, 64);
    let model = UniVaeConfig::new(vocab.len()).init(&train).unwrap().train();
    bench_train_step(c, "univae/train_step_batch64", model, &batches);
}

fn reconstruct(c: &mut Criterion) {
    let device = device();
    let (vocab, batches) = sentence_batches(&device, 64);
    // Seeded: how many steps decoding takes depends on when the untrained model happens to
    // emit the end marker.
    device.seed(0);
    let model = UniVaeConfig::new(vocab.len())
        .init(&device)
        .unwrap()
        .valid();
    let mut group = c.benchmark_group("univae");
    group.sample_size(10);
    group.throughput(Throughput::Elements(64));
    group.bench_function("reconstruct_64_sentences_greedy", |b| {
        b.iter(|| model.reconstruct(&batches[0]).unwrap().sequences().len())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = train_step, reconstruct
}
criterion_main!(benches);
