//! Trains UniVAE (one Transformer as encoder and decoder, one vMF latent per top layer) on
//! the fortune sentences at character level, then prints reconstructions of test
//! sentences, sentences decoded from random latents, and what swapping one layer's latent
//! between two sentences does; and reports reconstruction accuracy and per-character NLL.
//!
//! ```text
//! cargo run --release --example univae -- [--epochs N] [--d-model N] [--kappa X] ...
//! cargo run --release --example univae -- --help
//! ```
//! `--data` defaults to the repository's `data/fortune-sentences` (the folder must hold
//! `train.txt` and `test.txt`, one sentence per line). The model's defaults are
//! `UniVaeConfig`'s. The last line printed is `test NLL: <x> nats/char`.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Tensor;
use clap::Parser;
use elbo::data::{CharVocab, SentenceData, TokenBatch};
use elbo::models::univae::{Latents, UniVae, UniVaeConfig};
use elbo::objective::{LikelihoodConfig, elbo_estimate, log_likelihood};
use elbo::train::{FitConfig, LrSchedule};
use elbo::{Batch, LatentVariableModel};

/// Trains UniVAE (one Transformer as encoder and decoder, one vMF latent per top layer) on
/// sentences at character level; prints reconstructions, sentences from random latents
/// and latent swaps, and reports reconstruction accuracy and the NLL per character.
#[derive(Parser)]
#[command(name = "univae")]
struct Args {
    /// Sentence corpus folder (train.txt, test.txt).
    #[arg(long, value_name = "DIR", default_value_os_t = common::data::default_text_dir())]
    data: PathBuf,
    /// Training epochs.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Sentences per training batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Transformer width.
    #[arg(long, default_value_t = UniVaeConfig::new(0).d_model)]
    d_model: usize,
    /// Transformer layers.
    #[arg(long, default_value_t = UniVaeConfig::new(0).layers)]
    layers: usize,
    /// Top layers that each carry a vMF latent.
    #[arg(long, default_value_t = UniVaeConfig::new(0).latent_layers)]
    latent_layers: usize,
    /// Dimensions of each latent.
    #[arg(long, default_value_t = UniVaeConfig::new(0).latent_dim)]
    latent_dim: usize,
    /// The latents' fixed vMF concentration.
    #[arg(long, default_value_t = UniVaeConfig::new(0).kappa)]
    kappa: f64,
    /// Dropout in the Transformer.
    #[arg(long, default_value_t = UniVaeConfig::new(0).dropout)]
    dropout: f64,
    /// Probability of replacing a decoder input token (word dropout).
    #[arg(long, default_value_t = UniVaeConfig::new(0).token_dropout)]
    token_dropout: f64,
    /// Seed of the initial weights, the batches and the evaluation draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Test sentences to evaluate.
    #[arg(long, default_value_t = 1000)]
    eval: usize,
    /// Importance samples per test sentence for the NLL.
    #[arg(long, default_value_t = 20)]
    k: usize,
    /// Device: flex, wgpu[:N] or cuda[:N] (the last two with their cargo features).
    #[arg(long, default_value = elbo::device::DEFAULT_NAME)]
    device: String,
    #[command(flatten)]
    learner: common::learner::LearnerArgs,
}

fn main() {
    common::main_with(run);
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let device = common::device(&args.device)?;
    let max_chars = 64;
    let corpus = common::data::load_sentences(&args.data, max_chars)?;
    let train_text = corpus.train;
    let mut test_text = corpus.test;
    test_text.truncate(args.eval.max(2));
    let vocab = CharVocab::from_sentences(&train_text);
    let config = UniVaeConfig::new(vocab.len())
        .with_max_chars(max_chars)
        .with_d_model(args.d_model)
        .with_d_ff(4 * args.d_model)
        .with_layers(args.layers)
        .with_latent_layers(args.latent_layers)
        .with_latent_dim(args.latent_dim)
        .with_kappa(args.kappa)
        .with_dropout(args.dropout)
        .with_token_dropout(args.token_dropout);
    device.seed(args.seed);
    let model = config.init(&device)?;
    println!(
        "data: {} training sentences, {} test sentences, {} characters (+4 reserved ids), \
         device {}; UniVAE width {}, {} layers ({} latent layers on S^{}, κ = {}), {} parameters",
        train_text.len(),
        test_text.len(),
        vocab.len() - 4,
        args.device,
        args.d_model,
        args.layers,
        args.latent_layers,
        args.latent_dim - 1,
        args.kappa,
        model.num_params()
    );

    let mut fit_config = FitConfig::new(args.epochs, args.batch_size);
    fit_config.learning_rate = args.lr;
    fit_config.lr_schedule = LrSchedule::Cosine {
        min_lr: args.lr / 20.0,
    };
    fit_config.seed = args.seed;
    fit_config.log_epochs = true;
    fit_config.grad_clip_norm = Some(1.0);
    let train = SentenceData::new(&train_text, &vocab);
    let test = SentenceData::new(&test_text, &vocab);
    let model: UniVae = args.learner.fit(
        model,
        &config,
        (train, test.clone()),
        &fit_config,
        &device,
        &args.device,
    )?;

    let (x, _order) = test.sorted_batch(&device)?;
    let chars: usize = x.lengths().iter().sum();
    print_examples(&model, &vocab, &test_text, &device)?;

    let started = Instant::now();
    let accuracy = reconstruction_accuracy(&model, &x)?;
    println!(
        "greedy reconstructions of {} test sentences ({:.1} s): exact match {:.1}%, \
         characters right {:.1}% (free-running, position by position), next-character \
         accuracy {:.1}% (teacher-forced, mean latents)",
        x.batch_size(),
        started.elapsed().as_secs_f64(),
        100.0 * accuracy.exact,
        100.0 * accuracy.chars,
        100.0 * accuracy.teacher_forced
    );

    let started = Instant::now();
    let bound = elbo_estimate(&model, &x, 100)?;
    let ll = log_likelihood(
        &model,
        &x,
        &LikelihoodConfig::new(args.k)
            .with_example_chunk(100)
            .with_sample_chunk(args.k.min(20)),
    )?;
    let per_char =
        |nats_per_sentence: f64| nats_per_sentence * x.batch_size() as f64 / chars as f64;
    // Each latent layer's KL is a constant of κ and d, so one sentence gives it, and the
    // ELBO's draws give −E_q log p(x | z) = −ELBO − KL without a second pass.
    let kl_total = model
        .elbo(&x.narrow_rows(0, 1))?
        .kl_total()
        .into_scalar::<f32>() as f64;
    let reconstruction = -bound.mean - kl_total;
    println!(
        "evaluated in {:.1} s over {} predicted characters (end markers included):",
        started.elapsed().as_secs_f64(),
        chars
    );
    println!(
        "  -log p(x|z) {:.4} nats/char; KL {:.2} nats/sentence ({} layers, constant); \
         -ELBO {:.4} nats/char",
        per_char(reconstruction),
        kl_total,
        model.latent_layers(),
        per_char(-bound.mean)
    );
    println!(
        "  importance sampled, K = {}: {:.2} nats/sentence (± {:.2})",
        args.k, -ll.mean, ll.std_error
    );
    println!(
        "test NLL: {:.4} nats/char (importance sampled, K = {}; ± {:.4})",
        per_char(-ll.mean),
        args.k,
        per_char(ll.std_error)
    );
    Ok(())
}

/// Reconstructions, sentences from random latents and latent swaps, printed.
fn print_examples(
    model: &UniVae,
    vocab: &CharVocab,
    test_text: &[String],
    device: &burn::tensor::Device,
) -> Result<(), Box<dyn std::error::Error>> {
    let picks: Vec<&str> = [0, 1, 2, 3, 4, 5]
        .iter()
        .filter_map(|&i| test_text.get(i).map(String::as_str))
        .collect();
    let ids: Vec<Vec<i64>> = picks.iter().map(|s| vocab.encode(s)).collect();
    let x = TokenBatch::new(&ids, device)?;
    println!("greedy reconstructions (input → output):");
    for (input, output) in picks.iter().zip(model.reconstruct(&x)?.sequences()) {
        println!("  {input}\n   → {}", vocab.decode(&output));
    }
    println!("decoded from random latents (greedy | sampled):");
    let z = model.sample_latents(5, device);
    let greedy = model.generate(&z, true)?.sequences();
    let sampled = model.generate(&z, false)?.sequences();
    for (g, s) in greedy.iter().zip(&sampled) {
        println!("  {}  |  {}", vocab.decode(g), vocab.decode(s));
    }
    // Swap one layer's latent of sentence A for sentence B's, layer by layer.
    let (_, z) = model.encode(&x, true)?;
    for (a, b) in [(0, 1), (2, 3)] {
        if b >= picks.len() {
            break;
        }
        println!("A = {}\nB = {}", picks[a], picks[b]);
        for layer in 0..model.latent_layers() {
            let mixed: Vec<Tensor<2>> = z
                .iter()
                .enumerate()
                .map(|(l, zl)| zl.clone().narrow(0, if l == layer { b } else { a }, 1))
                .collect();
            let out = model.generate(&mixed, true)?.sequences();
            println!(
                "  A with layer {} (of {}, bottom first) from B → {}",
                layer + 1,
                model.latent_layers(),
                vocab.decode(&out[0])
            );
        }
    }
    Ok(())
}

struct Accuracy {
    exact: f64,
    chars: f64,
    teacher_forced: f64,
}

/// Greedy reconstructions from the posterior mean directions, compared position by
/// position with the input (a missing or extra character counts as wrong), and the
/// teacher-forced next-character accuracy with the same latents; in chunks of 100.
fn reconstruction_accuracy(model: &UniVae, x: &TokenBatch) -> elbo::Result<Accuracy> {
    let (mut exact, mut right, mut total, mut tf_right) = (0usize, 0usize, 0usize, 0usize);
    let mut predicted = 0usize;
    let n = x.batch_size();
    for start in (0..n).step_by(100) {
        let chunk = x.narrow_rows(start, 100.min(n - start));
        let (_, z) = model.encode(&chunk, true)?;
        let out = model.generate(&z, true)?.sequences();
        for (input, output) in chunk.sequences().iter().zip(&out) {
            exact += usize::from(input == output);
            right += input.iter().zip(output).filter(|(a, b)| a == b).count();
            total += input.len().max(output.len());
        }
        let logits = model.forward(&chunk, Latents::Given(z))?.logits;
        let hits = logits
            .argmax(2)
            .squeeze_dim::<2>(2)
            .equal(chunk.targets())
            .int()
            .float()
            * chunk.mask();
        tf_right += hits.sum().into_scalar::<f32>() as usize;
        predicted += chunk.lengths().iter().sum::<usize>();
    }
    Ok(Accuracy {
        exact: exact as f64 / n as f64,
        chars: right as f64 / total.max(1) as f64,
        teacher_forced: tf_right as f64 / predicted.max(1) as f64,
    })
}
