//! What the examples share: the entry point (flags, logger), the device flag, the data
//! folders, and (for the MNIST examples) the evaluation lines and the picture grids.

// Each example uses its own subset.
#![allow(dead_code)]

pub mod data;

use std::path::Path;
use std::time::Instant;

use burn::tensor::{Device, Tensor};
use elbo::data::Images;
use elbo::models::{BernoulliMlpDecoder, MlpEncoder, Vae};
use elbo::objective::{LikelihoodConfig, elbo_estimate, log_likelihood};
use elbo::{KlDivergence, LatentVariableModel, Posterior, PosteriorHead, Prior};

/// Runs `run` on the flags `A` parses (clap: `--help` and flag errors exit before it
/// starts). Before running, installs the logger that shows the library's reports (the fit
/// loop's epoch lines, at `info`; `RUST_LOG` changes the level) and keeps freed memory in
/// the process ([`elbo::retain_freed_memory`]), as a training program should; exits with 1
/// on a run error, printing its message.
pub fn main_with<A: clap::Parser>(run: impl FnOnce(A) -> Result<(), Box<dyn std::error::Error>>) {
    let args = A::parse();
    init_logger();
    elbo::retain_freed_memory();
    if let Err(e) = run(args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Log records as plain lines on standard output, in order with the examples' own
/// output (`info` and above unless `RUST_LOG` says otherwise); warnings and errors name
/// their level.
fn init_logger() {
    use std::io::Write;
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .target(env_logger::Target::Stdout)
        .format(|buf, record| match record.level() {
            log::Level::Info => writeln!(buf, "{}", record.args()),
            level => writeln!(buf, "{}: {}", level.as_str().to_lowercase(), record.args()),
        })
        .init();
}

/// The device named by `--device` (see [`elbo::device::from_name`]).
pub fn device(name: &str) -> Result<Device, elbo::Error> {
    elbo::device::from_name(name)
}

/// An MLP VAE for binary images with any head and prior.
pub type MlpVae<H, P> = Vae<MlpEncoder<H>, BernoulliMlpDecoder, P>;

/// Prints the single-sample test −ELBO, writes `samples.png` (64 prior samples) and
/// `reconstructions.png` (32 inputs beside their reconstructions) to `out`, and returns
/// the test images as a tensor.
pub fn elbo_and_pictures<H, P>(
    model: &MlpVae<H, P>,
    test: &Images,
    out: &Path,
    seed: u64,
    device: &Device,
) -> Result<Tensor<2>, Box<dyn std::error::Error>>
where
    H: PosteriorHead,
    H::Posterior: Posterior<Value = Tensor<2>> + KlDivergence<P>,
    P: Prior<Value = Tensor<2>>,
{
    let x_test = test.to_tensor(test.binary()?, device)?;
    device.seed(seed.wrapping_add(2));
    let elbo = elbo_estimate(model, &x_test, 500)?;
    println!(
        "test -ELBO (1 sample): {:.3} nats (± {:.3})",
        -elbo.mean, elbo.std_error
    );
    std::fs::create_dir_all(out)?;
    let (h, w) = (test.rows, test.cols);
    elbo::image::save_grid(out.join("samples.png"), model.generate(64, device), h, w, 8)?;
    let originals = x_test.clone().narrow(0, 0, 32);
    let recon = model.reconstruct(&originals)?;
    elbo::image::save_reconstructions(out.join("reconstructions.png"), originals, recon, h, w, 4)?;
    Ok(x_test)
}

/// Estimates the test NLL by importance sampling with `k` samples and prints the timing
/// line and the final line `test NLL (K=<k>): <x> nats (± <se>)`.
pub fn report_nll<M: LatentVariableModel<Input = Tensor<2>>>(
    model: &M,
    x_test: &Tensor<2>,
    k: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let ll = log_likelihood(model, x_test, &LikelihoodConfig::new(k))?;
    let seconds = started.elapsed().as_secs_f64();
    let n = x_test.dims()[0];
    println!(
        "evaluated {n} test images at K={k} in {seconds:.1} s ({:.1} images/s)",
        n as f64 / seconds
    );
    println!(
        "test NLL (K={k}): {:.3} nats (± {:.3})",
        -ll.mean, ll.std_error
    );
    Ok(())
}
