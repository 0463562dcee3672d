//! The variational bound of [`Ddpm`] estimated over random time steps: uniform steps, or
//! steps drawn from a proposal that favours the large terms (Nichol & Dhariwal 2021,
//! §3.3), with the weights that keep the estimate unbiased.

use burn::tensor::{Distribution as TensorDistribution, Tensor};

use super::model::{Ddpm, Denoiser, host_uniforms};
use crate::error::{Error, ensure_nonzero};
use crate::objective::Estimate;

/// A distribution `p(t)` over the middle steps `t ∈ 2..=T` of the bound, from which
/// [`Ddpm::vlb_estimate_with`] draws the steps it evaluates.
///
/// # Formula
/// ```text
/// Σ_{t=2}^{T} L_{t−1} = E_{t∼p} [ L_{t−1} / p(t) ]      for any p with p(t) > 0
/// ```
/// The variance is smallest for `p(t) ∝ |L_{t−1}|`; Nichol & Dhariwal (2021, §3.3) use
/// `p(t) ∝ √E[L_{t−1}²]`, which [`Ddpm::vlb_proposal`] estimates from a pilot batch.
#[derive(Clone, Debug, PartialEq)]
pub struct StepProposal {
    /// `p(t)` for `t = 2..=T` (index `t − 2`), summing to 1.
    probs: Vec<f64>,
    /// The running sums of `probs`.
    cdf: Vec<f64>,
}

impl StepProposal {
    /// The uniform proposal over `2..=steps`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for `steps < 2` (no middle terms).
    pub fn uniform(steps: usize) -> crate::Result<Self> {
        if steps < 2 {
            return Err(Error::config(
                "steps",
                steps,
                "at least 2 (middle terms t = 2..=T)",
            ));
        }
        Self::from_weights(vec![1.0; steps - 1], 0.0)
    }

    /// The proposal `p = (1 − λ)·w/Σw + λ/(T − 1)` from weights `w` for `t = 2..=T`
    /// (`weights[t − 2]`, `T − 1` of them) mixed with the uniform at rate `λ` (which keeps
    /// every step possible where a weight is 0).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for no weights, a negative or non-finite weight, weights
    /// that sum to 0 with `λ = 0`, or `λ` outside `[0, 1]`.
    ///
    /// ```
    /// use elbo::models::ddpm::StepProposal;
    /// let p = StepProposal::from_weights(vec![3.0, 1.0, 0.0], 0.25)?;
    /// assert!((p.prob(2) - (0.75 * 0.75 + 0.25 / 3.0)).abs() < 1e-12);
    /// assert!(p.prob(4) > 0.0);
    /// # Ok::<(), elbo::Error>(())
    /// ```
    pub fn from_weights(weights: Vec<f64>, uniform_mix: f64) -> crate::Result<Self> {
        if weights.is_empty() {
            return Err(Error::config(
                "weights",
                "[]",
                "one weight per step t = 2..=T",
            ));
        }
        if let Some(w) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
            return Err(Error::config("weights", w, "finite weights >= 0"));
        }
        if !(0.0..=1.0).contains(&uniform_mix) {
            return Err(Error::config(
                "uniform_mix",
                uniform_mix,
                "a fraction in [0, 1]",
            ));
        }
        let total: f64 = weights.iter().sum();
        if total <= 0.0 && uniform_mix == 0.0 {
            return Err(Error::config(
                "weights",
                "all 0",
                "a positive weight somewhere, or uniform_mix > 0",
            ));
        }
        let n = weights.len() as f64;
        let probs: Vec<f64> = weights
            .iter()
            .map(|w| {
                let share = if total > 0.0 { w / total } else { 0.0 };
                (1.0 - uniform_mix) * share + uniform_mix / n
            })
            .collect();
        let mut cdf = Vec::with_capacity(probs.len());
        let mut running = 0.0;
        for p in &probs {
            running += p;
            cdf.push(running);
        }
        Ok(Self { probs, cdf })
    }

    /// `T`, the last step it covers.
    pub fn steps(&self) -> usize {
        self.probs.len() + 1
    }

    /// `p(t)` for `t ∈ 2..=T` (0 elsewhere).
    pub fn prob(&self, t: usize) -> f64 {
        if t < 2 {
            return 0.0;
        }
        self.probs.get(t - 2).copied().unwrap_or(0.0)
    }

    /// The step whose cumulative probability first exceeds `u ∈ [0, 1)` (the inverse CDF:
    /// a uniform `u` gives a draw from `p`).
    pub fn step_at(&self, u: f64) -> usize {
        let total = self.cdf.last().copied().unwrap_or(1.0);
        let index = self.cdf.partition_point(|&c| c <= u * total);
        index.min(self.probs.len() - 1) + 2
    }
}

impl<N: Denoiser> Ddpm<N> {
    /// The variational bound `−ELBO` per example in nats, estimated with `L_T` and `L_0`
    /// computed for every example and `steps_per_example` uniform draws of `t ∈ 2..=T` for
    /// the middle terms (unbiased; `L_0` is by far the largest and most variable term, so
    /// it is not left to chance):
    /// ```text
    /// −ELBO ≈ L_T + L_0 + (T − 1) · mean_j L_{t_j − 1}
    /// ```
    /// averaged over the data with its standard error over examples. Divide by `d ln 2` (see
    /// [`bits_per_dim`](crate::objective::bits_per_dim)) for bits per dimension.
    /// [`vlb_estimate_with`](Self::vlb_estimate_with) draws the steps from a proposal.
    ///
    /// # Errors
    /// A bad batch or `steps_per_example = 0`.
    pub fn vlb_estimate(
        &self,
        x: &Tensor<2>,
        steps_per_example: usize,
        chunk: usize,
    ) -> crate::Result<Estimate> {
        if self.steps() < 2 {
            return self.vlb_estimate_from(x, None, steps_per_example, chunk);
        }
        let uniform = StepProposal::uniform(self.steps())?;
        self.vlb_estimate_from(x, Some(&uniform), steps_per_example, chunk)
    }

    /// As [`vlb_estimate`](Self::vlb_estimate), with the middle steps drawn from
    /// `proposal` and weighted by `1/p(t)`:
    /// ```text
    /// −ELBO ≈ L_T + L_0 + mean_j L_{t_j − 1} / p(t_j),     t_j ∼ p
    /// ```
    /// unbiased for any proposal; with [`vlb_proposal`](Self::vlb_proposal)'s its standard
    /// error is lower at equal cost.
    ///
    /// # Errors
    /// As [`vlb_estimate`](Self::vlb_estimate), and [`Error::InvalidConfig`] for a proposal
    /// over another number of steps.
    pub fn vlb_estimate_with(
        &self,
        x: &Tensor<2>,
        proposal: &StepProposal,
        steps_per_example: usize,
        chunk: usize,
    ) -> crate::Result<Estimate> {
        if proposal.steps() != self.steps() {
            return Err(Error::config(
                "proposal",
                format!("steps 2..={}", proposal.steps()),
                format!("a proposal over this model's steps 2..={}", self.steps()),
            ));
        }
        self.vlb_estimate_from(x, Some(proposal), steps_per_example, chunk)
    }

    /// Nichol & Dhariwal's proposal `p(t) ∝ √E[L_{t−1}²]` (§3.3), mixed with the uniform at
    /// rate 0.1: the mean of `L_{t−1}²` over the rows of `x_pilot` (one draw of `x_t` each)
    /// at `grid` steps spread evenly over `2..=T` (the ends included), linearly
    /// interpolated between them. Costs `grid` network passes over the pilot batch;
    /// use other examples than those the bound is then estimated on.
    ///
    /// # Errors
    /// A bad batch, `grid < 2`, or a model with `T < 2`.
    pub fn vlb_proposal(&self, x_pilot: &Tensor<2>, grid: usize) -> crate::Result<StepProposal> {
        self.check_input(x_pilot)?;
        if grid < 2 {
            return Err(Error::config("grid", grid, "at least 2 steps (both ends)"));
        }
        let steps = self.steps();
        if steps < 2 {
            return Err(Error::config(
                "steps",
                steps,
                "at least 2 (middle terms t = 2..=T)",
            ));
        }
        let [n, d] = x_pilot.dims();
        let device = x_pilot.device();
        let x0 = Self::to_model_space(x_pilot);
        let span = (steps - 2) as f64;
        let mut points: Vec<(usize, f64)> = Vec::with_capacity(grid);
        for g in 0..grid {
            let t = 2 + (span * g as f64 / (grid - 1) as f64).round() as usize;
            if points.last().is_some_and(|&(last, _)| last == t) {
                continue;
            }
            let noise = Tensor::random([n, d], TensorDistribution::Normal(0.0, 1.0), &device);
            let terms = self.step_terms(&x0, &vec![t; n], noise)?;
            let mean_square: f32 = terms.powi_scalar(2).mean().into_scalar();
            let value = (mean_square as f64).sqrt();
            if !value.is_finite() {
                return Err(Error::NonFinite {
                    context: format!("the pilot's bound term at step {t}"),
                    hint: "the model gives a non-finite term; check its weights".into(),
                });
            }
            points.push((t, value));
        }
        let weights = (2..=steps)
            .map(|t| {
                let upper = points
                    .partition_point(|&(s, _)| s < t)
                    .min(points.len() - 1);
                let (t1, v1) = points[upper];
                if upper == 0 || t1 == t {
                    return v1;
                }
                let (t0, v0) = points[upper - 1];
                v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0) as f64
            })
            .collect();
        StepProposal::from_weights(weights, 0.1)
    }

    /// The estimate with middle steps from `proposal` (`None` for `T = 1`, no middle).
    fn vlb_estimate_from(
        &self,
        x: &Tensor<2>,
        proposal: Option<&StepProposal>,
        steps_per_example: usize,
        chunk: usize,
    ) -> crate::Result<Estimate> {
        self.check_input(x)?;
        ensure_nonzero("steps_per_example", steps_per_example)?;
        ensure_nonzero("chunk", chunk)?;
        let [n, d] = x.dims();
        let device = x.device();
        let mut per_example = Vec::with_capacity(n);
        let mut start = 0;
        while start < n {
            let len = chunk.min(n - start);
            let x0 = Self::to_model_space(&x.clone().narrow(0, start, len));
            let noise = Tensor::random([len, d], TensorDistribution::Normal(0.0, 1.0), &device);
            let mut total = self.prior_term(&x0)? + self.step_terms(&x0, &vec![1; len], noise)?;
            if let Some(proposal) = proposal {
                let mut middle = total.zeros_like();
                for _ in 0..steps_per_example {
                    let t: Vec<usize> = host_uniforms(len, &device)?
                        .into_iter()
                        .map(|u| proposal.step_at(u))
                        .collect();
                    let inverse: Vec<f32> =
                        t.iter().map(|&s| (1.0 / proposal.prob(s)) as f32).collect();
                    let inverse = Tensor::<1>::from_floats(inverse.as_slice(), &device);
                    let noise =
                        Tensor::random([len, d], TensorDistribution::Normal(0.0, 1.0), &device);
                    middle = middle + self.step_terms(&x0, &t, noise)? * inverse;
                }
                total = total + middle.div_scalar(steps_per_example as f64);
            }
            let values: Vec<f32> =
                total
                    .try_into_vec_as::<f32>()
                    .map_err(|e| Error::NonFinite {
                        context: "reading the bound back from the device".into(),
                        hint: format!("{e:?}"),
                    })?;
            per_example.extend(values.iter().map(|&v| -(v as f64)));
            start += len;
        }
        // Estimates of log p(x) ≥ ELBO: negate for the bound in nats.
        Ok(Estimate::from_values(per_example)?.negate())
    }
}
