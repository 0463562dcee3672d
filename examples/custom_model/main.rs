//! Your own networks, end to end: a convolutional encoder trunk and a learned-variance
//! Gaussian decoder written in `model.rs` against elbo's `Encoder` and `Decoder` traits,
//! plugged into `Vae` with elbo's Gaussian head and standard-normal prior, trained with
//! `fit` on dequantised 8-bit images, evaluated by importance sampling; then, in a second
//! run, restored from the checkpoint folder and sampled.
//!
//! ```text
//! cargo run --release --example custom_model -- train [--epochs N] [--data DIR] ...
//! cargo run --release --example custom_model -- sample [--checkpoint DIR] [--out DIR]
//! ```
//! `train` prints the test NLL of the continuous density in nats and, from it, the 8-bit
//! bits/dim (`(−log p(x) + D ln 256) / (D ln 2)`, a bound on the discrete data's); its last
//! line is `test bits/dim (K=<k>): <x> (± <se>)`. `sample` writes `samples.png` and
//! `reconstructions.png`.

#[path = "../common/mod.rs"]
mod common;
mod model;

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use clap::{Parser, Subcommand};
use elbo::objective::{LikelihoodConfig, log_likelihood};
use elbo::train::{FitConfig, fit, restore};
use model::{CustomVaeConfig, Dequantized, bits_per_dim_8bit};
use rand::SeedableRng;

/// A VAE of your own networks on MNIST-format data: train it, or sample a trained one.
#[derive(Parser)]
#[command(name = "custom_model")]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// Checkpoint folder: `train` writes it, `sample` reads it.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "out/custom_model/checkpoint",
        global = true
    )]
    checkpoint: PathBuf,
    /// Device: flex, wgpu[:N] or cuda[:N] (the last two with their cargo features).
    #[arg(long, default_value = elbo::device::DEFAULT_NAME, global = true)]
    device: String,
}

#[derive(Subcommand)]
enum Command {
    /// Train on the data's training images, report the test NLL, checkpoint every epoch.
    Train {
        /// MNIST-format data folder.
        #[arg(long, value_name = "DIR", default_value_os_t = common::data::default_mnist_dir())]
        data: PathBuf,
        /// Training epochs.
        #[arg(long, default_value_t = 10)]
        epochs: usize,
        /// Images per training batch.
        #[arg(long, default_value_t = 128)]
        batch_size: usize,
        /// Latent dimensions.
        #[arg(long, default_value_t = 16)]
        latent: usize,
        /// Importance samples per test image.
        #[arg(long, default_value_t = 200)]
        k: usize,
        /// Test images the NLL is estimated on (the first N).
        #[arg(long, default_value_t = 2000)]
        test_count: usize,
        /// Seed of the weights, the batches, the dequantisation and the evaluation.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Restore the model from --checkpoint and write sample and reconstruction grids.
    Sample {
        /// MNIST-format data folder (for the reconstructions' inputs).
        #[arg(long, value_name = "DIR", default_value_os_t = common::data::default_mnist_dir())]
        data: PathBuf,
        /// Folder for the grids.
        #[arg(long, value_name = "DIR", default_value = "out/custom_model")]
        out: PathBuf,
        /// Seed of the prior draws.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() {
    common::main_with(run);
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let device = common::device(&args.device)?;
    match args.command {
        Command::Train {
            data,
            epochs,
            batch_size,
            latent,
            k,
            test_count,
            seed,
        } => {
            let mnist = common::data::load_mnist(&data)?;
            let (train, test) = (mnist.train, mnist.test);
            let config = CustomVaeConfig::new(train.channels, train.rows).with_latent(latent);
            if train.rows != train.cols {
                return Err(
                    format!("square images only, not {}×{}", train.rows, train.cols).into(),
                );
            }
            device.seed(seed);
            let model = config.init(&device)?;
            println!(
                "data: {} training and {} test images ({}×{}, dequantised 8-bit); custom VAE, \
                 latent {latent}, {} parameters",
                train.count,
                test.count,
                train.rows,
                train.cols,
                model.num_params()
            );
            let mut fit_config = FitConfig::new(epochs, batch_size);
            fit_config.seed = seed;
            fit_config.log_epochs = true;
            fit_config.checkpoint_dir = Some(args.checkpoint.clone());
            let started = Instant::now();
            let (model, _) = fit(model, &config, &Dequantized(train), &fit_config, &device)?;
            println!(
                "trained {epochs} epochs in {:.1} s",
                started.elapsed().as_secs_f64()
            );

            let model = model.valid();
            let n = test_count.clamp(1, test.count);
            let test = Dequantized(test.slice(0, n)?);
            let x = test.tensor(&mut rand::rngs::StdRng::seed_from_u64(seed + 1), &device)?;
            let started = Instant::now();
            let ll = log_likelihood(&model, &x, &LikelihoodConfig::new(k))?;
            let d = test.0.dim();
            println!(
                "evaluated {n} test images at K={k} in {:.1} s; test NLL of the continuous \
                 density: {:.2} nats (± {:.2})",
                started.elapsed().as_secs_f64(),
                -ll.mean,
                ll.std_error
            );
            println!("checkpoints in {}", args.checkpoint.display());
            println!(
                "test bits/dim (K={k}): {:.4} (± {:.4})",
                bits_per_dim_8bit(ll.mean, d),
                ll.std_error / (d as f64 * std::f64::consts::LN_2)
            );
        }
        Command::Sample { data, out, seed } => {
            let (model, config) = restore::<CustomVaeConfig>(&args.checkpoint, &device)?;
            println!(
                "restored a custom VAE (latent {}, width {}) from {}",
                config.latent,
                config.width,
                args.checkpoint.display()
            );
            let test = common::data::load_mnist(&data)?.test;
            let grid = elbo::image::GridImage::of(&test);
            std::fs::create_dir_all(&out)?;
            device.seed(seed);
            elbo::image::save_grid(
                out.join("samples.png"),
                model.generate(64, &device),
                grid,
                8,
            )?;
            let originals = test.slice(0, 32)?;
            let x = originals.to_tensor(originals.unit(), &device)?;
            let recon = model.reconstruct(&x)?;
            elbo::image::save_reconstructions(out.join("reconstructions.png"), x, recon, grid, 4)?;
            println!(
                "wrote samples.png and reconstructions.png to {}",
                out.display()
            );
        }
    }
    Ok(())
}
