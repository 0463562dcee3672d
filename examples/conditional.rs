//! Generation with a condition: trains a conditional VAE or a conditional DDPM (label
//! dropout, classifier-free guidance) on MNIST-format images with their class labels,
//! writes a grid with one row per class, and scores the samples with a classifier trained
//! here on the same data (the crate's variational information bottleneck): the fraction of
//! samples whose predicted class is the class asked for.
//!
//! ```text
//! cargo run --release --example conditional -- vae [--epochs N] [--per-class N] ...
//! cargo run --release --example conditional -- ddpm [--epochs N] [--guidance 0,2] ...
//! cargo run --release --example conditional -- --help
//! ```
//! `--data` defaults to the repository's `data/mnist-10k`. Images are grey levels in
//! `[0, 1]` (the VAE scores them by the Bernoulli likelihood's continuous relaxation; DDPM
//! maps them to [−1, 1]). The last line printed (per guidance weight for DDPM) is
//! `samples of the asked class: <x>% (<n> samples, classifier test accuracy <a>%)`.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::{Args as ClapArgs, Parser, Subcommand};
use elbo::data::{LabeledBatch, LabeledImageData, TrainData};
use elbo::models::cvae::ConditionalVaeConfig;
use elbo::models::ddpm::{ConditionalDdpmConfig, DdpmConfig};
use elbo::models::{Vib, VibConfig};
use elbo::objective::Objective;
use elbo::train::{FitConfig, fit};

/// Trains a class-conditional generative model on MNIST-format data, writes one grid row
/// per class and reports the fraction of samples a classifier assigns to the asked class.
#[derive(Parser)]
#[command(name = "conditional")]
struct Cli {
    #[command(subcommand)]
    model: Model,
}

#[derive(Subcommand)]
enum Model {
    /// The conditional VAE (784+10 → 400 → `--latent`, and back: `ConditionalVaeConfig`).
    Vae {
        #[command(flatten)]
        run: RunArgs,
        /// Latent dimensions (4: a small latent leaves the class to the label; at 20, 50
        /// epochs' prior samples fall off the posterior's region and fewer are legible).
        #[arg(long, default_value_t = 4)]
        latent: usize,
    },
    /// The conditional DDPM (T = 1000, the small MNIST U-Net with a label embedding,
    /// label dropout `--p-uncond`), sampled by DDIM at each `--guidance` weight.
    Ddpm {
        #[command(flatten)]
        run: RunArgs,
        /// The U-Net's base width.
        #[arg(long, default_value_t = 32)]
        base_channels: usize,
        /// Probability that training drops a label (the null label).
        #[arg(long, default_value_t = 0.1)]
        p_uncond: f64,
        /// Guidance weights w to sample at (comma-separated; 0 is the conditional model).
        #[arg(long, value_delimiter = ',', default_value = "0,2")]
        guidance: Vec<f64>,
        /// Steps of the DDIM sampler.
        #[arg(long, default_value_t = 50)]
        ddim_steps: usize,
        /// Decay of the weight average sampled from (0 turns it off). The average starts
        /// at the initial weights, which keep a share d^steps of it: 0.995 leaves 4e-6
        /// after 10 epochs (2,500 steps), 0.999 would leave 8 %.
        #[arg(long, value_name = "D", default_value_t = 0.995)]
        ema: f64,
    },
}

/// The flags every model takes.
#[derive(ClapArgs)]
struct RunArgs {
    /// MNIST-format data folder.
    #[arg(long, value_name = "DIR", default_value_os_t = common::data::default_mnist_dir())]
    data: PathBuf,
    /// Training epochs of the generative model (default: 50 for the VAE, 10 for DDPM).
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per training batch (default: 128 for the VAE, 32 for DDPM).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Adam learning rate of the generative model.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Training epochs of the scoring classifier.
    #[arg(long, default_value_t = 8)]
    classifier_epochs: usize,
    /// Samples per class that are scored (the grid shows the first 10 of each).
    #[arg(long, default_value_t = 100)]
    per_class: usize,
    /// Seed of the initial weights, the batches and the samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the picture grid.
    #[arg(long, value_name = "DIR", default_value = "out/conditional")]
    out: PathBuf,
    /// Device: flex, wgpu[:N] or cuda[:N] (the last two with their cargo features).
    #[arg(long, default_value = elbo::device::DEFAULT_NAME)]
    device: String,
    #[command(flatten)]
    learner: common::learner::LearnerArgs,
}

fn main() {
    common::main_with(|cli: Cli| match cli.model {
        Model::Vae { run, latent } => vae(run, latent),
        Model::Ddpm {
            run,
            base_channels,
            p_uncond,
            guidance,
            ddim_steps,
            ema,
        } => ddpm(run, base_channels, p_uncond, &guidance, ddim_steps, ema),
    });
}

const CLASSES: usize = 10;

/// The labelled training and test sets.
fn load(run: &RunArgs) -> Result<(LabeledImageData, LabeledImageData), elbo::Error> {
    let mnist = common::data::load_mnist(&run.data)?;
    Ok((
        LabeledImageData::new(mnist.train, mnist.train_labels, CLASSES)?,
        LabeledImageData::new(mnist.test, mnist.test_labels, CLASSES)?,
    ))
}

/// `per_class` labels of each class, class by class: `[0, 0, .., 1, 1, .., 9]`.
fn labels_by_class(per_class: usize, device: &Device) -> Tensor<1, Int> {
    let labels: Vec<i64> = (0..CLASSES * per_class)
        .map(|i| (i / per_class) as i64)
        .collect();
    Tensor::from_data(TensorData::new(labels, [CLASSES * per_class]), device)
}

/// The scoring classifier: a VIB (784 → 512 → 64-dimensional bottleneck → softmax, β =
/// 1e-3) trained on the labelled training images; prints its test accuracy.
fn classifier(
    run: &RunArgs,
    train: &LabeledImageData,
    test: &LabeledImageData,
    device: &Device,
) -> Result<(Vib, f64), Box<dyn std::error::Error>> {
    let config = VibConfig::mnist()
        .with_hidden(vec![512])
        .with_latent_dim(64);
    let mut fit_config = FitConfig::new(run.classifier_epochs, 100);
    fit_config.seed = run.seed.wrapping_add(1);
    fit_config.objective = config.objective();
    let started = Instant::now();
    let (model, _) = fit(config.init(device)?, &config, train, &fit_config, device)?;
    let model = model.valid();
    let accuracy = model.accuracy(&test.range(0, test.len(), device)?, 12)?;
    println!(
        "classifier (VIB 784-512-64, β = 1e-3, {} epochs, {:.1} s): test accuracy {:.2}%",
        run.classifier_epochs,
        started.elapsed().as_secs_f64(),
        100.0 * accuracy
    );
    Ok((model, accuracy))
}

/// Writes the grid (the first 10 samples of each class, one row per class) and prints
/// the fraction of all samples the classifier assigns to their class.
fn score(
    run: &RunArgs,
    samples: &LabeledBatch,
    classifier: &Vib,
    accuracy: f64,
    grid_name: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&run.out)?;
    let per_class = run.per_class;
    let shown: Vec<Tensor<2>> = (0..CLASSES)
        .map(|c| {
            samples
                .x
                .clone()
                .narrow(0, c * per_class, per_class.min(10))
        })
        .collect();
    let grid = elbo::image::GridImage::new(1, 28, 28);
    let path = run.out.join(grid_name);
    elbo::image::save_grid(&path, Tensor::cat(shown, 0), grid, per_class.min(10))?;
    println!("wrote {} (one row per class, 0 at the top)", path.display());
    let asked = classifier.accuracy(samples, 12)?;
    println!(
        "samples of the asked class: {:.1}% ({} samples, classifier test accuracy {:.2}%)",
        100.0 * asked,
        samples.x.dims()[0],
        100.0 * accuracy
    );
    Ok(())
}

fn vae(run: RunArgs, latent: usize) -> Result<(), Box<dyn std::error::Error>> {
    let device = common::device(&run.device)?;
    let (train, test) = load(&run)?;
    let config = ConditionalVaeConfig::new(train.images().dim(), CLASSES, latent);
    let model = config.init(&device)?;
    println!(
        "data: {} labelled training images (grey levels in [0, 1]); conditional VAE {} + {} → {:?} → {latent} ({} parameters)",
        train.len(),
        config.input_dim,
        CLASSES,
        config.hidden,
        model.num_params()
    );
    let epochs = run.epochs.unwrap_or(50);
    let mut fit_config = FitConfig::new(epochs, run.batch_size.unwrap_or(128));
    fit_config.learning_rate = run.lr;
    fit_config.seed = run.seed;
    fit_config.log_epochs = true;
    let model = run.learner.fit(
        model,
        &config,
        (train.clone(), test.clone()),
        &fit_config,
        &device,
        &run.device,
    )?;
    let (classifier, accuracy) = classifier(&run, &train, &test, &device)?;
    device.seed(run.seed.wrapping_add(2));
    let z = model
        .prior
        .sample_for(labels_by_class(run.per_class, &device));
    let samples = model.decode_mean(&z);
    score(&run, &samples, &classifier, accuracy, "cvae-per-class.png")
}

fn ddpm(
    run: RunArgs,
    base_channels: usize,
    p_uncond: f64,
    guidance: &[f64],
    ddim_steps: usize,
    ema: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let device = common::device(&run.device)?;
    let (train, test) = load(&run)?;
    let images = train.images();
    let mut ddpm = DdpmConfig::mnist_small();
    (ddpm.height, ddpm.width) = (images.rows, images.cols);
    ddpm.unet.base_channels = base_channels;
    let config = ConditionalDdpmConfig::new(ddpm, CLASSES).with_p_uncond(p_uncond);
    let model = config.init(&device)?;
    println!(
        "data: {} labelled training images (8-bit, scaled to [-1, 1]); conditional DDPM T = {}, \
         U-Net base width {base_channels} with a {CLASSES}+1-row label embedding, label dropout {p_uncond} \
         ({} parameters)",
        train.len(),
        config.ddpm.steps,
        model.num_params()
    );
    let epochs = run.epochs.unwrap_or(10);
    let mut fit_config = FitConfig::new(epochs, run.batch_size.unwrap_or(32));
    fit_config.learning_rate = run.lr;
    fit_config.seed = run.seed;
    fit_config.log_epochs = true;
    fit_config.objective = Objective::ModelLoss;
    fit_config.grad_clip_norm = Some(1.0);
    fit_config.ema_decay = (ema > 0.0).then_some(ema);
    let model = run.learner.fit(
        model,
        &config,
        (train.clone(), test.clone()),
        &fit_config,
        &device,
        &run.device,
    )?;
    let (classifier, accuracy) = classifier(&run, &train, &test, &device)?;
    for &w in guidance {
        device.seed(run.seed.wrapping_add(2));
        let labels = labels_by_class(run.per_class, &device);
        let started = Instant::now();
        let x = model.guided(labels.clone(), w)?.sample_ddim(
            CLASSES * run.per_class,
            ddim_steps,
            0.0,
            false,
            &device,
        )?;
        println!(
            "guidance w = {w}: {} samples by {ddim_steps} DDIM steps in {:.1} s",
            CLASSES * run.per_class,
            started.elapsed().as_secs_f64()
        );
        let samples = LabeledBatch::new(x, labels)?;
        score(
            &run,
            &samples,
            &classifier,
            accuracy,
            &format!("ddpm-per-class-w{w}.png"),
        )?;
    }
    Ok(())
}
