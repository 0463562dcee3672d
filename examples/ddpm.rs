//! Trains DDPM (the small preset: T = 1000, linear schedule, ε-prediction, the reference
//! U-Net at base width 32) on 8-bit MNIST-format images scaled to [−1, 1] with `L_simple`,
//! printing the loss per epoch and keeping an average of the weights (EMA) to sample from;
//! then writes a grid of ancestral samples and one of 50-step
//! DDIM samples, and reports the test variational bound in bits/dim, estimated over random
//! time steps with its standard error.
//!
//! ```text
//! cargo run --release --example ddpm -- [--epochs N] [--batch-size N] [--ema D] ...
//! cargo run --release --example ddpm -- --help
//! ```
//! `--data` defaults to the repository's `data/mnist-10k` (the folder must hold the four
//! MNIST files, `elbo::data::Mnist::FILES`). The last line printed is
//! `test bound: <x> bits/dim (± <se>)`.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use clap::Parser;
use elbo::data::{Binarization, ImageData};
use elbo::models::ddpm::DdpmConfig;
use elbo::objective::{Objective, bits_per_dim};
use elbo::train::{FitConfig, LrSchedule};

/// Trains DDPM (T = 1000, linear schedule, ε-prediction, the reference U-Net) on 8-bit
/// MNIST-format images with L_simple, keeping a weight average to sample from; writes
/// ancestral and DDIM sample grids and reports the test bound in bits/dim.
#[derive(Parser)]
#[command(name = "ddpm")]
struct Args {
    /// MNIST-format data folder.
    #[arg(long, value_name = "DIR", default_value_os_t = common::data::default_mnist_dir())]
    data: PathBuf,
    /// Training epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Images per training batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Decay the rate from --lr to this on a cosine over all epochs (default: constant).
    #[arg(long, value_name = "X")]
    min_lr: Option<f64>,
    /// The U-Net's base width.
    #[arg(long, default_value_t = 32)]
    base_channels: usize,
    /// Seed of the initial weights, the batches and the sampling noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per sample grid.
    #[arg(long, default_value_t = 36)]
    samples: usize,
    /// Steps of the DDIM sampler.
    #[arg(long, default_value_t = 50)]
    ddim_steps: usize,
    /// DDIM's η (0: deterministic, 1: ancestral).
    #[arg(long, default_value_t = 0.0)]
    eta: f64,
    /// Test images the bound is estimated on (the first N).
    #[arg(long, default_value_t = 200)]
    test_count: usize,
    /// Random time steps per test image for the bound.
    #[arg(long, default_value_t = 4)]
    vlb_steps: usize,
    /// Decay of the weight average sampled from (0 turns it off).
    #[arg(long, value_name = "D", default_value_t = 0.999)]
    ema: f64,
    /// Folder for the picture grids.
    #[arg(long, value_name = "DIR", default_value = "out/ddpm")]
    out: PathBuf,
    /// Write a checkpoint to this folder after every epoch.
    #[arg(long, value_name = "DIR")]
    checkpoint: Option<PathBuf>,
    /// Continue from the latest checkpoint in --checkpoint.
    #[arg(long, requires = "checkpoint")]
    resume: bool,
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
    let mnist = common::data::load_mnist(&args.data)?;
    let (train, test) = (mnist.train, mnist.test);
    let (h, w) = (train.rows, train.cols);
    let grid = elbo::image::GridImage::of(&train);
    let mut config = DdpmConfig::mnist_small();
    (config.height, config.width) = (h, w);
    config.unet.base_channels = args.base_channels;
    // The initial weights from --seed (the device's stream is drawn from the entropy of
    // the process until it is seeded).
    device.seed(args.seed);
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
    let data = ImageData::new(train, Binarization::Grey);
    let valid = ImageData::new(test.clone(), Binarization::Grey);
    let model = args.learner.fit(
        model,
        &config,
        (data, valid),
        &fit_config,
        &device,
        &args.device,
    )?;

    std::fs::create_dir_all(&args.out)?;
    let columns = (args.samples as f64).sqrt().ceil() as usize;
    let started = Instant::now();
    let ancestral = model.sample_ancestral(args.samples, true, &device)?;
    let ancestral_seconds = started.elapsed().as_secs_f64();
    elbo::image::save_grid(
        args.out.join("samples-ancestral.png"),
        ancestral,
        grid,
        columns,
    )?;
    let started = Instant::now();
    let ddim = model.sample_ddim(args.samples, args.ddim_steps, args.eta, true, &device)?;
    let ddim_seconds = started.elapsed().as_secs_f64();
    elbo::image::save_grid(args.out.join("samples-ddim.png"), ddim, grid, columns)?;
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
