//! Trains a Variational Diffusion Model (Kingma et al. 2021) on 8-bit MNIST-format images
//! on its own bound (the ELBO in nats, VDM's categorical decoder over the 256 levels),
//! with a fixed or learned noise schedule and the continuous-time or `T`-step diffusion
//! loss; writes a grid of ancestral samples and reports the test bound in bits/dim over
//! the whole test file, with its standard error.
//!
//! ```text
//! cargo run --release --example vdm -- [--epochs N] [--schedule fixed|learned] [--steps T] ...
//! cargo run --release --example vdm -- --help
//! ```
//! `--data` defaults to the repository's `data/mnist-10k`. The last line printed is
//! `test bound: <x> bits/dim (± <se>)`.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use clap::Parser;
use elbo::data::{Binarization, ImageData};
use elbo::models::vdm::{DiffusionTime, GammaScheduleConfig, ScheduleKind, VdmConfig};
use elbo::objective::{bits_per_dim, elbo_estimate};
use elbo::train::{FitConfig, LrSchedule};

/// Trains a VDM on 8-bit MNIST-format images on its own bound; writes ancestral samples and
/// reports the test bound in bits/dim.
#[derive(Parser)]
#[command(name = "vdm")]
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
    /// The noise schedule: fixed (linear γ from −13.3 to 5) or learned (VDM's monotone
    /// network, 1024 units).
    #[arg(long, value_parser = ["fixed", "learned"], default_value = "fixed")]
    schedule: String,
    /// Give the U-Net VDM's Fourier features of its input (exponents 6 and 7).
    #[arg(long)]
    fourier: bool,
    /// Diffusion steps T for the discrete-time loss (default: continuous time).
    #[arg(long, value_name = "T")]
    steps: Option<usize>,
    /// Seed of the initial weights, the batches and the sampling noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images in the sample grid.
    #[arg(long, default_value_t = 36)]
    samples: usize,
    /// Ancestral sampling steps.
    #[arg(long, default_value_t = 1000)]
    sample_steps: usize,
    /// Test images the bound is estimated on (the first N; all 2000 by default).
    #[arg(long, default_value_t = 2000)]
    test_count: usize,
    /// Decay of the weight average sampled and evaluated from (0 turns it off).
    #[arg(long, value_name = "D", default_value_t = 0.999)]
    ema: f64,
    /// Folder for the picture grid.
    #[arg(long, value_name = "DIR", default_value = "out/vdm")]
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
    let kind = match args.schedule.as_str() {
        "learned" => ScheduleKind::Learned { features: 1024 },
        _ => ScheduleKind::FixedLinear,
    };
    let time = match args.steps {
        Some(steps) => DiffusionTime::Discrete { steps },
        None => DiffusionTime::Continuous,
    };
    let mut config = VdmConfig::new(1, h, w)
        .with_time(time)
        .with_schedule(GammaScheduleConfig::new().with_kind(kind));
    config.unet.base_channels = args.base_channels;
    if args.fourier {
        config.unet.fourier_exponents = vec![6, 7];
    }
    // The initial weights from --seed (the device's stream is drawn from the entropy of
    // the process until it is seeded).
    device.seed(args.seed);
    let model = config.init(&device)?;
    println!(
        "data: {} training images ({h}×{w}, 8-bit), {} test images, device {}; VDM, {} \
         schedule, {}, U-Net base width {} ({} parameters)",
        train.count,
        test.count,
        args.device,
        args.schedule,
        match time {
            DiffusionTime::Continuous => "continuous time".to_string(),
            DiffusionTime::Discrete { steps } => format!("T = {steps}"),
        },
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
    fit_config.grad_clip_norm = Some(1.0);
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
    let gammas = model.schedule.gamma_on_host(&[0.0, 0.5, 1.0], &device)?;
    println!(
        "schedule: γ(0) = {:.3}, γ(½) = {:.3}, γ(1) = {:.3}",
        gammas[0], gammas[1], gammas[2]
    );

    std::fs::create_dir_all(&args.out)?;
    let columns = (args.samples as f64).sqrt().ceil() as usize;
    let started = Instant::now();
    let samples = model.sample(args.samples, args.sample_steps, true, &device)?;
    elbo::image::save_grid(args.out.join("samples.png"), samples, grid, columns)?;
    println!(
        "wrote samples.png ({} ancestral steps, {:.1} s) to {}",
        args.sample_steps,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );

    let n_test = args.test_count.clamp(1, test.count);
    let test = test.slice(0, n_test)?;
    let x_test = test.to_tensor(test.unit(), &device)?;
    let started = Instant::now();
    device.seed(args.seed.wrapping_add(2));
    let bound = elbo_estimate(&model, &x_test, 100)?.negate();
    let d = test.dim();
    println!(
        "test bound on {n_test} images (one t and ε each, {:.1} s): {:.2} nats (± {:.2})",
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
