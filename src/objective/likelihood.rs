//! Importance-sampled log-likelihood, the IWAE bound, and bits per dimension.

use burn::tensor::Tensor;
use rayon::prelude::*;

use crate::error::ensure_nonzero;
use crate::math::{LN_2, log_mean_exp, log_sum_exp};
use crate::traits::{Batch, LatentVariableModel};
use crate::{Error, Result};

/// How [`log_likelihood`] splits the work so that memory stays bounded.
///
/// The model sees at most `example_chunk × sample_chunk` latent draws at a time, whatever
/// `k` and the data size are.
#[derive(Clone, Debug, PartialEq)]
pub struct LikelihoodConfig {
    /// Importance samples per example, `K`.
    pub k: usize,
    /// Examples per forward pass.
    pub example_chunk: usize,
    /// Samples per example per forward pass.
    pub sample_chunk: usize,
}

impl LikelihoodConfig {
    /// `K` samples with chunks of 25 examples × 40 samples (1,000 draws per pass).
    ///
    /// On the CPU a pass this size keeps the decoder's output in cache: on the 784-400-20
    /// VAE it evaluates 1.7× faster than 10,000 draws per pass (see `docs/results.md`).
    /// On a GPU, raise both chunks until memory or throughput stops improving.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            example_chunk: 25,
            sample_chunk: 40,
        }
    }

    /// Sets the number of examples per pass.
    pub fn with_example_chunk(mut self, example_chunk: usize) -> Self {
        self.example_chunk = example_chunk;
        self
    }

    /// Sets the number of samples per example per pass.
    pub fn with_sample_chunk(mut self, sample_chunk: usize) -> Self {
        self.sample_chunk = sample_chunk;
        self
    }

    /// Checks that every count is at least 1.
    pub fn validate(&self) -> Result<()> {
        crate::error::ensure_samples(self.k)?;
        ensure_nonzero("example_chunk", self.example_chunk)?;
        ensure_nonzero("sample_chunk", self.sample_chunk)
    }
}

/// A per-example estimate averaged over a data set, with its standard error.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// The estimate for each example, in nats.
    pub per_example: Vec<f64>,
    /// The mean over examples.
    pub mean: f64,
    /// The standard error of the mean over examples, `sd / √n` (0 for one example).
    pub std_error: f64,
}

impl Estimate {
    /// Mean and standard error of per-example values.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if any value is NaN or infinite; [`Error::InvalidConfig`] if
    /// there are none.
    pub fn from_values(per_example: Vec<f64>) -> Result<Self> {
        let n = per_example.len();
        if n == 0 {
            return Err(Error::config("data", "0 examples", "at least one example"));
        }
        if let Some(i) = per_example.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                context: format!("the estimate for example {i} ({})", per_example[i]),
                hint: "check the data for NaN/inf and the model for diverged weights".into(),
            });
        }
        let mean = per_example.iter().sum::<f64>() / n as f64;
        let std_error = if n > 1 {
            let var = per_example.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            (var / n as f64).sqrt()
        } else {
            0.0
        };
        Ok(Self {
            per_example,
            mean,
            std_error,
        })
    }

    /// The same estimate negated (log-likelihood ↔ NLL); the standard error is unchanged.
    pub fn negate(&self) -> Self {
        Self {
            per_example: self.per_example.iter().map(|v| -v).collect(),
            mean: -self.mean,
            std_error: self.std_error,
        }
    }
}

fn to_f64(t: Tensor<1>) -> Result<Vec<f64>> {
    t.try_into_vec_as::<f64>().map_err(|e| Error::NonFinite {
        context: "reading an estimate back from the device".into(),
        hint: format!("{e:?}"),
    })
}

fn check_batch<I: Batch>(x: &I) -> Result<usize> {
    let n = x.batch_size();
    if n == 0 {
        return Err(Error::config("data", "0 examples", "at least one example"));
    }
    Ok(n)
}

/// The importance-sampled estimate of `log p(x)` per example, with `q(z | x)` as proposal.
///
/// # Formula
/// ```text
/// log p̂(x) = log (1/K) Σ_{j=1..K} p(x, z_j) / q(z_j | x),   z_j ~ q(z | x)
/// ```
/// (Burda et al. 2016, eq. 8; Rezende et al. 2014, appendix E.) Its expectation is the
/// IWAE bound `L_K`, which rises with `K` toward `log p(x)`, so the estimate is a
/// stochastic lower bound that is consistent as `K → ∞`.
///
/// Work is chunked over examples and samples (see [`LikelihoodConfig`]); the chunks'
/// log-sum-exps are combined in f64 on the host. Call it on an evaluation copy of the
/// model (`model.valid()`), so that no autodiff graph is kept. Report the NLL as
/// `-estimate.mean` with `estimate.std_error`.
///
/// # Errors
/// The model's error for a batch of the wrong shape; [`Error::InvalidConfig`] for a zero
/// count; [`Error::NonFinite`] if an estimate is not finite.
///
/// # Example
/// ```
/// use burn::tensor::Tensor;
/// use elbo::models::GaussianVaeConfig;
/// use elbo::objective::{LikelihoodConfig, log_likelihood};
///
/// let device = elbo::device::default_device();
/// let model = GaussianVaeConfig::new(6, 2).with_hidden(vec![8]).init(&device)?;
/// let x = Tensor::<2>::ones([3, 6], &device);
/// let estimate = log_likelihood(&model, &x, &LikelihoodConfig::new(10))?;
/// assert_eq!(estimate.per_example.len(), 3);
/// assert!(estimate.mean < 0.0); // log-probability of binary data
/// # Ok::<(), elbo::Error>(())
/// ```
pub fn log_likelihood<M: LatentVariableModel>(
    model: &M,
    x: &M::Input,
    config: &LikelihoodConfig,
) -> Result<Estimate> {
    config.validate()?;
    check_batch(x)?;
    let chunks = share_of_chunks(model, x, config, 0, 1)?;
    Estimate::from_values(chunks.into_iter().flat_map(|(_, v)| v).collect())
}

/// [`log_likelihood`] with the chunks of examples dealt out in turns to `threads` shares,
/// which run at once (as many as rayon's pool has threads); the estimates come back in the
/// order of the examples.
///
/// On the CPU two threads that each run whole passes keep both cores busy through the many
/// small single-threaded operations of a pass, where one pass at a time leaves a core idle
/// in them: NVAE evaluates 7–11 % faster with 2 threads on 2 cores (docs/results.md).
/// The threads are tasks of rayon's global pool, the pool that burn's CPU backend and the
/// [`kernels`](crate::kernels) run their parallel loops on: a loop started inside a pass
/// then runs on the pass's own thread (or is shared with an idle one), where from a thread
/// of its own each operation was handed to the pool and waited for; NVAE evaluated 1.28×
/// faster this way. The threads draw from one device random stream in no fixed order, so
/// the estimate is not reproducible draw for draw (it is the same estimator).
///
/// # Errors
/// As [`log_likelihood`], and [`Error::InvalidConfig`] for `threads = 0`.
///
/// # Example
/// ```
/// use burn::tensor::Tensor;
/// use elbo::models::GaussianVaeConfig;
/// use elbo::objective::{LikelihoodConfig, log_likelihood_parallel};
///
/// let device = elbo::device::default_device();
/// let model = GaussianVaeConfig::new(6, 2).with_hidden(vec![8]).init(&device)?;
/// let x = Tensor::<2>::ones([5, 6], &device);
/// let config = LikelihoodConfig::new(10).with_example_chunk(2);
/// let estimate = log_likelihood_parallel(&model, &x, &config, 2)?;
/// assert_eq!(estimate.per_example.len(), 5);
/// # Ok::<(), elbo::Error>(())
/// ```
pub fn log_likelihood_parallel<M>(
    model: &M,
    x: &M::Input,
    config: &LikelihoodConfig,
    threads: usize,
) -> Result<Estimate>
where
    M: LatentVariableModel + Sync,
    M::Input: Sync,
{
    config.validate()?;
    ensure_nonzero("threads", threads)?;
    check_batch(x)?;
    // One task per share (`with_max_len(1)`: not several shares run in turn by one task).
    let shares: Vec<Result<Vec<ChunkEstimate>>> = (0..threads)
        .into_par_iter()
        .with_max_len(1)
        .map(|share| share_of_chunks(model, x, config, share, threads))
        .collect();
    let mut chunks = Vec::new();
    for share in shares {
        chunks.extend(share?);
    }
    chunks.sort_by_key(|&(start, _)| start);
    Estimate::from_values(chunks.into_iter().flat_map(|(_, v)| v).collect())
}

/// The estimates for one chunk of examples, with the index of its first example.
type ChunkEstimate = (usize, Vec<f64>);

/// The estimates of chunks `share`, `share + shares`, … of the chunks of examples.
fn share_of_chunks<M: LatentVariableModel>(
    model: &M,
    x: &M::Input,
    config: &LikelihoodConfig,
    share: usize,
    shares: usize,
) -> Result<Vec<ChunkEstimate>> {
    let n = x.batch_size();
    let mut out = Vec::new();
    for start in (0..n)
        .step_by(config.example_chunk)
        .skip(share)
        .step_by(shares)
    {
        let len = config.example_chunk.min(n - start);
        out.push((
            start,
            chunk_log_likelihood(model, &x.narrow_rows(start, len), config)?,
        ));
    }
    Ok(out)
}

/// The estimate for each example of one chunk of examples, over its sample chunks (the
/// log-sum-exps of the chunks combined in f64 on the host).
fn chunk_log_likelihood<M: LatentVariableModel>(
    model: &M,
    chunk: &M::Input,
    config: &LikelihoodConfig,
) -> Result<Vec<f64>> {
    let len = chunk.batch_size();
    // Running log Σ_j w_j per example of this chunk, over sample chunks.
    let mut partial: Vec<Vec<f64>> = vec![Vec::new(); len];
    model.visit_log_importance_weights(chunk, config.k, config.sample_chunk, &mut |log_w| {
        let lse = log_sum_exp(log_w, 1).reshape([len]);
        for (acc, v) in partial.iter_mut().zip(to_f64(lse)?) {
            acc.push(v);
        }
        Ok(())
    })?;
    let ln_k = (config.k as f64).ln();
    Ok(partial
        .iter()
        .map(|chunks| crate::math::log_sum_exp_f64(chunks) - ln_k)
        .collect())
}

/// The k-sample importance-weighted bound `L_k = E[log (1/k) Σ_j w_j]` per example, as a
/// tensor `[batch]` that gradients flow through (the IWAE training objective).
///
/// # Formula
/// ```text
/// ELBO = L_1 ≤ L_k ≤ L_{2k} ≤ log p(x)        (Burda et al. 2016, theorem 1)
/// ```
///
/// # Errors
/// As [`LatentVariableModel::log_importance_weights`].
pub fn iwae_bound<M: LatentVariableModel>(model: &M, x: &M::Input, k: usize) -> Result<Tensor<1>> {
    crate::error::ensure_samples(k)?;
    let n = check_batch(x)?;
    let log_w = model.log_importance_weights(x, k)?;
    Ok(log_mean_exp(log_w, 1).reshape([n]))
}

/// The single-sample ELBO per example over a data set, in chunks of `example_chunk`,
/// with its standard error over examples.
///
/// # Errors
/// The model's error for a batch of the wrong shape; [`Error::NonFinite`] if a value is
/// not finite.
pub fn elbo_estimate<M: LatentVariableModel>(
    model: &M,
    x: &M::Input,
    example_chunk: usize,
) -> Result<Estimate> {
    ensure_nonzero("example_chunk", example_chunk)?;
    let n = check_batch(x)?;
    let mut per_example = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let len = example_chunk.min(n - start);
        let terms = model.elbo(&x.narrow_rows(start, len))?;
        per_example.extend(to_f64(terms.elbo())?);
        start += len;
    }
    Estimate::from_values(per_example)
}

/// Converts a negative log-likelihood in nats per example into bits per dimension.
///
/// # Formula
/// ```text
/// bits/dim = nll_nats / (dims · ln 2)
/// ```
/// For 8-bit images modelled on `[−1, 1]` or `[0, 1]` with a continuous density, add the
/// change-of-variables term to the NLL before converting (the discretised likelihoods in
/// this crate already give probabilities of the 256 bins).
pub fn bits_per_dim(nll_nats: f64, dims: usize) -> f64 {
    nll_nats / (dims as f64 * LN_2)
}

/// The inverse of [`bits_per_dim`]: nats per example from bits per dimension.
pub fn nats_from_bits_per_dim(bits_per_dim: f64, dims: usize) -> f64 {
    bits_per_dim * dims as f64 * LN_2
}
