//! Trains the classic Gaussian VAE (784-400-20, ReLU, Bernoulli logits) on MNIST-format
//! data with dynamic binarisation, then reports the importance-sampled test NLL on the fixed
//! binarised test file and writes sample, reconstruction and interpolation grids.
//!
//! ```text
//! cargo run --release --example gaussian_vae -- [--data DIR] [--epochs N] [--latent N] ...
//! cargo run --release --example gaussian_vae -- --help
//! ```
//! `--data` defaults to the repository's `data/mnist-10k`; the folder must hold the four
//! MNIST files (`elbo::data::Mnist::FILES`), and the NLL is estimated on its fixed
//! binarisation of the test images where it has one. The last line printed is
//! `test NLL (K=<k>): <x> nats (± <se>)`.

mod common;

use std::path::PathBuf;

use clap::Parser;
use elbo::data::{Binarization, ImageData};
use elbo::models::GaussianVaeConfig;
use elbo::objective::{ElboObjective, LikelihoodConfig, Objective};
use elbo::train::FitConfig;

/// Trains the 784-400-20 Gaussian VAE on MNIST-format data, then reports the
/// importance-sampled test NLL and writes sample, reconstruction and interpolation grids.
#[derive(Parser)]
#[command(name = "gaussian_vae")]
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
    /// Latent dimensions.
    #[arg(long, default_value_t = 20)]
    latent: usize,
    /// Hidden widths of the encoder MLP, comma-separated (the decoder mirrors them).
    #[arg(long, value_delimiter = ',', default_value = "400")]
    hidden: Vec<usize>,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed of the initial weights, the batches and the evaluation draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Importance samples per test image for the NLL.
    #[arg(long, default_value_t = 1000)]
    k: usize,
    /// Test images the NLL is estimated on (the first N).
    #[arg(long, default_value_t = 2000)]
    test_count: usize,
    /// Train on the IWAE bound with K samples instead of the ELBO.
    #[arg(long, value_name = "K", conflicts_with_all = ["dreg", "stl"])]
    iwae: Option<usize>,
    /// Train on the IWAE bound with K samples and the doubly reparameterised gradient.
    #[arg(long, value_name = "K", conflicts_with = "stl")]
    dreg: Option<usize>,
    /// Train on the ELBO with the "sticking the landing" gradient (sampled KL).
    #[arg(long)]
    stl: bool,
    /// Weight of the KL term (β-VAE).
    #[arg(long, default_value_t = 1.0)]
    beta: f64,
    /// Steps over which the KL weight rises linearly from 0 to β.
    #[arg(long, value_name = "STEPS", default_value_t = 0)]
    warmup: usize,
    /// Free bits: nats of KL per latent group that cost nothing.
    #[arg(long, default_value_t = 0.0)]
    free_bits: f64,
    /// Folder for the picture grids.
    #[arg(long, value_name = "DIR", default_value = "out/gaussian_vae")]
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
    let test = mnist.binarized_test();
    let train = mnist.train;
    let (h, w) = (train.rows, train.cols);
    let grid = elbo::image::GridImage::of(&train);
    println!(
        "data: {} training images ({h}×{w}, dynamically binarised), {} test images (fixed binarisation), device {}",
        train.count, test.count, args.device
    );

    let config = GaussianVaeConfig::new(train.dim(), args.latent).with_hidden(args.hidden.clone());
    // The initial weights from --seed (the device's stream is drawn from the entropy of
    // the process until it is seeded).
    device.seed(args.seed);
    let model = config.init(&device)?;
    let mut fit_config = FitConfig::new(args.epochs, args.batch_size);
    fit_config.learning_rate = args.lr;
    fit_config.seed = args.seed;
    fit_config.log_epochs = true;
    fit_config.checkpoint_dir = args.checkpoint.clone();
    fit_config.resume = args.resume;
    fit_config.objective = match (args.iwae, args.dreg, args.stl) {
        (Some(k), _, _) => Objective::Iwae { k },
        (_, Some(k), _) => Objective::Dreg { k },
        (_, _, true) => Objective::Stl,
        _ => Objective::Elbo(ElboObjective {
            beta: args.beta,
            free_bits: args.free_bits,
            warmup_steps: args.warmup,
            ..ElboObjective::default()
        }),
    };
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
    let mut paths = Vec::new();
    for i in 0..8 {
        let a = x_test.clone().narrow(0, 2 * i, 1);
        let b = x_test.clone().narrow(0, 2 * i + 1, 1);
        paths.push(model.interpolate(&a, &b, 10)?);
    }
    let paths = burn::tensor::Tensor::cat(paths, 0);
    elbo::image::save_interpolations(args.out.join("interpolation.png"), paths, grid, 10)?;
    println!(
        "wrote samples.png, reconstructions.png, interpolation.png to {}",
        args.out.display()
    );

    // The NLL on the first `--test-count` test images (all 2000 by default).
    let n_test = args.test_count.clamp(1, x_test.dims()[0]);
    common::report::report_nll(
        &model,
        &x_test.narrow(0, 0, n_test),
        &LikelihoodConfig::new(args.k),
        1,
        &args.out,
    )
}
