//! Trains the vMF-VAE (hyperspherical latents, uniform prior; Davidson et al. 2018) on
//! MNIST-format data with the same MLPs as the Gaussian example, then reports the
//! importance-sampled test NLL on the fixed binarised test file and writes sample and
//! reconstruction grids.
//!
//! ```text
//! cargo run --release --example vmf_vae -- [--latent N] [--kappa learned|X] ...
//! cargo run --release --example vmf_vae -- --help
//! ```
//! `--data` defaults to the repository's `data/mnist-10k`. `--latent`
//! is the ambient dimension `d` of the sphere `S^{d−1}` (at least 2). The last line printed
//! is `test NLL (K=<k>): <x> nats (± <se>)`.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use clap::Parser;
use elbo::data::{Binarization, ImageData};
use elbo::models::{VmfKappa, VmfVaeConfig};
use elbo::train::{FitConfig, fit};

/// Trains the vMF-VAE (latents on the unit sphere, uniform prior) on MNIST-format data,
/// then reports the importance-sampled test NLL and writes sample and reconstruction grids.
#[derive(Parser)]
#[command(name = "vmf_vae")]
struct Args {
    /// MNIST-format data folder.
    #[arg(long, value_name = "DIR", default_value_os_t = common::data::default_mnist_dir())]
    data: PathBuf,
    /// Training epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Images per training batch.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Ambient dimension d of the latent sphere S^{d−1}.
    #[arg(long, default_value_t = 10)]
    latent: usize,
    /// The concentration: `learned` (one per example, from the encoder) or a fixed κ > 0.
    #[arg(long, value_name = "learned|X", default_value = "learned", value_parser = kappa)]
    kappa: VmfKappa,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed of the initial weights, the batches and the evaluation draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Importance samples per test image for the NLL.
    #[arg(long, default_value_t = 1000)]
    k: usize,
    /// Folder for the picture grids.
    #[arg(long, value_name = "DIR", default_value = "out/vmf_vae")]
    out: PathBuf,
    /// Device: flex, wgpu[:N] or cuda[:N] (the last two with their cargo features).
    #[arg(long, default_value = elbo::device::DEFAULT_NAME)]
    device: String,
}

/// `learned` or a number (the config checks that it is positive).
fn kappa(value: &str) -> Result<VmfKappa, String> {
    match value {
        "learned" => Ok(VmfKappa::Learned),
        v => v
            .parse()
            .map(VmfKappa::Fixed)
            .map_err(|e| format!("{v}: {e}; use learned or a number")),
    }
}

fn main() {
    common::main_with(run);
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let device = common::device(&args.device)?;
    let mnist = common::data::load_mnist(&args.data)?;
    let test = mnist.binarized_test();
    let train = mnist.train;
    println!(
        "data: {} training images, {} test images; latents on S^{} (kappa {:?})",
        train.count,
        test.count,
        args.latent.saturating_sub(1),
        args.kappa
    );

    let config = VmfVaeConfig::new(train.dim(), args.latent).with_kappa(args.kappa);
    let model = config.init(&device)?;
    let mut fit_config = FitConfig::new(args.epochs, args.batch_size);
    fit_config.learning_rate = args.lr;
    fit_config.seed = args.seed;
    fit_config.log_epochs = true;
    device.seed(args.seed);
    let started = Instant::now();
    let data = ImageData::new(train, Binarization::Dynamic);
    let (model, _history) = fit(model, &config, &data, &fit_config, &device)?;
    println!(
        "trained {} epochs in {:.1} s",
        args.epochs,
        started.elapsed().as_secs_f64()
    );

    let model = model.valid();
    let x_test = common::report::elbo_and_pictures(&model, &test, &args.out, args.seed, &device)?;
    println!(
        "wrote samples.png, reconstructions.png to {}",
        args.out.display()
    );
    common::report::report_nll(&model, &x_test, args.k)
}
