//! Numerically stable log-sum-exp and log-mean-exp.
//!
//! # Formula
//!
//! ```text
//! LSE(x) = m + ln Σ_j exp(x_j − m),    m = max_j x_j
//! LME(x) = LSE(x) − ln n
//! ```
//!
//! Subtracting the maximum keeps every `exp` in `(0, 1]`, so the result is exact to the
//! float format at any magnitude (`±1e4` included). If every entry is `−∞` the result is
//! `−∞`, not NaN.

use burn::tensor::Tensor;

/// `ln Σ_j exp(x_j)` along `dim`, which is kept with size 1 (as burn's reductions do).
///
/// Gradients flow through `x` (the maximum is treated as a constant, which leaves the
/// value and its gradient unchanged).
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::math::log_sum_exp;
///
/// let device = elbo::device::default_device();
/// let x = Tensor::<2>::from_floats([[1.0e4, 1.0e4]], &device);
/// let lse: f32 = log_sum_exp(x, 1).into_scalar();
/// assert!((lse - (1.0e4 + std::f32::consts::LN_2)).abs() < 1e-3);
/// ```
pub fn log_sum_exp<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let max = x.clone().detach().max_dim(dim);
    // A row that is entirely -inf has max -inf: shift by 0 there so that x - max is not NaN.
    let max = max.clone().mask_fill(max.is_inf(), 0.0);
    let sum = (x - max.clone()).exp().sum_dim(dim);
    sum.log() + max
}

/// `ln( (1/n) Σ_j exp(x_j) )` along `dim` of size `n`, kept with size 1.
pub fn log_mean_exp<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let n = x.dims()[dim] as f64;
    log_sum_exp(x, dim).sub_scalar(n.ln())
}

/// `ln Σ_j exp(x_j)` of a host slice, in f64. `−∞` for an empty slice.
pub fn log_sum_exp_f64(x: &[f64]) -> f64 {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + x.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// `ln( (1/n) Σ_j exp(x_j) )` of a host slice, in f64.
pub fn log_mean_exp_f64(x: &[f64]) -> f64 {
    log_sum_exp_f64(x) - (x.len() as f64).ln()
}
