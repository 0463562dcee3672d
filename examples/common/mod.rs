//! What the examples share: the command-line entry point, the device flag, and (for the
//! MNIST examples) the data files, the evaluation lines and the picture grids.

// Each example uses its own subset.
#![allow(dead_code)]

use std::path::Path;
use std::time::Instant;

use burn::tensor::{Device, Tensor};
use elbo::data::Images;
use elbo::models::{BernoulliMlpDecoder, MlpEncoder, Vae};
use elbo::objective::{LikelihoodConfig, elbo_estimate, log_likelihood};
use elbo::{KlDivergence, LatentVariableModel, Posterior, PosteriorHead, Prior};

/// Runs `run` on the parsed flags; prints `usage` and exits with 2 on a flag error (or
/// `--help`, which `parse` reports as an empty message), and exits with 1 on a run error.
/// Before running, keeps freed memory in the process ([`elbo::retain_freed_memory`]), as
/// a training program should.
pub fn main_with<A>(
    usage: &str,
    parse: impl FnOnce() -> Result<A, String>,
    run: impl FnOnce(A) -> Result<(), Box<dyn std::error::Error>>,
) {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    elbo::retain_freed_memory();
    if let Err(e) = run(args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The command line after the program name, read as flags and their values.
pub struct Flags(std::iter::Skip<std::env::Args>);

impl Flags {
    /// The process's arguments.
    pub fn from_env() -> Self {
        Self(std::env::args().skip(1))
    }

    /// The next flag, if any.
    pub fn next_flag(&mut self) -> Option<String> {
        self.0.next()
    }

    /// The value that follows `flag`, parsed; the error names the flag and the value.
    pub fn value<T>(&mut self, flag: &str) -> Result<T, String>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let value = self.0.next().ok_or(format!("{flag} needs a value"))?;
        value.parse().map_err(|e| format!("{flag} {value}: {e}"))
    }
}

/// The device named by `--device`: `flex`, or `wgpu` when built with that feature.
pub fn device(name: &str) -> Result<Device, String> {
    match name {
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(Default::default())),
        other => Err(format!(
            "unknown device {other:?}: use flex{}",
            if cfg!(feature = "wgpu") {
                " or wgpu"
            } else {
                " (build with --features wgpu for wgpu)"
            }
        )),
    }
}

/// The MNIST-format training images and the fixed binarised test images of `data`.
pub fn load_mnist(data: &Path) -> Result<(Images, Images), elbo::Error> {
    let train = Images::load(data.join("train-images-idx3-ubyte.gz"))?;
    let test = Images::load(data.join("t10k-images-binarized-seed1234-idx3-ubyte.gz"))?;
    Ok((train, test))
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
