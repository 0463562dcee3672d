//! DDPM noise schedules: the variances `β_1 … β_T` of the forward process and every
//! quantity derived from them, in f64 on the host.

use serde::{Deserialize, Serialize};

use crate::error::{ensure_non_negative, ensure_nonzero};
use crate::{Error, Result};

/// The largest `β_t` a built-in schedule produces (Nichol & Dhariwal 2021, §3.2): the
/// cosine schedule's `β_t` are clipped to it, and so is the end of
/// [`BetaSchedule::linear_default`] for `T ≤ 20`.
pub const MAX_BETA: f64 = 0.999;

/// How the forward-process variances `β_1 … β_T` are chosen.
///
/// # Formula
/// ```text
/// Linear { β_start, β_end }:  β_t = β_start + (β_end − β_start)·(t − 1)/(T − 1)      (Ho et al. 2020, §4)
///                             (T = 1: β_1 = β_start)
/// Cosine { s }:               ᾱ(t) = f(t)/f(0),  f(t) = cos²( (t/T + s)/(1 + s) · π/2 )
///                             β_t = min(1 − ᾱ(t)/ᾱ(t − 1), 0.999)                    (Nichol & Dhariwal 2021, eq. 17)
/// Custom(βs):                 β_t = βs[t − 1]
/// ```
/// With the cosine schedule the stored `ᾱ_t` is the product `Π_{s≤t} (1 − β_s)` of the
/// clipped `β`s, so it equals `f(t)/f(0)` except after a clipped step (only the last step or
/// two, where `f(t)/f(0)` is already below about 1e-5 at `T = 1000`).
///
/// # Example
///
/// ```
/// use elbo::models::ddpm::{BetaSchedule, NoiseSchedule};
///
/// // The paper's schedule: β from 1e-4 to 0.02 over T = 1000 steps.
/// let kind = BetaSchedule::linear_default(1000);
/// assert_eq!(kind, BetaSchedule::Linear { beta_start: 1e-4, beta_end: 0.02 });
/// let schedule = NoiseSchedule::new(&kind, 1000)?;
/// assert!(schedule.alpha_bar(1000) < 1e-4); // x_T is almost pure noise
///
/// // Improved DDPM's cosine schedule, and a hand-written one.
/// let cosine = NoiseSchedule::new(&BetaSchedule::cosine_default(), 4000)?;
/// assert_eq!(cosine.steps(), 4000);
/// let custom = NoiseSchedule::new(&BetaSchedule::Custom(vec![0.1, 0.2, 0.5]), 3)?;
/// assert!((custom.alpha_bar(3) - 0.9 * 0.8 * 0.5).abs() < 1e-15);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BetaSchedule {
    /// `β_t` linear in `t` from `beta_start` (at `t = 1`) to `beta_end` (at `t = T`); both
    /// must be finite and in `(0, 1)`.
    Linear {
        /// `β_1`.
        beta_start: f64,
        /// `β_T`.
        beta_end: f64,
    },
    /// The cosine schedule of improved DDPM with offset `s ≥ 0` (the paper uses 0.008).
    Cosine {
        /// The small offset that keeps `β_1` from being vanishingly small.
        s: f64,
    },
    /// An explicit list `[β_1, …, β_T]`; its length must equal the `steps` given to
    /// [`NoiseSchedule::new`].
    Custom(Vec<f64>),
}

impl BetaSchedule {
    /// Ho et al.'s linear schedule (`β` from 1e-4 to 0.02 at `T = 1000`), scaled for other
    /// `T` as in improved DDPM (Nichol & Dhariwal 2021, their `get_named_beta_schedule`).
    ///
    /// # Formula
    /// ```text
    /// scale = 1000 / T
    /// β_start = 1e-4 · scale
    /// β_end   = min(0.02 · scale, 0.999)
    /// ```
    /// The scaling keeps `Σ_t β_t` (and so `ᾱ_T ≈ exp(−Σ β_t) ≈ 4e-5`) about the same for
    /// every `T`. For `T ≤ 20` the scaled `β_end` would reach 1 or more, so it is capped at
    /// [`MAX_BETA`]; `ᾱ_T` then ends even closer to 0. `T = 0` is not a schedule; it is
    /// treated as `T = 1000` here and rejected by [`NoiseSchedule::new`].
    pub fn linear_default(steps: usize) -> Self {
        let scale = if steps == 0 {
            1.0
        } else {
            1000.0 / steps as f64
        };
        BetaSchedule::Linear {
            beta_start: 1e-4 * scale,
            beta_end: (0.02 * scale).min(MAX_BETA),
        }
    }

    /// Improved DDPM's cosine schedule with the paper's offset `s = 0.008`.
    pub fn cosine_default() -> Self {
        BetaSchedule::Cosine { s: 0.008 }
    }

    /// The `T` values `β_1 … β_T`, validated.
    fn tabulate(&self, steps: usize) -> Result<Vec<f64>> {
        ensure_nonzero("steps", steps)?;
        let betas = match self {
            BetaSchedule::Linear {
                beta_start,
                beta_end,
            } => {
                ensure_unit_open("beta_start", *beta_start)?;
                ensure_unit_open("beta_end", *beta_end)?;
                if steps == 1 {
                    vec![*beta_start]
                } else {
                    let span = (steps - 1) as f64;
                    (0..steps)
                        .map(|i| beta_start + (beta_end - beta_start) * (i as f64 / span))
                        .collect()
                }
            }
            BetaSchedule::Cosine { s } => {
                ensure_non_negative("s", *s)?;
                let t_max = steps as f64;
                let f = |t: f64| {
                    let angle = (t / t_max + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2;
                    angle.cos().powi(2)
                };
                let f0 = f(0.0);
                (1..=steps)
                    .map(|t| {
                        let prev = f((t - 1) as f64) / f0;
                        let cur = f(t as f64) / f0;
                        (1.0 - cur / prev).min(MAX_BETA)
                    })
                    .collect()
            }
            BetaSchedule::Custom(betas) => {
                if betas.len() != steps {
                    return Err(Error::config(
                        "steps",
                        steps,
                        format!(
                            "the length of the custom β list ({}); a Custom schedule has exactly \
                             one β per step",
                            betas.len()
                        ),
                    ));
                }
                betas.clone()
            }
        };
        for (i, &beta) in betas.iter().enumerate() {
            if !(beta > 0.0 && beta < 1.0) {
                return Err(Error::config(
                    "betas",
                    format!("β_{} = {beta} (index {i})", i + 1),
                    "every β_t finite and strictly between 0 and 1",
                ));
            }
        }
        Ok(betas)
    }
}

/// `0 < value < 1` (false for NaN).
fn ensure_unit_open(field: &'static str, value: f64) -> Result<()> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(Error::config(
            field,
            value,
            "a number strictly between 0 and 1",
        ))
    }
}

/// A DDPM noise schedule: `β_t`, `α_t`, `ᾱ_t` and the coefficients of the forward
/// posterior `q(x_{t−1} | x_t, x_0)`, tabulated in f64 for `t = 1 … T`.
///
/// Time is 1-based as in the paper: `x_0` is the data, `x_T` is (almost) pure noise.
/// The accessors take `t` in `1..=T` (`alpha_bar` also `t = 0`); they are for code that has
/// already validated its timesteps with [`check_step`](Self::check_step) and only
/// `debug_assert!` the range.
///
/// # Formula
/// ```text
/// α_t = 1 − β_t,   ᾱ_t = Π_{s=1}^{t} α_s,   ᾱ_0 = 1                               (Ho et al. 2020, §2)
/// q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I)                                          (Ho et al. 2020, eqs. 6–7)
/// μ̃_t = β_t √ᾱ_{t−1} / (1 − ᾱ_t) · x_0  +  (1 − ᾱ_{t−1}) √α_t / (1 − ᾱ_t) · x_t
///       └──────── coef1 ────────┘          └────────── coef2 ──────────┘
/// β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)
/// ```
///
/// # Example
///
/// ```
/// use elbo::models::ddpm::{BetaSchedule, NoiseSchedule};
///
/// let schedule = NoiseSchedule::new(&BetaSchedule::linear_default(1000), 1000)?;
/// assert_eq!(schedule.alpha_bar(0), 1.0);
/// assert_eq!(schedule.posterior_variance(1), 0.0); // x_0 is known given x_1 and x_0
/// assert!(schedule.check_step(1000).is_ok());
/// assert!(schedule.check_step(0).is_err());
/// // 50 DDIM steps, evenly spaced, ending at T.
/// let taus = schedule.subsequence(50)?;
/// assert_eq!((taus[0], taus[49]), (20, 1000));
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseSchedule {
    betas: Vec<f64>,
    alphas: Vec<f64>,
    alpha_bars: Vec<f64>,
    posterior_variance: Vec<f64>,
    posterior_log_variance_clipped: Vec<f64>,
    posterior_mean_coef1: Vec<f64>,
    posterior_mean_coef2: Vec<f64>,
}

impl NoiseSchedule {
    /// Tabulates `kind` over `steps = T` steps.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `steps` is 0; if a `Linear` end point is not in `(0, 1)`;
    /// if a `Cosine` offset `s` is negative or not finite; if a `Custom` list's length is not
    /// `steps`; or if any `β_t` is not finite and strictly between 0 and 1 (the message names
    /// `t` and its 0-based index).
    pub fn new(kind: &BetaSchedule, steps: usize) -> Result<Self> {
        let betas = kind.tabulate(steps)?;
        let alphas: Vec<f64> = betas.iter().map(|b| 1.0 - b).collect();
        let alpha_bars: Vec<f64> = alphas
            .iter()
            .scan(1.0, |acc, a| {
                *acc *= a;
                Some(*acc)
            })
            .collect();
        let mut posterior_variance = Vec::with_capacity(steps);
        let mut posterior_mean_coef1 = Vec::with_capacity(steps);
        let mut posterior_mean_coef2 = Vec::with_capacity(steps);
        for i in 0..steps {
            let prev = if i == 0 { 1.0 } else { alpha_bars[i - 1] };
            let denom = 1.0 - alpha_bars[i];
            posterior_variance.push(betas[i] * (1.0 - prev) / denom);
            posterior_mean_coef1.push(betas[i] * prev.sqrt() / denom);
            posterior_mean_coef2.push((1.0 - prev) * alphas[i].sqrt() / denom);
        }
        // β̃_1 = 0, so its log is replaced by log β̃_2 (or log β_1 when T = 1).
        let first = if steps >= 2 {
            posterior_variance[1]
        } else {
            betas[0]
        };
        let posterior_log_variance_clipped = std::iter::once(first)
            .chain(posterior_variance[1..].iter().copied())
            .map(f64::ln)
            .collect();
        Ok(Self {
            betas,
            alphas,
            alpha_bars,
            posterior_variance,
            posterior_log_variance_clipped,
            posterior_mean_coef1,
            posterior_mean_coef2,
        })
    }

    /// The number of steps `T`.
    pub fn steps(&self) -> usize {
        self.betas.len()
    }

    /// `Ok` if `t` is a valid timestep `1 ≤ t ≤ T`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `t` and the valid range otherwise.
    pub fn check_step(&self, t: usize) -> Result<()> {
        if (1..=self.steps()).contains(&t) {
            Ok(())
        } else {
            Err(Error::config(
                "t",
                t,
                format!(
                    "a timestep in 1..={} (t is 1-based: x_0 is the data)",
                    self.steps()
                ),
            ))
        }
    }

    #[inline]
    fn index(&self, t: usize) -> usize {
        debug_assert!(
            (1..=self.steps()).contains(&t),
            "timestep t = {t} outside 1..={}",
            self.steps()
        );
        t - 1
    }

    /// `β_t`, for `t` in `1..=T`.
    pub fn beta(&self, t: usize) -> f64 {
        self.betas[self.index(t)]
    }

    /// `α_t = 1 − β_t`, for `t` in `1..=T`.
    pub fn alpha(&self, t: usize) -> f64 {
        self.alphas[self.index(t)]
    }

    /// `ᾱ_t = Π_{s ≤ t} α_s`, for `t` in `0..=T` (`ᾱ_0 = 1`).
    pub fn alpha_bar(&self, t: usize) -> f64 {
        if t == 0 {
            1.0
        } else {
            self.alpha_bars[self.index(t)]
        }
    }

    /// The forward-posterior variance `β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)`, for `t` in
    /// `1..=T` (`β̃_1 = 0`).
    pub fn posterior_variance(&self, t: usize) -> f64 {
        self.posterior_variance[self.index(t)]
    }

    /// `ln β̃_t`, except at `t = 1` where `β̃_1 = 0` and the value is `ln β̃_2` (as in Ho et
    /// al.'s reference implementation; `ln β_1` when `T = 1`). For `t` in `1..=T`.
    pub fn posterior_log_variance_clipped(&self, t: usize) -> f64 {
        self.posterior_log_variance_clipped[self.index(t)]
    }

    /// The coefficient of `x_0` in the posterior mean, `β_t √ᾱ_{t−1} / (1 − ᾱ_t)`, for `t` in
    /// `1..=T` (1 at `t = 1`).
    pub fn posterior_mean_coef1(&self, t: usize) -> f64 {
        self.posterior_mean_coef1[self.index(t)]
    }

    /// The coefficient of `x_t` in the posterior mean, `(1 − ᾱ_{t−1}) √α_t / (1 − ᾱ_t)`, for
    /// `t` in `1..=T` (0 at `t = 1`).
    pub fn posterior_mean_coef2(&self, t: usize) -> f64 {
        self.posterior_mean_coef2[self.index(t)]
    }

    /// `[β_1, …, β_T]` (index `t − 1` holds `β_t`).
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// `[ᾱ_1, …, ᾱ_T]` (index `t − 1` holds `ᾱ_t`).
    pub fn alpha_bars(&self) -> &[f64] {
        &self.alpha_bars
    }

    /// `count` timesteps in `1..=T`, strictly increasing, evenly spaced and ending at `T`:
    /// the sub-sequence `τ` a DDIM sampler visits (Song et al. 2021, §4.2).
    ///
    /// # Formula
    /// ```text
    /// τ_i = ⌊ i · T / count ⌋,   i = 1 … count
    /// ```
    /// Consecutive `τ_i` differ by `⌊T/count⌋` or `⌈T/count⌉ ≥ 1`; `count = T` gives
    /// `1, 2, …, T` and `count = 1` gives `[T]`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `count` is 0 or larger than `T`.
    pub fn subsequence(&self, count: usize) -> Result<Vec<usize>> {
        let steps = self.steps();
        if count == 0 || count > steps {
            return Err(Error::config(
                "count",
                count,
                format!("a number of sampling steps in 1..={steps} (the schedule's T)"),
            ));
        }
        Ok((1..=count)
            .map(|i| (i as u128 * steps as u128 / count as u128) as usize)
            .collect())
    }
}
