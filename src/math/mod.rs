//! Numerical building blocks that burn does not provide.

mod bessel;
mod digamma;
mod lgamma;
mod log_sum_exp;

pub use bessel::{bessel_ratio, log_bessel_i, log_bessel_i_derivative};
pub use digamma::{digamma, trigamma};
pub use lgamma::lgamma;
pub use log_sum_exp::{log_mean_exp, log_mean_exp_f64, log_sum_exp, log_sum_exp_f64};

/// `ln(2π)`.
pub const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// `ln 2`, to turn nats into bits.
pub const LN_2: f64 = std::f64::consts::LN_2;
