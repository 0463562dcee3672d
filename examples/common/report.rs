//! The MNIST examples' evaluation lines and picture grids (with the `png` feature).

use std::path::Path;
use std::time::Instant;

use burn::tensor::{Device, Tensor};
use elbo::data::Images;
use elbo::models::{BernoulliMlpDecoder, MlpEncoder, Vae};
use elbo::objective::{LikelihoodConfig, elbo_estimate, log_likelihood_parallel};
use elbo::{KlDivergence, LatentVariableModel, Posterior, PosteriorHead, Prior};

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
    let grid = elbo::image::GridImage::of(test);
    elbo::image::save_grid(out.join("samples.png"), model.generate(64, device), grid, 8)?;
    let originals = x_test.clone().narrow(0, 0, test.count.min(32));
    let recon = model.reconstruct(&originals)?;
    elbo::image::save_reconstructions(out.join("reconstructions.png"), originals, recon, grid, 4)?;
    Ok(x_test)
}

/// Estimates the test NLL by importance sampling (`config`: `K` and the chunks; `threads`
/// share the chunks of images) and prints the timing
/// line and the final line `test NLL (K=<k>): <x> nats (± <se>)`. Each image's NLL goes
/// to `<out>/test_nll.txt`, one per line in test-file order (for paired comparisons of two
/// runs on the same images), written to a temporary name and renamed.
pub fn report_nll<M: LatentVariableModel<Input = Tensor<2>> + Sync>(
    model: &M,
    x_test: &Tensor<2>,
    config: &LikelihoodConfig,
    threads: usize,
    out: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let k = config.k;
    let ll = log_likelihood_parallel(model, x_test, config, threads)?;
    let seconds = started.elapsed().as_secs_f64();
    let n = x_test.dims()[0];
    println!(
        "evaluated {n} test images at K={k} in {seconds:.1} s ({:.1} images/s)",
        n as f64 / seconds
    );
    let nll: Vec<f64> = ll.per_example.iter().map(|v| -v).collect();
    super::write_test_nll(out, &nll)?;
    println!(
        "test NLL (K={k}): {:.3} nats (± {:.3})",
        -ll.mean, ll.std_error
    );
    Ok(())
}
