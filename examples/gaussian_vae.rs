//! Trains the classic Gaussian VAE (784-400-20, ReLU, Bernoulli logits) on MNIST-format
//! data with dynamic binarisation, then reports the importance-sampled test NLL on the fixed
//! binarised test file and writes sample, reconstruction and interpolation grids.
//!
//! ```text
//! cargo run --release --example gaussian_vae -- [--data DIR] [--epochs N] [--batch-size N]
//!     [--latent N] [--lr X] [--seed N] [--k N] [--test-count N] [--iwae K] [--beta X]
//!     [--warmup STEPS] [--free-bits X] [--out DIR] [--checkpoint DIR] [--resume]
//!     [--device flex|wgpu]
//! ```
//! `--data` defaults to `../shared/data/mnist-10k` (relative to the project root); the
//! folder must hold `train-images-idx3-ubyte.gz` and
//! `t10k-images-binarized-seed1234-idx3-ubyte.gz`. The last line printed is
//! `test NLL (K=<k>): <x> nats (± <se>)`.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use elbo::data::{Binarization, ImageData};
use elbo::models::GaussianVaeConfig;
use elbo::objective::{ElboObjective, Objective};
use elbo::train::{FitConfig, fit};

const USAGE: &str =
    "usage: gaussian_vae [--data DIR] [--epochs N] [--batch-size N] [--latent N] [--lr X]
       [--seed N] [--k N] [--test-count N] [--iwae K] [--beta X] [--warmup STEPS] [--free-bits X]
       [--out DIR] [--checkpoint DIR] [--resume] [--device flex|wgpu]
defaults: --data ../shared/data/mnist-10k --epochs 10 --batch-size 128 --latent 20 --lr 1e-3
          --seed 0 --k 1000 --test-count 2000 --out out/gaussian_vae (ELBO objective, beta 1, no warm-up)";

struct Args {
    data: PathBuf,
    epochs: usize,
    batch_size: usize,
    latent: usize,
    lr: f64,
    seed: u64,
    k: usize,
    test_count: usize,
    iwae: Option<usize>,
    beta: f64,
    warmup: usize,
    free_bits: f64,
    out: PathBuf,
    checkpoint: Option<PathBuf>,
    resume: bool,
    device: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        data: PathBuf::from("../shared/data/mnist-10k"),
        epochs: 10,
        batch_size: 128,
        latent: 20,
        lr: 1e-3,
        seed: 0,
        k: 1000,
        test_count: 2000,
        iwae: None,
        beta: 1.0,
        warmup: 0,
        free_bits: 0.0,
        out: PathBuf::from("out/gaussian_vae"),
        checkpoint: None,
        resume: false,
        device: "flex".into(),
    };
    let mut flags = common::Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--help" | "-h" => return Err(String::new()),
            "--resume" => args.resume = true,
            "--data" => args.data = flags.value(&flag)?,
            "--epochs" => args.epochs = flags.value(&flag)?,
            "--batch-size" => args.batch_size = flags.value(&flag)?,
            "--latent" => args.latent = flags.value(&flag)?,
            "--lr" => args.lr = flags.value(&flag)?,
            "--seed" => args.seed = flags.value(&flag)?,
            "--k" => args.k = flags.value(&flag)?,
            "--test-count" => args.test_count = flags.value(&flag)?,
            "--iwae" => args.iwae = Some(flags.value(&flag)?),
            "--beta" => args.beta = flags.value(&flag)?,
            "--warmup" => args.warmup = flags.value(&flag)?,
            "--free-bits" => args.free_bits = flags.value(&flag)?,
            "--out" => args.out = flags.value(&flag)?,
            "--checkpoint" => args.checkpoint = Some(flags.value(&flag)?),
            "--device" => args.device = flags.value(&flag)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

fn main() {
    common::main_with(USAGE, parse_args, run);
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let device = common::device(&args.device)?;
    let (train, test) = common::load_mnist(&args.data)?;
    let (h, w) = (train.rows, train.cols);
    println!(
        "data: {} training images ({h}×{w}, dynamically binarised), {} test images (fixed binarisation), device {}",
        train.count, test.count, args.device
    );

    let config = GaussianVaeConfig::new(train.dim(), args.latent);
    let model = config.init(&device)?;
    let mut fit_config = FitConfig::new(args.epochs, args.batch_size);
    fit_config.learning_rate = args.lr;
    fit_config.seed = args.seed;
    fit_config.log_epochs = true;
    fit_config.checkpoint_dir = args.checkpoint.clone();
    fit_config.resume = args.resume;
    fit_config.objective = match args.iwae {
        Some(k) => Objective::Iwae { k },
        None => Objective::Elbo(ElboObjective {
            beta: args.beta,
            free_bits: args.free_bits,
            warmup_steps: args.warmup,
            ..ElboObjective::default()
        }),
    };
    device.seed(args.seed);
    let started = Instant::now();
    let data = ImageData::new(train, Binarization::Dynamic);
    let (model, _history) = fit(model, &config, &data, &fit_config, &device)?;
    let train_seconds = started.elapsed().as_secs_f64();
    println!("trained {} epochs in {train_seconds:.1} s", args.epochs);

    let model = model.valid();
    let x_test = common::elbo_and_pictures(&model, &test, &args.out, args.seed, &device)?;
    let mut paths = Vec::new();
    for i in 0..8 {
        let a = x_test.clone().narrow(0, 2 * i, 1);
        let b = x_test.clone().narrow(0, 2 * i + 1, 1);
        paths.push(model.interpolate(&a, &b, 10)?);
    }
    let paths = burn::tensor::Tensor::cat(paths, 0);
    elbo::image::save_interpolations(args.out.join("interpolation.png"), paths, h, w, 10)?;
    println!(
        "wrote samples.png, reconstructions.png, interpolation.png to {}",
        args.out.display()
    );

    // The NLL on the first `--test-count` test images (all 2000 by default).
    let n_test = args.test_count.clamp(1, x_test.dims()[0]);
    common::report_nll(&model, &x_test.narrow(0, 0, n_test), args.k)
}
