//! Trains the vMF-VAE (hyperspherical latents, uniform prior; Davidson et al. 2018) on
//! MNIST-format data with the same MLPs as the Gaussian example, then reports the
//! importance-sampled test NLL on the fixed binarised test file and writes sample and
//! reconstruction grids.
//!
//! ```text
//! cargo run --release --example vmf_vae -- [--data DIR] [--epochs N] [--batch-size N]
//!     [--latent N] [--kappa learned|X] [--lr X] [--seed N] [--k N] [--out DIR]
//! ```
//! `--data` defaults to `../shared/data/mnist-10k` (relative to the project root). `--latent`
//! is the ambient dimension `d` of the sphere `S^{d−1}` (at least 2). The last line printed
//! is `test NLL (K=<k>): <x> nats (± <se>)`.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use elbo::data::{Binarization, ImageData};
use elbo::models::{VmfKappa, VmfVaeConfig};
use elbo::train::{FitConfig, fit};

const USAGE: &str = "usage: vmf_vae [--data DIR] [--epochs N] [--batch-size N] [--latent N]
       [--kappa learned|X] [--lr X] [--seed N] [--k N] [--out DIR]
defaults: --data ../shared/data/mnist-10k --epochs 10 --batch-size 128 --latent 10
          --kappa learned --lr 1e-3 --seed 0 --k 1000 --out out/vmf_vae";

struct Args {
    data: PathBuf,
    epochs: usize,
    batch_size: usize,
    latent: usize,
    kappa: VmfKappa,
    lr: f64,
    seed: u64,
    k: usize,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        data: PathBuf::from("../shared/data/mnist-10k"),
        epochs: 10,
        batch_size: 128,
        latent: 10,
        kappa: VmfKappa::Learned,
        lr: 1e-3,
        seed: 0,
        k: 1000,
        out: PathBuf::from("out/vmf_vae"),
    };
    let mut flags = common::Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--help" | "-h" => return Err(String::new()),
            "--data" => args.data = flags.value(&flag)?,
            "--epochs" => args.epochs = flags.value(&flag)?,
            "--batch-size" => args.batch_size = flags.value(&flag)?,
            "--latent" => args.latent = flags.value(&flag)?,
            "--kappa" => {
                let value: String = flags.value(&flag)?;
                args.kappa = match value.as_str() {
                    "learned" => VmfKappa::Learned,
                    v => VmfKappa::Fixed(v.parse().map_err(|e| format!("{flag} {v}: {e}"))?),
                }
            }
            "--lr" => args.lr = flags.value(&flag)?,
            "--seed" => args.seed = flags.value(&flag)?,
            "--k" => args.k = flags.value(&flag)?,
            "--out" => args.out = flags.value(&flag)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

fn main() {
    common::main_with(USAGE, parse_args, run);
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex();
    let (train, test) = common::load_mnist(&args.data)?;
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
    let x_test = common::elbo_and_pictures(&model, &test, &args.out, args.seed, &device)?;
    println!(
        "wrote samples.png, reconstructions.png to {}",
        args.out.display()
    );
    common::report_nll(&model, &x_test, args.k)
}
