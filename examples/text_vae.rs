//! Sentence VAEs on character-level text: the setting in which the KL vanishes. Trains an
//! LSTM encoder with the chosen posterior head and an LSTM decoder fed `z` at every step,
//! then reports on the test sentences the importance-sampled NLL per sentence, perplexity,
//! KL, mutual information I_q(x; z) and active units, and prints a few samples.
//!
//! ```text
//! cargo run --release --example text_vae -- --head gaussian|warmup|bn|bn-split|vmf|vmf-learned|ps
//!     [--data DIR] [--epochs N] [--batch-size N] [--latent N] [--lr X] [--seed N] [--k N]
//!     [--gamma X] [--tau X] [--kappa X] [--warmup STEPS] [--eval N] [--embedding N]
//!     [--encoder-hidden N] [--decoder-hidden N] [--device flex|wgpu]
//! ```
//! `--data` defaults to `../shared/data/fortune-sentences` (relative to the project root);
//! the folder must hold `train.txt` and `test.txt`, one sentence per line. The last line
//! printed is `test NLL (K=<k>): <x> nats/sentence (± <se>)  PPL <p>  KL <kl>  MI <mi>  AU <a>/<d>`.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use elbo::data::{CharVocab, SentenceData, TokenBatch, read_sentences};
use elbo::models::{
    BnGaussianHead, BnScale, LstmDecoder, LstmEncoder, TextVae, TextVaeConfig, VmfKappa,
};
use elbo::objective::{
    ElboObjective, LikelihoodConfig, Objective, active_units, kl_per_group, log_likelihood,
    mutual_information,
};
use elbo::train::{FitConfig, fit};
use elbo::{Batch, Decoder, Distribution, KlDivergence, Posterior, PosteriorHead, Prior};

const USAGE: &str = "usage: text_vae --head gaussian|warmup|bn|bn-split|vmf|vmf-learned|ps
       [--data DIR] [--epochs N] [--batch-size N] [--latent N] [--lr X] [--seed N] [--k N]
       [--gamma X] [--tau X] [--kappa X] [--warmup STEPS] [--eval N] [--embedding N]
       [--encoder-hidden N] [--decoder-hidden N] [--device flex|wgpu]
defaults: --embedding 32 --encoder-hidden 64 --decoder-hidden 128
          --data ../shared/data/fortune-sentences --epochs 10 --batch-size 32 --latent 32
          --lr 1e-3 --seed 0 --k 500 --gamma 0.6 (bn) --tau 0.3 (bn-split) --kappa 25 (vmf)
          or 38 (ps) (all four give a KL floor near 5.7 nats at --latent 32)
          --warmup: the steps of half the epochs (warmup head) --eval: all test sentences";

struct Args {
    head: String,
    data: PathBuf,
    epochs: usize,
    batch_size: usize,
    latent: usize,
    lr: f64,
    seed: u64,
    k: usize,
    gamma: f64,
    tau: f64,
    kappa: Option<f64>,
    warmup: Option<usize>,
    eval: Option<usize>,
    embedding: usize,
    encoder_hidden: usize,
    decoder_hidden: usize,
    device: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        head: String::new(),
        data: PathBuf::from("../shared/data/fortune-sentences"),
        epochs: 10,
        batch_size: 32,
        latent: 32,
        lr: 1e-3,
        seed: 0,
        k: 500,
        gamma: 0.6,
        tau: 0.3,
        kappa: None,
        warmup: None,
        eval: None,
        embedding: 32,
        encoder_hidden: 64,
        decoder_hidden: 128,
        device: "flex".into(),
    };
    let mut flags = common::Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--help" | "-h" => return Err(String::new()),
            "--head" => args.head = flags.value(&flag)?,
            "--data" => args.data = flags.value(&flag)?,
            "--epochs" => args.epochs = flags.value(&flag)?,
            "--batch-size" => args.batch_size = flags.value(&flag)?,
            "--latent" => args.latent = flags.value(&flag)?,
            "--lr" => args.lr = flags.value(&flag)?,
            "--seed" => args.seed = flags.value(&flag)?,
            "--k" => args.k = flags.value(&flag)?,
            "--gamma" => args.gamma = flags.value(&flag)?,
            "--tau" => args.tau = flags.value(&flag)?,
            "--kappa" => args.kappa = Some(flags.value(&flag)?),
            "--warmup" => args.warmup = Some(flags.value(&flag)?),
            "--eval" => args.eval = Some(flags.value(&flag)?),
            "--embedding" => args.embedding = flags.value(&flag)?,
            "--encoder-hidden" => args.encoder_hidden = flags.value(&flag)?,
            "--decoder-hidden" => args.decoder_hidden = flags.value(&flag)?,
            "--device" => args.device = flags.value(&flag)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.head.is_empty() {
        return Err("--head is required".into());
    }
    Ok(args)
}

fn main() {
    common::main_with(USAGE, parse_args, run);
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
    let train_text = read_sentences(args.data.join("train.txt"), max_chars)?;
    let mut test_text = read_sentences(args.data.join("test.txt"), max_chars)?;
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
        .with_max_chars(max_chars);
    let setup = Setup {
        train: SentenceData::new(&train_text, &vocab),
        test: SentenceData::new(&test_text, &vocab),
        vocab,
        device,
        config,
        args,
    };
    let (config, device) = (&setup.config, &setup.device);
    match setup.args.head.as_str() {
        "gaussian" | "warmup" => train_and_report(&setup, config.gaussian(device)?, None),
        "bn" => train_and_report(
            &setup,
            config.bn(BnScale::Fixed(setup.args.gamma), device)?,
            Some(&BnGaussianHead::kl_floor),
        ),
        "bn-split" => train_and_report(
            &setup,
            config.bn(BnScale::LearnedSplit(setup.args.tau), device)?,
            Some(&BnGaussianHead::kl_floor),
        ),
        "vmf" => train_and_report(
            &setup,
            config.vmf(VmfKappa::Fixed(setup.args.kappa.unwrap_or(25.0)), device)?,
            None,
        ),
        "vmf-learned" => train_and_report(&setup, config.vmf(VmfKappa::Learned, device)?, None),
        "ps" => train_and_report(
            &setup,
            config.power_spherical(setup.args.kappa.unwrap_or(38.0), device)?,
            None,
        ),
        other => Err(format!(
            "unknown head {other:?}: use gaussian, warmup, bn, bn-split, vmf, vmf-learned or ps"
        )
        .into()),
    }
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
    TextVae<H, P>: Module,
{
    let args = &setup.args;
    let device = &setup.device;
    let steps_per_epoch = setup.train.sequences.len().div_ceil(args.batch_size);
    let warmup = match (args.head.as_str(), args.warmup) {
        (_, Some(steps)) => steps,
        ("warmup", None) => (args.epochs / 2).max(1) * steps_per_epoch,
        _ => 0,
    };
    if let Some(floor) = kl_floor {
        println!(
            "head {}: analytic KL floor at initialisation {:.3} nats",
            args.head,
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
    device.seed(args.seed);
    let started = Instant::now();
    let (vae, _history) = fit(vae, &setup.config, &setup.train, &fit_config, device)?;
    println!(
        "trained {} epochs in {:.1} s",
        args.epochs,
        started.elapsed().as_secs_f64()
    );
    if let Some(floor) = kl_floor {
        println!(
            "head {}: analytic KL floor after training {:.3} nats",
            args.head,
            floor(&vae.encoder.head)
        );
    }
    let vae = vae.valid();

    let (x, _order) = setup.test.sorted_batch(device)?;
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
