//! Trains the vMF-VAE (hyperspherical latents, uniform prior; Davidson et al. 2018) on
//! MNIST-format data with the same MLPs as the Gaussian example, then reports the
//! importance-sampled test NLL on the fixed binarised test file and writes sample and
//! reconstruction grids.
//!
//! ```text
//! cargo run --release --example vmf_vae -- [--latent N] [--hidden 400] [--kappa learned|learned:K0|X] ...
//! cargo run --release --example vmf_vae -- --help
//! ```
//! `--data` defaults to the repository's `data/mnist-10k`. `--latent`
//! is the ambient dimension `d` of the sphere `S^{d−1}` (at least 2). The last line printed
//! is `test NLL (K=<k>): <x> nats (± <se>)`.

mod common;

use std::path::PathBuf;

use clap::Parser;
use elbo::data::{Binarization, ImageData};
use elbo::models::{VmfKappa, VmfVaeConfig};
use elbo::objective::LikelihoodConfig;
use elbo::train::FitConfig;

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
    /// Hidden widths of the encoder MLP, comma-separated (the decoder mirrors them).
    #[arg(long, value_delimiter = ',', default_value = "400")]
    hidden: Vec<usize>,
    /// The concentration: `learned` (one per example, from the encoder, κ layer with
    /// default initialisation), `learned:K0` (learned, every example starting at κ₀ > 1)
    /// or a fixed κ > 0.
    #[arg(long, value_name = "learned|learned:K0|X", default_value = "learned", value_parser = kappa)]
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
    #[command(flatten)]
    learner: common::learner::LearnerArgs,
}

/// `learned`, `learned:K0` or a number (the config checks the ranges).
fn kappa(value: &str) -> Result<VmfKappa, String> {
    let number = |v: &str| {
        v.parse::<f64>()
            .map_err(|e| format!("{v}: {e}; use learned, learned:K0 or a number"))
    };
    match value {
        "learned" => Ok(VmfKappa::Learned),
        v => match v.strip_prefix("learned:") {
            Some(k0) => number(k0).map(VmfKappa::LearnedFrom),
            None => number(v).map(VmfKappa::Fixed),
        },
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

    let config = VmfVaeConfig::new(train.dim(), args.latent)
        .with_hidden(args.hidden.clone())
        .with_kappa(args.kappa);
    // The initial weights from --seed (the device's stream is drawn from the entropy of
    // the process until it is seeded).
    device.seed(args.seed);
    let model = config.init(&device)?;
    let mut fit_config = FitConfig::new(args.epochs, args.batch_size);
    fit_config.learning_rate = args.lr;
    fit_config.seed = args.seed;
    fit_config.log_epochs = true;
    let data = ImageData::new(train, Binarization::Dynamic);
    let valid = common::learner::binary_validation(&test);
    let model = args.learner.fit(
        model,
        &config,
        (data, valid),
        &fit_config,
        &device,
        &args.device,
    )?;
    let x_test = common::report::elbo_and_pictures(&model, &test, &args.out, args.seed, &device)?;
    let kappa = model.encode(&x_test)?.kappa();
    let mean_kappa: f32 = kappa.clone().mean().into_scalar();
    let min_kappa: f32 = kappa.clone().min().into_scalar();
    let max_kappa: f32 = kappa.max().into_scalar();
    println!(
        "test posteriors: kappa mean {mean_kappa:.2} (min {min_kappa:.2}, max {max_kappa:.2})"
    );
    println!(
        "wrote samples.png, reconstructions.png to {}",
        args.out.display()
    );
    common::report::report_nll(
        &model,
        &x_test,
        &LikelihoodConfig::new(args.k),
        1,
        &args.out,
    )
}
