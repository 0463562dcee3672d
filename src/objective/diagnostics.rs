//! Latent-space diagnostics for any model: active units, the mutual information
//! `I_q(x; z)`, and KL per latent group.

use burn::tensor::{Int, Tensor, TensorData};

use crate::math::log_sum_exp_f64;
use crate::traits::{Batch, Distribution, LatentVariableModel};
use crate::{Error, Result};

fn host(t: Tensor<1>) -> Result<Vec<f64>> {
    t.detach()
        .try_into_vec_as::<f32>()
        .map(|v| v.into_iter().map(f64::from).collect())
        .map_err(|e| Error::NonFinite {
            context: "reading a diagnostic back from the device".into(),
            hint: format!("{e:?}"),
        })
}

/// The active units of a latent space (Burda et al. 2016, sec. 5.2).
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveUnits {
    /// Number of dimensions whose activity exceeds the threshold.
    pub count: usize,
    /// `Cov_x(E_q[z_u | x])` for each dimension `u` (the variance over examples of the
    /// posterior mean).
    pub activity: Vec<f64>,
}

/// Counts the dimensions `u` with `Cov_x(E_q[z_u | x]) > threshold` (0.01 in the papers),
/// from posterior means `[examples, dims]` (e.g. `vae.encode(&x)?.mean()`).
///
/// # Errors
/// [`Error::ShapeMismatch`] for fewer than two examples; [`Error::InvalidConfig`] for a
/// negative or NaN threshold.
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::objective::active_units;
/// let means = Tensor::<2>::from_floats([[0.0, 1.0], [0.0, -1.0], [0.0, 0.5]], &elbo::device::default_device());
/// let au = active_units(means, 0.01)?;
/// assert_eq!(au.count, 1); // the first dimension never moves
/// # Ok::<(), elbo::Error>(())
/// ```
pub fn active_units(posterior_means: Tensor<2>, threshold: f64) -> Result<ActiveUnits> {
    crate::error::ensure_non_negative("threshold", threshold)?;
    let [n, d] = posterior_means.dims();
    if n < 2 {
        return Err(Error::shape(
            "active_units",
            "[examples >= 2, dims]",
            [n, d],
        ));
    }
    // Unbiased variance over examples, per dimension.
    let activity = host(posterior_means.var(0).reshape([d]))?;
    let count = activity.iter().filter(|&&a| a > threshold).count();
    Ok(ActiveUnits { count, activity })
}

/// The mutual information `I_q(x; z)` between data and latents under the encoder's joint
/// `q(x, z) = p_data(x) q(z | x)`, estimated on one batch as in He et al. 2019 and the
/// BN-VAE paper:
///
/// # Formula
/// ```text
/// I_q(x; z) = E_x E_{q(z|x)}[log q(z | x)] − E_{q(z)}[log q(z)]
/// log q(z_i) ≈ log (1/N) Σ_n q(z_i | x_n),      z_i ~ q(z | x_i)
/// ```
/// It is bounded by `ln N` for a batch of `N` examples. Works for any posterior family:
/// it only uses `sample` and `log_prob` (all `N²` pairs are evaluated at once, so keep
/// `N` to a few hundred).
///
/// # Errors
/// [`Error::ShapeMismatch`] for fewer than two rows.
pub fn mutual_information<Q: Distribution>(posterior: &Q) -> Result<f64> {
    let n = posterior.batch_size();
    if n < 2 {
        return Err(Error::shape(
            "mutual_information",
            "a batch of >= 2 posteriors",
            n,
        ));
    }
    let z = posterior.sample();
    let own = host(posterior.log_prob(&z))?;
    // Row j·N + i pairs posterior i (tiled) with draw j (each draw repeated N times).
    let q_tiled = posterior.repeat_rows(n);
    let index: Vec<i64> = (0..n as i64)
        .flat_map(|j| std::iter::repeat_n(j, n))
        .collect();
    let device = z.device();
    let index = Tensor::<1, Int>::from_data(TensorData::new(index, [n * n]), &device);
    let z_repeated = z.select_rows(index);
    let pairs = host(q_tiled.log_prob(&z_repeated))?;
    let ln_n = (n as f64).ln();
    let mi = (0..n)
        .map(|j| own[j] - (log_sum_exp_f64(&pairs[j * n..(j + 1) * n]) - ln_n))
        .sum::<f64>()
        / n as f64;
    Ok(mi)
}

/// The mean KL of each latent group over a data set, in nats (one entry for a flat VAE,
/// one per group for hierarchical models, one per step for DDPM), from one posterior
/// sample per example, in chunks of `example_chunk`.
///
/// # Errors
/// The model's error for a batch of the wrong shape.
pub fn kl_per_group<M: LatentVariableModel>(
    model: &M,
    x: &M::Input,
    example_chunk: usize,
) -> Result<Vec<f64>> {
    crate::error::ensure_nonzero("example_chunk", example_chunk)?;
    let n = x.batch_size();
    let mut sums: Vec<f64> = Vec::new();
    let mut start = 0;
    while start < n {
        let len = example_chunk.min(n - start);
        let terms = model.elbo(&x.narrow_rows(start, len))?;
        if sums.is_empty() {
            sums = vec![0.0; terms.kl.len()];
        }
        for (s, g) in sums.iter_mut().zip(terms.kl) {
            *s += host(g.sum())?[0];
        }
        start += len;
    }
    Ok(sums.into_iter().map(|s| s / n.max(1) as f64).collect())
}
