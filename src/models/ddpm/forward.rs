//! The DDPM forward process on flat data `[batch, d]`: sampling `q(x_t | x_0)`, the forward
//! posterior `q(x_{t−1} | x_t, x_0)`, and the exact conversions between the `x_0`, `ε` and
//! `v` parameterisations.
//!
//! Every function takes one timestep per row as a host slice `t` (length `batch`, each in
//! `1..=T`), reads the schedule's f64 coefficients for those timesteps, and multiplies by them
//! as a `[batch, 1]` column ([`per_row`]) broadcast over the `d` features.

use burn::tensor::{Device, Tensor, TensorData};

use super::NoiseSchedule;

use crate::{Error, Result};

/// A `[values.len(), 1]` column holding `values` (cast to f32), to multiply a `[batch, d]`
/// tensor row by row through broadcasting.
///
/// # Example
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::models::ddpm::per_row;
///
/// let device = elbo::device::default_device();
/// let x = Tensor::<2>::ones([2, 3], &device);
/// let scaled = x * per_row(&[2.0, -1.0], &device);
/// let v: Vec<f32> = scaled.try_into_vec_as::<f32>().unwrap();
/// assert_eq!(v, vec![2.0, 2.0, 2.0, -1.0, -1.0, -1.0]);
/// ```
pub fn per_row(values: &[f64], device: &Device) -> Tensor<2> {
    let n = values.len();
    let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::<2>::from_data(TensorData::new(data, [n, 1]), device)
}

/// Checks that `t` has one valid timestep per row of `x`.
fn check_steps(schedule: &NoiseSchedule, context: &str, x: &Tensor<2>, t: &[usize]) -> Result<()> {
    let [batch, _] = x.dims();
    if t.len() != batch {
        return Err(Error::shape(
            format!("{context} (t)"),
            format!("one timestep per row: a slice of length {batch}"),
            [t.len()],
        ));
    }
    t.iter().try_for_each(|&step| schedule.check_step(step))
}

/// Checks that `other` (named `name`) has the shape of `reference`.
fn check_same_shape(
    context: &str,
    name: &str,
    reference: &Tensor<2>,
    other: &Tensor<2>,
) -> Result<()> {
    if reference.dims() != other.dims() {
        return Err(Error::shape(
            format!("{context} ({name})"),
            format!("the shape {:?}", reference.dims()),
            other.dims(),
        ));
    }
    Ok(())
}

/// After checking that every tensor in `others` has `x`'s shape and that `t` has one valid
/// timestep per row, the `[batch, 1]` columns `f(ᾱ_t)` and `g(ᾱ_t)`, computed in f64.
fn columns(
    schedule: &NoiseSchedule,
    context: &str,
    x: &Tensor<2>,
    others: &[(&str, &Tensor<2>)],
    t: &[usize],
    f: impl Fn(f64) -> f64,
    g: impl Fn(f64) -> f64,
) -> Result<(Tensor<2>, Tensor<2>)> {
    for (name, other) in others {
        check_same_shape(context, name, x, other)?;
    }
    check_steps(schedule, context, x, t)?;
    let alpha_bars: Vec<f64> = t.iter().map(|&step| schedule.alpha_bar(step)).collect();
    let device = x.device();
    let a: Vec<f64> = alpha_bars.iter().map(|&ab| f(ab)).collect();
    let b: Vec<f64> = alpha_bars.iter().map(|&ab| g(ab)).collect();
    Ok((per_row(&a, &device), per_row(&b, &device)))
}

/// A draw from `q(x_t | x_0)` for given standard-normal `noise`: the deterministic core of
/// the forward process.
///
/// # Formula
/// ```text
/// x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε,   ε ~ N(0, I)                           (Ho et al. 2020, eq. 4)
/// ```
///
/// # Errors
/// [`Error::ShapeMismatch`] if `noise` does not have `x0`'s shape or `t.len()` is not the
/// batch size; [`Error::InvalidConfig`] if a timestep is outside `1..=T`.
///
/// # Example
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::models::ddpm::{BetaSchedule, NoiseSchedule, q_sample};
///
/// let device = elbo::device::default_device();
/// let schedule = NoiseSchedule::new(&BetaSchedule::linear_default(1000), 1000)?;
/// let x0 = Tensor::<2>::ones([2, 4], &device);
/// let noise = Tensor::<2>::zeros([2, 4], &device);
/// let xt = q_sample(&schedule, x0, &[1, 1000], noise)?;
/// let v: Vec<f32> = xt.try_into_vec_as::<f32>().unwrap();
/// assert!((v[0] as f64 - schedule.alpha_bar(1).sqrt()).abs() < 1e-6);
/// assert!((v[4] as f64 - schedule.alpha_bar(1000).sqrt()).abs() < 1e-6);
/// # Ok::<(), elbo::Error>(())
/// ```
pub fn q_sample(
    schedule: &NoiseSchedule,
    x0: Tensor<2>,
    t: &[usize],
    noise: Tensor<2>,
) -> Result<Tensor<2>> {
    let (a, b) = columns(
        schedule,
        "q_sample",
        &x0,
        &[("noise", &noise)],
        t,
        f64::sqrt,
        |ab| (1.0 - ab).sqrt(),
    )?;
    Ok(x0 * a + noise * b)
}

/// The forward posterior `q(x_{t−1} | x_t, x_0) = N(mean, exp(log_var))`, row by row.
///
/// # Formula
/// ```text
/// mean    = β_t √ᾱ_{t−1} / (1 − ᾱ_t) · x_0 + (1 − ᾱ_{t−1}) √α_t / (1 − ᾱ_t) · x_t   (Ho et al. 2020, eq. 7)
/// log_var = ln β̃_t,   β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)                        (Ho et al. 2020, eq. 7)
/// ```
/// At `t = 1`, `β̃_1 = 0` and `log_var` is `ln β̃_2` instead (see
/// [`NoiseSchedule::posterior_log_variance_clipped`]); the mean is then `x_0`. `log_var` has
/// the shape of `mean` (`[batch, d]`, constant along each row).
///
/// # Errors
/// [`Error::ShapeMismatch`] if `xt` does not have `x0`'s shape or `t.len()` is not the batch
/// size; [`Error::InvalidConfig`] if a timestep is outside `1..=T`.
///
/// # Example
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::models::ddpm::{BetaSchedule, NoiseSchedule, q_posterior};
///
/// let device = elbo::device::default_device();
/// let schedule = NoiseSchedule::new(&BetaSchedule::linear_default(1000), 1000)?;
/// let x0 = Tensor::<2>::ones([2, 3], &device);
/// let xt = Tensor::<2>::zeros([2, 3], &device);
/// let (mean, log_var) = q_posterior(&schedule, x0, xt, &[1, 500])?;
/// assert_eq!(log_var.dims(), [2, 3]);
/// let m: Vec<f32> = mean.try_into_vec_as::<f32>().unwrap();
/// assert_eq!(m[0], 1.0); // at t = 1 the posterior mean is x_0
/// # Ok::<(), elbo::Error>(())
/// ```
pub fn q_posterior(
    schedule: &NoiseSchedule,
    x0: Tensor<2>,
    xt: Tensor<2>,
    t: &[usize],
) -> Result<(Tensor<2>, Tensor<2>)> {
    check_same_shape("q_posterior", "xt", &x0, &xt)?;
    check_steps(schedule, "q_posterior", &x0, t)?;
    let device = x0.device();
    let dims = x0.dims();
    let coef1: Vec<f64> = t
        .iter()
        .map(|&s| schedule.posterior_mean_coef1(s))
        .collect();
    let coef2: Vec<f64> = t
        .iter()
        .map(|&s| schedule.posterior_mean_coef2(s))
        .collect();
    let log_var: Vec<f64> = t
        .iter()
        .map(|&s| schedule.posterior_log_variance_clipped(s))
        .collect();
    let mean = x0 * per_row(&coef1, &device) + xt * per_row(&coef2, &device);
    let log_var = per_row(&log_var, &device).expand(dims);
    Ok((mean, log_var))
}

/// The noise `ε` that takes `x_0` to `x_t` (inverse of [`q_sample`] in `ε`).
///
/// # Formula
/// ```text
/// ε = (x_t − √ᾱ_t · x_0) / √(1 − ᾱ_t)                                          (Ho et al. 2020, eq. 4)
/// ```
///
/// # Errors
/// As [`q_sample`].
pub fn eps_from_x0(
    schedule: &NoiseSchedule,
    xt: Tensor<2>,
    x0: Tensor<2>,
    t: &[usize],
) -> Result<Tensor<2>> {
    let (a, b) = columns(
        schedule,
        "eps_from_x0",
        &xt,
        &[("x0", &x0)],
        t,
        |ab| 1.0 / (1.0 - ab).sqrt(),
        |ab| ab.sqrt() / (1.0 - ab).sqrt(),
    )?;
    Ok(xt * a - x0 * b)
}

/// The data `x_0` that noise `ε` takes to `x_t` (inverse of [`q_sample`] in `x_0`): how an
/// `ε`-prediction becomes an `x_0`-prediction.
///
/// # Formula
/// ```text
/// x_0 = (x_t − √(1 − ᾱ_t) · ε) / √ᾱ_t = √(1/ᾱ_t) · x_t − √(1/ᾱ_t − 1) · ε       (Ho et al. 2020, eq. 4; eq. 15)
/// ```
///
/// # Errors
/// As [`q_sample`].
pub fn x0_from_eps(
    schedule: &NoiseSchedule,
    xt: Tensor<2>,
    eps: Tensor<2>,
    t: &[usize],
) -> Result<Tensor<2>> {
    let (a, b) = columns(
        schedule,
        "x0_from_eps",
        &xt,
        &[("eps", &eps)],
        t,
        |ab| (1.0 / ab).sqrt(),
        |ab| (1.0 / ab - 1.0).sqrt(),
    )?;
    Ok(xt * a - eps * b)
}

/// The velocity `v` of `x_0` and `ε` at step `t` (Salimans & Ho 2022, §4, app. D).
///
/// # Formula
/// ```text
/// v = √ᾱ_t · ε − √(1 − ᾱ_t) · x_0                                          (Salimans & Ho 2022, §4, app. D)
/// ```
/// With `φ = arccos √ᾱ_t`, `(x_t, v)` is `(x_0, ε)` rotated by `φ`.
///
/// # Errors
/// As [`q_sample`] (`eps` must have `x0`'s shape).
pub fn v_from(
    schedule: &NoiseSchedule,
    x0: Tensor<2>,
    eps: Tensor<2>,
    t: &[usize],
) -> Result<Tensor<2>> {
    let (a, b) = columns(
        schedule,
        "v_from",
        &x0,
        &[("eps", &eps)],
        t,
        f64::sqrt,
        |ab| (1.0 - ab).sqrt(),
    )?;
    Ok(eps * a - x0 * b)
}

/// The data `x_0` from `x_t` and a velocity `v`: how a `v`-prediction becomes an
/// `x_0`-prediction.
///
/// # Formula
/// ```text
/// x_0 = √ᾱ_t · x_t − √(1 − ᾱ_t) · v                                        (Salimans & Ho 2022, §4, app. D)
/// ```
///
/// # Errors
/// As [`q_sample`] (`v` must have `xt`'s shape).
pub fn x0_from_v(
    schedule: &NoiseSchedule,
    xt: Tensor<2>,
    v: Tensor<2>,
    t: &[usize],
) -> Result<Tensor<2>> {
    let (a, b) = columns(
        schedule,
        "x0_from_v",
        &xt,
        &[("v", &v)],
        t,
        f64::sqrt,
        |ab| (1.0 - ab).sqrt(),
    )?;
    Ok(xt * a - v * b)
}

/// The noise `ε` from `x_t` and a velocity `v`: how a `v`-prediction becomes an
/// `ε`-prediction.
///
/// # Formula
/// ```text
/// ε = √(1 − ᾱ_t) · x_t + √ᾱ_t · v                                          (Salimans & Ho 2022, §4, app. D)
/// ```
///
/// # Errors
/// As [`q_sample`] (`v` must have `xt`'s shape).
pub fn eps_from_v(
    schedule: &NoiseSchedule,
    xt: Tensor<2>,
    v: Tensor<2>,
    t: &[usize],
) -> Result<Tensor<2>> {
    let (a, b) = columns(
        schedule,
        "eps_from_v",
        &xt,
        &[("v", &v)],
        t,
        |ab| (1.0 - ab).sqrt(),
        f64::sqrt,
    )?;
    Ok(xt * a + v * b)
}
