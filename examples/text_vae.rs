//! Sentence VAEs on character-level text: the setting in which the KL vanishes. Trains an
//! LSTM encoder with the chosen posterior head and an LSTM decoder fed `z` at every step,
//! then reports on the test sentences the importance-sampled NLL per sentence, perplexity,
//! KL, mutual information I_q(x; z) and active units, and prints a few samples.
//!
//! ```text
//! cargo run --release --example text_vae -- --head gaussian|warmup|bn|bn-split|bn-split-rms|vmf|vmf-learned|ps
//!     [--epochs N] [--latent N] ...
//! cargo run --release --example text_vae -- --help
//! ```
//! `--data` defaults to the repository's `data/fortune-sentences`; the folder must hold
//! `train.txt` and `test.txt`, one sentence per line. The last line printed is
//! `test NLL (K=<k>): <x> nats/sentence (± <se>)  PPL <p>  KL <kl>  MI <mi>  AU <a>/<d>`.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use clap::{Parser, ValueEnum};
use elbo::data::{CharVocab, SentenceData, TokenBatch};
use elbo::models::{
    BnGaussianHead, BnScale, LstmDecoder, LstmEncoder, TextVae, TextVaeConfig, VmfKappa,
};
use elbo::objective::{
    ElboObjective, LikelihoodConfig, Objective, active_units, kl_per_group, log_likelihood,
    mutual_information,
};
use elbo::train::FitConfig;
use elbo::{Batch, Decoder, Distribution, KlDivergence, Posterior, PosteriorHead, Prior};

/// The posterior heads on the LSTM encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Head {
    /// Gaussian, plain ELBO.
    Gaussian,
    /// Gaussian with KL warm-up (over half the epochs unless --warmup says otherwise).
    Warmup,
    /// BN-VAE: batch-normalised means with a fixed scale γ (--gamma).
    Bn,
    /// BN-VAE with Su's learned split of the scale (--tau).
    BnSplit,
    /// BN-VAE with the learned split and a positive σ scaled by its batch RMS (--tau).
    BnSplitRms,
    /// vMF with a fixed concentration (--kappa, default 25).
    Vmf,
    /// vMF with a learned concentration.
    VmfLearned,
    /// Power Spherical with a fixed concentration (--kappa, default 38).
    Ps,
}

impl Head {
    /// The flag value that selects the head.
    fn name(self) -> &'static str {
        match self {
            Head::Gaussian => "gaussian",
            Head::Warmup => "warmup",
            Head::Bn => "bn",
            Head::BnSplit => "bn-split",
            Head::BnSplitRms => "bn-split-rms",
            Head::Vmf => "vmf",
            Head::VmfLearned => "vmf-learned",
            Head::Ps => "ps",
        }
    }
}

/// Trains a character-level sentence VAE (LSTM encoder with the chosen posterior head,
/// LSTM decoder fed z at every step); reports the test NLL per sentence, perplexity, KL,
/// mutual information and active units, and prints a few samples. The bn, bn-split, vmf
/// and ps defaults all give a KL floor near 5.7 nats at --latent 32.
#[derive(Parser)]
#[command(name = "text_vae")]
struct Args {
    /// The posterior head.
    #[arg(long, value_enum)]
    head: Head,
    /// Sentence corpus folder (train.txt, test.txt).
    #[arg(long, value_name = "DIR", default_value_os_t = common::data::default_text_dir())]
    data: PathBuf,
    /// Training epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Sentences per training batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Latent dimensions.
    #[arg(long, default_value_t = 32)]
    latent: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed of the initial weights, the batches and the evaluation draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Importance samples per test sentence for the NLL.
    #[arg(long, default_value_t = 500)]
    k: usize,
    /// BN-VAE's fixed scale γ (head bn).
    #[arg(long, default_value_t = 0.6)]
    gamma: f64,
    /// BN-VAE's split τ (heads bn-split and bn-split-rms).
    #[arg(long, default_value_t = 0.3)]
    tau: f64,
    /// Batch-norm ε of the BN heads (burn's default is 1e-5, Su's Keras code 1e-8).
    #[arg(long, default_value_t = 1e-12)]
    bn_epsilon: f64,
    /// Fixed concentration (heads vmf and ps; default 25 and 38).
    #[arg(long)]
    kappa: Option<f64>,
    /// KL warm-up steps (default: none, or half the epochs' steps for head warmup).
    #[arg(long, value_name = "STEPS")]
    warmup: Option<usize>,
    /// Test sentences to evaluate (default: all).
    #[arg(long, value_name = "N")]
    eval: Option<usize>,
    /// Character embedding size.
    #[arg(long, default_value_t = 32)]
    embedding: usize,
    /// Encoder LSTM width.
    #[arg(long, default_value_t = 64)]
    encoder_hidden: usize,
    /// Decoder LSTM width.
    #[arg(long, default_value_t = 128)]
    decoder_hidden: usize,
    /// Folder for `test_nll.txt` (each test sentence's NLL, in test-file order).
    #[arg(long, value_name = "DIR", default_value = "out/text_vae")]
    out: PathBuf,
    /// Device: flex, wgpu[:N] or cuda[:N] (the last two with their cargo features).
    #[arg(long, default_value = elbo::device::DEFAULT_NAME)]
    device: String,
    #[command(flatten)]
    learner: common::learner::LearnerArgs,
}

fn main() {
    common::main_with(run);
}

/// Everything the example needs, loaded once.
struct Setup {
    args: Args,
    device: Device,
    vocab: CharVocab,
    train: SentenceData,
    test: SentenceData,
    config: TextVaeConfig,
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let device = common::device(&args.device)?;
    let max_chars = 64;
    let corpus = common::data::load_sentences(&args.data, max_chars)?;
    let train_text = corpus.train;
    let mut test_text = corpus.test;
    if let Some(n) = args.eval {
        test_text.truncate(n.max(2));
    }
    let vocab = CharVocab::from_sentences(&train_text);
    println!(
        "data: {} training sentences, {} test sentences, {} characters (+4 reserved ids), device {}",
        train_text.len(),
        test_text.len(),
        vocab.len() - 4,
        args.device
    );
    let config = TextVaeConfig::new(vocab.len())
        .with_latent_dim(args.latent)
        .with_embedding(args.embedding)
        .with_encoder_hidden(args.encoder_hidden)
        .with_decoder_hidden(args.decoder_hidden)
        .with_max_chars(max_chars)
        .with_bn_epsilon(args.bn_epsilon);
    let setup = Setup {
        train: SentenceData::new(&train_text, &vocab),
        test: SentenceData::new(&test_text, &vocab),
        vocab,
        device,
        config,
        args,
    };
    let (config, device) = (&setup.config, &setup.device);
    // The initial weights from --seed (the device's stream is drawn from the entropy of
    // the process until it is seeded).
    device.seed(setup.args.seed);
    match setup.args.head {
        Head::Gaussian | Head::Warmup => train_and_report(&setup, config.gaussian(device)?, None),
        Head::Bn => train_and_report(
            &setup,
            config.bn(BnScale::Fixed(setup.args.gamma), device)?,
            Some(&BnGaussianHead::kl_floor),
        ),
        Head::BnSplit => train_and_report(
            &setup,
            config.bn(BnScale::LearnedSplit(setup.args.tau), device)?,
            Some(&BnGaussianHead::kl_floor),
        ),
        Head::BnSplitRms => train_and_report(
            &setup,
            config.bn(BnScale::LearnedSplitRms(setup.args.tau), device)?,
            Some(&BnGaussianHead::kl_floor),
        ),
        Head::Vmf => train_and_report(
            &setup,
            config.vmf(VmfKappa::Fixed(setup.args.kappa.unwrap_or(25.0)), device)?,
            None,
        ),
        Head::VmfLearned => train_and_report(&setup, config.vmf(VmfKappa::Learned, device)?, None),
        Head::Ps => train_and_report(
            &setup,
            config.power_spherical(setup.args.kappa.unwrap_or(38.0), device)?,
            None,
        ),
    }
}

/// The mean test KL per sentence with the encoder in training mode, so that a batch-norm
/// head normalises each batch by its own statistics, as in training: once over
/// length-sorted batches (like the fit loop's length buckets) and once over batches in a
/// fixed shuffled order. Set beside the inference-mode KL it shows whether a gap comes from
/// the running statistics or from the batches' composition.
fn test_kl_with_batch_statistics<H, P>(
    setup: &Setup,
    vae: &TextVae<H, P>,
) -> Result<(f64, f64), Box<dyn std::error::Error>>
where
    H: PosteriorHead,
    H::Posterior: Posterior<Value = Tensor<2>> + KlDivergence<P>,
    P: Prior<Value = Tensor<2>>,
{
    let train_device = setup.device.clone().autodiff();
    let (x, _order) = setup.test.sorted_batch(&train_device)?;
    let n = x.batch_size();
    let b = setup.args.batch_size;
    let mean_kl = |order: &[usize]| -> Result<f64, elbo::Error> {
        let mut total = 0.0;
        for chunk in order.chunks(b) {
            let rows: Vec<i64> = chunk.iter().map(|&i| i as i64).collect();
            let index = Tensor::<1, burn::tensor::Int>::from_ints(rows.as_slice(), &train_device);
            let q = vae.encode(&x.select_rows(index))?;
            let kl: f32 = q.kl(&vae.prior).detach().sum().into_scalar();
            total += kl as f64;
        }
        Ok(total / n as f64)
    };
    let sorted: Vec<usize> = (0..n).collect();
    // A fixed permutation: multiplication by a unit modulo n (any odd stride coprime to n).
    let stride = (1..)
        .map(|s| 2 * s + 1)
        .find(|s| gcd(*s, n) == 1)
        .unwrap_or(1);
    let shuffled: Vec<usize> = (0..n).map(|i| (i * stride + 7) % n).collect();
    Ok((mean_kl(&sorted)?, mean_kl(&shuffled)?))
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn train_and_report<H, P>(
    setup: &Setup,
    vae: TextVae<H, P>,
    kl_floor: Option<&dyn Fn(&H) -> f64>,
) -> Result<(), Box<dyn std::error::Error>>
where
    H: PosteriorHead + Module,
    H::Posterior: Posterior<Value = Tensor<2>> + KlDivergence<P>,
    P: Prior<Value = Tensor<2>> + Module,
    LstmEncoder<H>: Module,
    TextVae<H, P>: Module + burn::module::ModuleDisplay + 'static,
{
    let args = &setup.args;
    let device = &setup.device;
    let steps_per_epoch = setup.train.sequences.len().div_ceil(args.batch_size);
    let warmup = match (args.head, args.warmup) {
        (_, Some(steps)) => steps,
        (Head::Warmup, None) => (args.epochs / 2).max(1) * steps_per_epoch,
        _ => 0,
    };
    if let Some(floor) = kl_floor {
        println!(
            "head {}: analytic KL floor at initialisation {:.3} nats",
            args.head.name(),
            floor(&vae.encoder.head)
        );
    }
    let mut fit_config = FitConfig::new(args.epochs, args.batch_size);
    fit_config.learning_rate = args.lr;
    fit_config.seed = args.seed;
    fit_config.log_epochs = true;
    fit_config.grad_clip_norm = Some(5.0);
    fit_config.objective = Objective::Elbo(ElboObjective {
        warmup_steps: warmup,
        ..ElboObjective::default()
    });
    let vae = args.learner.fit(
        vae,
        &setup.config,
        (setup.train.clone(), setup.test.clone()),
        &fit_config,
        device,
        &args.device,
    )?;
    if let Some(floor) = kl_floor {
        println!(
            "head {}: analytic KL floor after training {:.3} nats",
            args.head.name(),
            floor(&vae.encoder.head)
        );
    }
    let (sorted_kl, shuffled_kl) = test_kl_with_batch_statistics(setup, &vae)?;
    println!(
        "test KL with batch statistics (training mode, batches of {}): {sorted_kl:.3} nats in \
         length-sorted batches, {shuffled_kl:.3} in shuffled batches",
        args.batch_size
    );
    let vae = vae.valid();

    let (x, order) = setup.test.sorted_batch(device)?;
    let predicted_tokens: usize = x.lengths().iter().sum();
    let q = vae.encode(&x)?;
    let au = active_units(q.mean(), 0.01)?;
    let mi = mutual_information(&q)?;
    let kl: f64 = kl_per_group(&vae, &x, 100)?.iter().sum();

    print_samples(setup, &vae, &x)?;

    let started = Instant::now();
    let ll = log_likelihood(
        &vae,
        &x,
        &LikelihoodConfig::new(args.k)
            .with_example_chunk(50)
            .with_sample_chunk(100),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    // Back from length order to test-file order.
    let mut per_sentence = vec![0.0; order.len()];
    for (&i, v) in order.iter().zip(&ll.per_example) {
        per_sentence[i] = -v;
    }
    common::write_test_nll(&args.out, &per_sentence)?;
    let nll = -ll.mean;
    let ppl = (nll * x.batch_size() as f64 / predicted_tokens as f64).exp();
    println!(
        "evaluated {} test sentences at K={} in {seconds:.1} s",
        x.batch_size(),
        args.k
    );
    println!(
        "test NLL (K={}): {nll:.3} nats/sentence (± {:.3})  PPL {ppl:.3}  KL {kl:.3}  MI {mi:.3}  AU {}/{}",
        args.k,
        ll.std_error,
        au.count,
        au.activity.len()
    );
    Ok(())
}

fn print_samples<H, P>(
    setup: &Setup,
    vae: &TextVae<H, P>,
    x: &TokenBatch,
) -> Result<(), Box<dyn std::error::Error>>
where
    H: PosteriorHead,
    H::Posterior: Posterior<Value = Tensor<2>>,
    P: Prior<Value = Tensor<2>>,
{
    let device = &setup.device;
    let decoder: &LstmDecoder = &vae.decoder;
    println!("samples from the prior:");
    let z = vae.prior.sample(5, device);
    for s in decoder.decode(&z).sample().sequences() {
        println!("  {}", setup.vocab.decode(&s));
    }
    println!("greedy reconstructions (input → output):");
    let n = x.batch_size();
    let picks = x.select_rows(Tensor::from_data(
        burn::tensor::TensorData::new(
            vec![(n / 5) as i64, (n / 2) as i64, (4 * n / 5) as i64],
            [3],
        ),
        device,
    ));
    let out = vae.reconstruct(&picks)?;
    for (a, b) in picks.sequences().iter().zip(out.sequences()) {
        println!("  {}  →  {}", setup.vocab.decode(a), setup.vocab.decode(&b));
    }
    Ok(())
}
