//! Colour images: trains the conv VAE or NVAE (both with a discretised-logistic output) or
//! DDPM on 32×32 RGB images in the CIFAR-10 binary format (the repository's emoji-32 by
//! default, CIFAR-10 itself with `--data`), then reports the test likelihood in bits/dim
//! and writes colour sample and reconstruction grids.
//!
//! ```text
//! cargo run --release --example emoji -- conv-vae [--epochs N] [--k K] ...
//! cargo run --release --example emoji -- nvae [--epochs N] ...
//! cargo run --release --example emoji -- ddpm [--epochs N] ...
//! cargo run --release --example emoji -- --help
//! ```
//! The data are the 8-bit levels `k/255` (`Binarization::Grey`); the VAEs' likelihood is
//! a discrete distribution over those 256 levels, so their NLL in bits/dim needs no
//! dequantisation correction; DDPM scales them to [−1, 1] and its last step is the
//! discretised Gaussian; its bound is estimated over random steps, uniform and from Nichol
//! & Dhariwal's proposal (`Ddpm::vlb_proposal`), with the standard error of each. The last line printed is `test NLL (K=<k>): <x> bits/dim (± <se>)`
//! for the VAEs and `test bound: <x> bits/dim (± <se>)` for DDPM.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::config::Config;
use burn::module::{Module, ModuleDisplay};
use burn::tensor::{Device, Tensor};
use clap::{Args as ClapArgs, Parser, Subcommand};
use elbo::LatentVariableModel;
use elbo::data::{Binarization, Cifar, ImageData, Images};
use elbo::distributions::PixelLikelihood;
use elbo::image::GridImage;
use elbo::models::ConvVaeConfig;
use elbo::models::ddpm::DdpmConfig;
use elbo::models::nvae::NvaeConfig;
use elbo::nn::UNetConfig;
use elbo::objective::{
    ElboObjective, LikelihoodConfig, Objective, bits_per_dim, elbo_estimate, log_likelihood,
};
use elbo::train::{FitConfig, LrSchedule, OptimizerKind};

/// Trains a conv VAE, an NVAE or a DDPM on 32×32 RGB images in the CIFAR-10 binary format
/// and reports the test likelihood in bits/dim, with colour picture grids.
#[derive(Parser)]
#[command(name = "emoji")]
struct Cli {
    #[command(subcommand)]
    model: Model,
}

#[derive(Subcommand)]
enum Model {
    /// The conv VAE (`ConvVaeConfig::emoji()`: 32/64/128 channels, latent 64, 5 logistics).
    ConvVae {
        #[command(flatten)]
        run: RunArgs,
        /// Importance samples per test image for the NLL.
        #[arg(long, default_value_t = 1000)]
        k: usize,
    },
    /// An NVAE (2 scales × 2 groups of 8 latent maps, 32 channels, 5 logistics).
    Nvae {
        #[command(flatten)]
        run: RunArgs,
        /// Importance samples per test image for the NLL.
        #[arg(long, default_value_t = 100)]
        k: usize,
    },
    /// DDPM (T = 1000, ε-prediction, a three-level U-Net at base width 32).
    Ddpm {
        #[command(flatten)]
        run: RunArgs,
        /// Random time steps per test image for the bound.
        #[arg(long, default_value_t = 32)]
        vlb_steps: usize,
        /// Steps of the DDIM sampler for the sample grid.
        #[arg(long, default_value_t = 100)]
        ddim_steps: usize,
        /// Decay of the weight average sampled from (0 turns it off). The average starts
        /// at the initial weights, which keep a share d^steps of it: 0.995 leaves 5e-4
        /// after 30 epochs (1,530 steps), 0.999 would leave 22 % and sample noise.
        #[arg(long, value_name = "D", default_value_t = 0.995)]
        ema: f64,
    },
}

/// The flags every model takes.
#[derive(ClapArgs)]
struct RunArgs {
    /// CIFAR-10-format data folder (`data_batch_*.bin[.gz]`, `test_batch.bin[.gz]`).
    #[arg(long, value_name = "DIR", default_value_os_t = common::data::default_emoji_dir())]
    data: PathBuf,
    /// Training epochs.
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    /// Images per training batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Seed of the initial weights, the batches and the evaluation draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Test images the likelihood is estimated on (the first N).
    #[arg(long, default_value_t = 300)]
    test_count: usize,
    /// Folder for the picture grids (a subfolder per model).
    #[arg(long, value_name = "DIR", default_value = "out/emoji")]
    out: PathBuf,
    /// Device: flex, wgpu[:N] or cuda[:N] (the last two with their cargo features).
    #[arg(long, default_value = elbo::device::DEFAULT_NAME)]
    device: String,
    #[command(flatten)]
    learner: common::learner::LearnerArgs,
}

fn main() {
    common::main_with(|cli: Cli| match cli.model {
        Model::ConvVae { run, k } => conv_vae(run, k),
        Model::Nvae { run, k } => nvae(run, k),
        Model::Ddpm {
            run,
            vlb_steps,
            ddim_steps,
            ema,
        } => ddpm(run, vlb_steps, ddim_steps, ema),
    });
}

/// The loaded data, the device and the output folder of one run.
struct Setup {
    train: Images,
    /// The test images, and as a tensor of levels.
    test_images: Images,
    test: Tensor<2>,
    grid: GridImage,
    device: Device,
    out: PathBuf,
}

fn setup(run: &RunArgs, model: &str) -> Result<Setup, Box<dyn std::error::Error>> {
    let device = common::device(&run.device)?;
    let Cifar { train, test, .. } = common::data::load_cifar(&run.data)?;
    let test = test.slice(0, run.test_count.clamp(1, test.count))?;
    println!(
        "data: {} training images, {} test images ({}×{}×{}, 8-bit), device {}",
        train.count, test.count, train.channels, train.rows, train.cols, run.device
    );
    let out = run.out.join(model);
    std::fs::create_dir_all(&out)?;
    // The initial weights from --seed (the device's stream is drawn from the entropy of
    // the process until it is seeded).
    device.seed(run.seed);
    Ok(Setup {
        grid: GridImage::of(&train),
        test: test.to_tensor(test.unit(), &device)?,
        test_images: test,
        train,
        device,
        out,
    })
}

/// Trains `model` on the 8-bit levels of the training images (with `fit`, or burn-train's
/// Learner under `--devices`, which evaluates the test images after every epoch).
fn train<M, C>(
    model: M,
    config: &C,
    s: &Setup,
    run: &RunArgs,
    fit_config: &FitConfig,
) -> Result<M, elbo::Error>
where
    M: Module + ModuleDisplay + LatentVariableModel<Input = Tensor<2>> + 'static,
    C: Config,
{
    let data = ImageData::new(s.train.clone(), Binarization::Grey);
    let valid = ImageData::new(s.test_images.clone(), Binarization::Grey);
    run.learner.fit(
        model,
        config,
        (data, valid),
        fit_config,
        &s.device,
        &run.device,
    )
}

/// Writes `reconstructions.png`: the first (up to) 32 test images beside `reconstruct`'s
/// output for them.
fn save_reconstructions(
    s: &Setup,
    reconstruct: impl FnOnce(&Tensor<2>) -> Result<Tensor<2>, elbo::Error>,
) -> Result<(), elbo::Error> {
    let originals = s.test.clone().narrow(0, 0, s.test.dims()[0].min(32));
    let recon = reconstruct(&originals)?;
    elbo::image::save_reconstructions(
        s.out.join("reconstructions.png"),
        originals,
        recon,
        s.grid,
        4,
    )
}

/// Prints the test −ELBO and the importance-sampled NLL, both in nats and bits/dim.
fn report_likelihood<M: LatentVariableModel<Input = Tensor<2>>>(
    model: &M,
    x: &Tensor<2>,
    k: usize,
    seed: u64,
    device: &Device,
) -> Result<(), Box<dyn std::error::Error>> {
    let [n, d] = x.dims();
    device.seed(seed.wrapping_add(2));
    let elbo = elbo_estimate(model, x, 50)?;
    println!(
        "test -ELBO (1 sample, {n} images): {:.2} nats = {:.4} bits/dim",
        -elbo.mean,
        bits_per_dim(-elbo.mean, d)
    );
    let started = Instant::now();
    let config = LikelihoodConfig::new(k)
        .with_example_chunk(10)
        .with_sample_chunk(50);
    let ll = log_likelihood(model, x, &config)?;
    println!(
        "evaluated {n} test images at K={k} in {:.1} s; NLL {:.2} nats (± {:.2})",
        started.elapsed().as_secs_f64(),
        -ll.mean,
        ll.std_error
    );
    println!(
        "test NLL (K={k}): {:.4} bits/dim (± {:.4})",
        bits_per_dim(-ll.mean, d),
        bits_per_dim(ll.std_error, d)
    );
    Ok(())
}

fn fit_config(run: &RunArgs) -> FitConfig {
    let mut fit_config = FitConfig::new(run.epochs, run.batch_size);
    fit_config.learning_rate = run.lr;
    fit_config.seed = run.seed;
    fit_config.log_epochs = true;
    fit_config.lr_schedule = LrSchedule::Cosine {
        min_lr: run.lr / 20.0,
    };
    fit_config
}

fn wrote(out: &Path, files: &str) {
    println!("wrote {files} to {}", out.display());
}

fn conv_vae(run: RunArgs, k: usize) -> Result<(), Box<dyn std::error::Error>> {
    let s = setup(&run, "conv_vae")?;
    let mut config = ConvVaeConfig::emoji();
    (config.image_channels, config.height, config.width) =
        (s.train.channels, s.train.rows, s.train.cols);
    let model = config.init(&s.device)?;
    println!(
        "conv VAE: channels {:?}, latent {}, {:?} ({} parameters)",
        config.channels,
        config.latent_dim,
        config.likelihood,
        model.num_params()
    );
    let model = train(model, &config, &s, &run, &fit_config(&run))?;
    save_reconstructions(&s, |x| model.reconstruct(x))?;
    elbo::image::save_grid(
        s.out.join("samples.png"),
        model.generate(64, &s.device),
        s.grid,
        8,
    )?;
    wrote(
        &s.out,
        "reconstructions.png, samples.png (likelihood means)",
    );
    report_likelihood(&model, &s.test, k, run.seed, &s.device)
}

fn nvae(run: RunArgs, k: usize) -> Result<(), Box<dyn std::error::Error>> {
    let s = setup(&run, "nvae")?;
    let config = NvaeConfig::new(s.train.channels, s.train.rows, s.train.cols)
        .with_channels(32)
        .with_latent_channels(8)
        .with_preprocess_cells(0)
        .with_postprocess_cells(0)
        .with_likelihood(PixelLikelihood::Logistic { mixtures: 5 })
        .with_spectral_reg(1e-2)
        .with_bn_reg(1e-2);
    let model = config.init(&s.device)?;
    println!(
        "NVAE: {} latent groups of shapes {:?} (top first), {:?} ({} parameters)",
        config.groups(),
        (0..config.groups())
            .map(|l| config.group_shape(l))
            .collect::<Vec<_>>(),
        config.likelihood,
        model.num_params()
    );
    // Optimiser steps: with --devices, each step takes one batch per replica.
    let replicas = run.learner.replicas(&run.device)?;
    let steps = s.train.count.div_ceil(run.batch_size).div_ceil(replicas) * run.epochs;
    let mut fit_config = fit_config(&run);
    fit_config.optimizer = OptimizerKind::AdamW { weight_decay: 3e-4 };
    fit_config.objective = Objective::Elbo(ElboObjective {
        warmup_steps: steps * 3 / 10,
        warmup_start: 1e-4,
        kl_balancing: true,
        ..ElboObjective::default()
    });
    let model = train(model, &config, &s, &run, &fit_config)?;
    save_reconstructions(&s, |x| model.reconstruct(x))?;
    elbo::image::save_grid(
        s.out.join("samples-t1.0.png"),
        model.sample(64, 1.0, &s.device)?,
        s.grid,
        8,
    )?;
    let cold = model.clone().readjust_batch_norm(20, 64, 0.7, &s.device)?;
    elbo::image::save_grid(
        s.out.join("samples-t0.7.png"),
        cold.sample(64, 0.7, &s.device)?,
        s.grid,
        8,
    )?;
    wrote(
        &s.out,
        "reconstructions.png, samples-t1.0.png, samples-t0.7.png (likelihood means)",
    );
    report_likelihood(&model, &s.test, k, run.seed, &s.device)
}

fn ddpm(
    run: RunArgs,
    vlb_steps: usize,
    ddim_steps: usize,
    ema: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let s = setup(&run, "ddpm")?;
    let (c, h, w) = (s.train.channels, s.train.rows, s.train.cols);
    let config = DdpmConfig::new(c, h, w).with_unet(
        UNetConfig::new(c)
            .with_base_channels(32)
            .with_channel_mults(vec![1, 2, 2]),
    );
    let model = config.init(&s.device)?;
    println!(
        "DDPM: T = {}, U-Net base width {} × {:?} ({} parameters)",
        config.steps,
        config.unet.base_channels,
        config.unet.channel_mults,
        model.num_params()
    );
    let mut fit_config = fit_config(&run);
    fit_config.objective = Objective::ModelLoss;
    fit_config.grad_clip_norm = Some(1.0);
    fit_config.ema_decay = (ema > 0.0).then_some(ema);
    let model = train(model, &config, &s, &run, &fit_config)?;
    let started = Instant::now();
    let samples = model.sample_ddim(64, ddim_steps, 0.0, false, &s.device)?;
    elbo::image::save_grid(s.out.join("samples-ddim.png"), samples, s.grid, 8)?;
    wrote(
        &s.out,
        &format!(
            "samples-ddim.png ({ddim_steps} DDIM steps, η = 0, {:.1} s)",
            started.elapsed().as_secs_f64()
        ),
    );
    let d = c * h * w;
    let report = |name: &str, bound: &elbo::objective::Estimate, seconds: f64| {
        println!(
            "test bound, {name} ({} images, {vlb_steps} steps each, {seconds:.1} s): {:.1} nats (± {:.1}) = {:.4} bits/dim (± {:.4})",
            s.test.dims()[0],
            bound.mean,
            bound.std_error,
            bits_per_dim(bound.mean, d),
            bits_per_dim(bound.std_error, d)
        );
    };
    let started = Instant::now();
    let uniform = model.vlb_estimate(&s.test, vlb_steps, 50)?;
    report("uniform steps", &uniform, started.elapsed().as_secs_f64());
    // Nichol & Dhariwal's proposal from a pilot on 64 training images at 20 steps.
    let started = Instant::now();
    let pilot = s.train.slice(0, s.train.count.min(64))?;
    let pilot = pilot.to_tensor(pilot.unit(), &s.device)?;
    let proposal = model.vlb_proposal(&pilot, 20)?;
    let pilot_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let bound = model.vlb_estimate_with(&s.test, &proposal, vlb_steps, 50)?;
    report(
        &format!("steps from the proposal (pilot {pilot_seconds:.1} s)"),
        &bound,
        started.elapsed().as_secs_f64(),
    );
    println!(
        "test bound: {:.4} bits/dim (± {:.4})",
        bits_per_dim(bound.mean, d),
        bits_per_dim(bound.std_error, d)
    );
    Ok(())
}
