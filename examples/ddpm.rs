//! Trains DDPM (the small preset: T = 1000, linear schedule, ε-prediction, the reference
//! U-Net at base width 32) on 8-bit MNIST-format images scaled to [−1, 1] with `L_simple`,
//! printing the loss per epoch and keeping an average of the weights (EMA) to sample from;
//! then writes a grid of ancestral samples and one of 50-step
//! DDIM samples, and reports the test variational bound in bits/dim, estimated over random
//! time steps with its standard error.
//!
//! ```text
//! cargo run --release --example ddpm -- [--data DIR] [--epochs N] [--batch-size N] [--lr X]
//!     [--min-lr X] [--base-channels N] [--seed N] [--samples N] [--ddim-steps N] [--eta X]
//!     [--test-count N] [--vlb-steps N] [--ema D] [--out DIR] [--checkpoint DIR] [--resume]
//!     [--device flex|wgpu]
//! ```
//! `--data` defaults to `../shared/data/mnist-10k` (relative to the project root; the
//! folder must hold `train-images-idx3-ubyte.gz` and `t10k-images-idx3-ubyte.gz`). The last
//! line printed is `test bound: <x> bits/dim (± <se>)`.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use elbo::data::{Binarization, ImageData, Images};
use elbo::models::ddpm::DdpmConfig;
use elbo::objective::{Objective, bits_per_dim};
use elbo::train::{FitConfig, LrSchedule, fit};

const USAGE: &str = "usage: ddpm [--data DIR] [--epochs N] [--batch-size N] [--lr X] [--min-lr X]
       [--base-channels N] [--seed N] [--samples N] [--ddim-steps N] [--eta X] [--test-count N]
       [--vlb-steps N] [--ema D] [--out DIR] [--checkpoint DIR] [--resume] [--device flex|wgpu]
defaults: --data ../shared/data/mnist-10k --epochs 10 --batch-size 64 --lr 1e-3
          --base-channels 32 --seed 0 --samples 36 --ddim-steps 50 --eta 0 --test-count 200
          --vlb-steps 4 --ema 0.999 (0 turns the weight average off) --out out/ddpm;
          --min-lr X decays the rate from --lr to X on a cosine over all epochs (default: constant)";

struct Args {
    data: PathBuf,
    epochs: usize,
    batch_size: usize,
    lr: f64,
    min_lr: Option<f64>,
    base_channels: usize,
    seed: u64,
    samples: usize,
    ddim_steps: usize,
    eta: f64,
    test_count: usize,
    vlb_steps: usize,
    ema: f64,
    out: PathBuf,
    checkpoint: Option<PathBuf>,
    resume: bool,
    device: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        data: PathBuf::from("../shared/data/mnist-10k"),
        epochs: 10,
        batch_size: 64,
        lr: 1e-3,
        min_lr: None,
        base_channels: 32,
        seed: 0,
        samples: 36,
        ddim_steps: 50,
        eta: 0.0,
        test_count: 200,
        vlb_steps: 4,
        ema: 0.999,
        out: PathBuf::from("out/ddpm"),
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
            "--lr" => args.lr = flags.value(&flag)?,
            "--min-lr" => args.min_lr = Some(flags.value(&flag)?),
            "--base-channels" => args.base_channels = flags.value(&flag)?,
            "--seed" => args.seed = flags.value(&flag)?,
            "--samples" => args.samples = flags.value(&flag)?,
            "--ddim-steps" => args.ddim_steps = flags.value(&flag)?,
            "--eta" => args.eta = flags.value(&flag)?,
            "--test-count" => args.test_count = flags.value(&flag)?,
            "--vlb-steps" => args.vlb_steps = flags.value(&flag)?,
            "--ema" => args.ema = flags.value(&flag)?,
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
    let train = Images::load(args.data.join("train-images-idx3-ubyte.gz"))?;
    let test = Images::load(args.data.join("t10k-images-idx3-ubyte.gz"))?;
    let (h, w) = (train.rows, train.cols);
    let mut config = DdpmConfig::mnist_small();
    (config.height, config.width) = (h, w);
    config.unet.base_channels = args.base_channels;
    let model = config.init(&device)?;
    println!(
        "data: {} training images ({h}×{w}, 8-bit, scaled to [-1, 1]), {} test images, device {}; \
         DDPM T = {}, U-Net base width {} ({} parameters)",
        train.count,
        test.count,
        args.device,
        config.steps,
        args.base_channels,
        model.num_params()
    );

    let mut fit_config = FitConfig::new(args.epochs, args.batch_size);
    fit_config.learning_rate = args.lr;
    if let Some(min_lr) = args.min_lr {
        fit_config.lr_schedule = LrSchedule::Cosine { min_lr };
    }
    fit_config.seed = args.seed;
    fit_config.log_epochs = true;
    fit_config.objective = Objective::ModelLoss;
    fit_config.grad_clip_norm = Some(1.0);
    // Sample from the weight average, as DDPM does (0.9999 there; 0.999 suits short runs).
    fit_config.ema_decay = (args.ema > 0.0).then_some(args.ema);
    fit_config.checkpoint_dir = args.checkpoint.clone();
    fit_config.resume = args.resume;
    device.seed(args.seed);
    let started = Instant::now();
    let data = ImageData::new(train, Binarization::Grey);
    let (model, _history) = fit(model, &config, &data, &fit_config, &device)?;
    println!(
        "trained {} epochs in {:.1} s",
        args.epochs,
        started.elapsed().as_secs_f64()
    );
    let model = model.valid();

    std::fs::create_dir_all(&args.out)?;
    let columns = (args.samples as f64).sqrt().ceil() as usize;
    let started = Instant::now();
    let ancestral = model.sample_ancestral(args.samples, true, &device)?;
    let ancestral_seconds = started.elapsed().as_secs_f64();
    elbo::image::save_grid(
        args.out.join("samples-ancestral.png"),
        ancestral,
        h,
        w,
        columns,
    )?;
    let started = Instant::now();
    let ddim = model.sample_ddim(args.samples, args.ddim_steps, args.eta, true, &device)?;
    let ddim_seconds = started.elapsed().as_secs_f64();
    elbo::image::save_grid(args.out.join("samples-ddim.png"), ddim, h, w, columns)?;
    println!(
        "wrote samples-ancestral.png ({} steps, {ancestral_seconds:.1} s) and samples-ddim.png \
         ({} steps, η = {}, {ddim_seconds:.1} s) to {}",
        config.steps,
        args.ddim_steps,
        args.eta,
        args.out.display()
    );

    let n_test = args.test_count.clamp(1, test.count);
    let test = test.slice(0, n_test)?;
    let x_test = test.to_tensor(test.unit(), &device)?;
    let started = Instant::now();
    let bound = model.vlb_estimate(&x_test, args.vlb_steps, 100)?;
    let d = test.dim();
    println!(
        "test bound on {n_test} images ({} random steps each, {:.1} s): {:.2} nats (± {:.2})",
        args.vlb_steps,
        started.elapsed().as_secs_f64(),
        bound.mean,
        bound.std_error
    );
    println!(
        "test bound: {:.4} bits/dim (± {:.4})",
        bits_per_dim(bound.mean, d),
        bits_per_dim(bound.std_error, d)
    );
    Ok(())
}
