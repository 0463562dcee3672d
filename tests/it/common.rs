//! Helpers shared by the integration tests: host copies of tensors, sample moments, and the
//! exact-CDF machinery of the spherical samplers' KS tests.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};

/// The device the integration tests run on: `$ELBO_TEST_DEVICE` (`flex`, `wgpu`, `cuda`,
/// as [`elbo::device::from_name`] reads it; a backend needs its cargo feature), else the
/// build's default ([`elbo::device::DEFAULT_NAME`], flex in the default build). On a
/// machine without a GPU, wgpu runs through Mesa's software Vulkan driver, as CI does.
/// Every test body takes its device from here, so the same assertions hold on every
/// backend.
pub fn device() -> Device {
    let name =
        std::env::var("ELBO_TEST_DEVICE").unwrap_or_else(|_| elbo::device::DEFAULT_NAME.into());
    elbo::device::from_name(&name).unwrap_or_else(|e| panic!("ELBO_TEST_DEVICE: {e}"))
}

/// The repository's MNIST subset, `data/mnist-10k` (found from `CARGO_MANIFEST_DIR`, so
/// the tests run from any working directory).
pub fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-10k")
}

/// The first `n` training images of the repository's MNIST subset.
pub fn mnist_train(n: usize) -> elbo::data::Images {
    let path = mnist_dir().join("train-images-idx3-ubyte.gz");
    let images = elbo::data::Images::load(&path).unwrap_or_else(|e| panic!("{e}"));
    images.slice(0, n).unwrap()
}

/// A tensor's values on the host, in f64 (detached: safe on an autodiff device).
pub fn host<const D: usize>(t: &Tensor<D>) -> Vec<f64> {
    t.clone()
        .detach()
        .try_into_vec_as::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

/// Sample mean and unbiased standard deviation.
pub fn mean_and_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// The CDF of `u = 1 − w ∈ [0, 2]` for a density known up to a constant, by the
/// trapezoid rule on a geometric grid from 1e-14 to 2 (200,001 points, ratio 1 + 1.6e-4
/// between neighbours: far finer than the KS resolution of the tests).
pub struct ExactCdf {
    grid: Vec<f64>,
    cdf: Vec<f64>,
}

impl ExactCdf {
    /// From `log_density(u)` (any additive constant).
    pub fn new(log_density: impl Fn(f64) -> f64) -> Self {
        let n = 200_001;
        let (lo, hi) = (1e-14f64, 2.0f64);
        let grid: Vec<f64> = (0..n)
            .map(|i| lo * (hi / lo).powf(i as f64 / (n - 1) as f64))
            .collect();
        let log_f: Vec<f64> = grid.iter().map(|&u| log_density(u)).collect();
        let max = log_f.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let f: Vec<f64> = log_f.iter().map(|l| (l - max).exp()).collect();
        let mut cdf = vec![0.0; n];
        for i in 1..n {
            cdf[i] = cdf[i - 1] + 0.5 * (f[i] + f[i - 1]) * (grid[i] - grid[i - 1]);
        }
        let total = cdf[n - 1];
        Self {
            grid,
            cdf: cdf.into_iter().map(|c| c / total).collect(),
        }
    }

    /// `P(U ≤ u)`, interpolated linearly between grid points.
    pub fn at(&self, u: f64) -> f64 {
        let (grid, cdf) = (&self.grid, &self.cdf);
        match grid.binary_search_by(|g| g.partial_cmp(&u).unwrap()) {
            Ok(i) => cdf[i],
            Err(0) => 0.0,
            Err(i) if i >= grid.len() => 1.0,
            Err(i) => {
                let t = (u - grid[i - 1]) / (grid[i] - grid[i - 1]);
                cdf[i - 1] + t * (cdf[i] - cdf[i - 1])
            }
        }
    }

    /// The Kolmogorov–Smirnov statistic of the draws `w` (as `u = 1 − w`) against this CDF.
    pub fn ks_statistic(&self, w: &[f64]) -> f64 {
        let n = w.len() as f64;
        let mut u: Vec<f64> = w.iter().map(|w| 1.0 - w).collect();
        u.sort_by(|a, b| a.partial_cmp(b).unwrap());
        u.iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = self.at(x);
                (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
            })
            .fold(0.0, f64::max)
    }
}

/// `erfc(x)` in f64: `1 − erf(x)` from the all-positive series
/// `erf(x) = 2/√π · e^{−x²} Σ_n 2^n x^{2n+1} / (1·3···(2n+1))` for `0 ≤ x < 2` (no
/// cancellation inside the sum; `erfc(2) = 4.7e-3`, so `1 − erf` loses under 3 digits),
/// Laplace's continued fraction `e^{−x²}/√π · 1/(x + ½/(x + 1/(x + 3/2/(x + …))))` with 80
/// levels for `x ≥ 2`, and `2 − erfc(−x)` for `x < 0`. Checked against Python's
/// `math.erfc` in `tests/discretized_normal.rs`.
pub fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.0 {
        let (mut term, mut sum, mut n) = (x, x, 0);
        while term > 1e-18 * sum {
            n += 1;
            term *= 2.0 * x * x / (2 * n + 1) as f64;
            sum += term;
        }
        1.0 - 2.0 / PI.sqrt() * (-x * x).exp() * sum
    } else {
        let mut f = x;
        for k in (1..=80).rev() {
            f = x + (k as f64 / 2.0) / f;
        }
        (-x * x).exp() / PI.sqrt() / f
    }
}

/// Pearson's chi-square of observed `counts` against `expected` counts, cells expecting
/// fewer than 5 pooled into one, and the critical value at α = 0.001 by the Wilson–Hilferty
/// approximation: `(chi2, critical, cells)`.
pub fn chi_square(counts: &[usize], expected: &[f64]) -> (f64, f64, usize) {
    let (mut chi2, mut cells) = (0.0, 0usize);
    let (mut pooled_obs, mut pooled_exp) = (0.0, 0.0);
    for (&observed, &e) in counts.iter().zip(expected) {
        if e >= 5.0 {
            chi2 += (observed as f64 - e).powi(2) / e;
            cells += 1;
        } else {
            pooled_obs += observed as f64;
            pooled_exp += e;
        }
    }
    if pooled_exp >= 5.0 {
        chi2 += (pooled_obs - pooled_exp).powi(2) / pooled_exp;
        cells += 1;
    }
    let df = (cells.max(2) - 1) as f64;
    let z = 3.090; // standard normal 0.999 quantile
    let a = 2.0 / (9.0 * df);
    let critical = df * (1.0 - a + z * a.sqrt()).powi(3);
    (chi2, critical, cells)
}

/// The largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Every float parameter and buffer of a module on the host, in visiting order (used by the
/// Learner's tests, feature `train`).
#[cfg(feature = "train")]
pub fn flatten<M: burn::module::Module>(module: &M) -> Vec<f64> {
    use burn::module::{ModuleVisitor, Param};
    #[derive(Default)]
    struct Flatten(Vec<f64>);
    impl ModuleVisitor for Flatten {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let n = value.shape().num_elements();
            self.0.extend(host(&value.reshape([n])));
        }
    }
    let mut all = Flatten::default();
    module.visit(&mut all);
    all.0
}

/// Checks that `ElboBatcher` repeats from its seed and goes on from batch to batch, for
/// the first four MNIST training images binarised by `binarization`: two batchers with
/// seed 7 draw the same two batches; the second batch of the same images differs from the
/// first (the stream is not reseeded per batch), and seed 8 draws another. (The images
/// have hundreds of grey pixels, strictly between 0 and 255, each a fresh coin: an
/// accidental tie has probability far below 1e-50.)
#[cfg(feature = "train")]
pub fn assert_batcher_repeats_from_its_seed(binarization: elbo::data::Binarization) {
    use burn::data::dataloader::batcher::Batcher;
    use elbo::data::ImageData;
    use elbo::learner::ElboBatcher;

    let device = device();
    let data = std::sync::Arc::new(ImageData::new(mnist_train(4), binarization));
    let draws = |seed: u64| {
        let batcher = ElboBatcher::new(data.clone(), seed);
        let draw = || host(&batcher.batch(vec![0, 1, 2, 3], &device).x.unwrap());
        (draw(), draw())
    };
    let (first, second) = draws(7);
    assert!(
        draws(7) == (first.clone(), second.clone()),
        "seed 7 drew other batches"
    );
    assert!(first != second, "the second batch repeats the first");
    assert!(draws(8).0 != first, "seed 8 drew seed 7's batch");
}
