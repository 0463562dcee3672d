//! The modified Bessel function of the first kind, in log space, and the ratio
//! `A_d(κ) = I_{d/2}(κ) / I_{d/2−1}(κ)` that the von Mises–Fisher distribution needs.
//!
//! # Method
//!
//! For order `ν ≥ 50`, Debye's uniform asymptotic expansion (Abramowitz & Stegun 9.7.7,
//! coefficients 9.3.9–9.3.10), with `z = x/ν`, `t = 1/√(1 + z²)`,
//! `η = √(1 + z²) + ln(z / (1 + √(1 + z²)))`:
//!
//! ```text
//! I_ν(νz) ≈ e^{νη} / ( √(2πν) (1 + z²)^{1/4} ) · Σ_{k=0..4} u_k(t) / ν^k
//! ```
//! The truncation error is `O(u_5 / ν^5)`, below 1e-10 relative at `ν = 50` and uniform in
//! `z ∈ (0, ∞)`, so it covers `x` from 1e-4 to 1e5 without overflow (it is a log).
//!
//! For `ν < 50` the order is raised by an integer `m` to `ν + m ≥ 50`, and the recurrence
//! `I_{ν−1}(x) = I_{ν+1}(x) + (2ν/x) I_ν(x)` is run downward on the ratio
//! `r_ν = I_{ν+1}/I_ν`, which is the stable direction:
//!
//! ```text
//! r_{ν−1} = 1 / (r_ν + 2ν/x),      ln I_{ν−1} = ln I_ν + ln(r_ν + 2ν/x)
//! ```

/// Orders at or above this use Debye's expansion directly.
const DEBYE_MIN_ORDER: f64 = 50.0;

fn debye_terms(t: f64, nu: f64) -> f64 {
    let t2 = t * t;
    let u1 = t * (3.0 - 5.0 * t2) / 24.0;
    let u2 = t2 * (81.0 - 462.0 * t2 + 385.0 * t2 * t2) / 1152.0;
    let u3 = t * t2 * (30375.0 - 369603.0 * t2 + 765765.0 * t2 * t2 - 425425.0 * t2 * t2 * t2)
        / 414720.0;
    let t4 = t2 * t2;
    let u4 = t4
        * (4465125.0 - 94121676.0 * t2 + 349922430.0 * t4 - 446185740.0 * t4 * t2
            + 185910725.0 * t4 * t4)
        / 39813120.0;
    1.0 + u1 / nu + u2 / (nu * nu) + u3 / (nu * nu * nu) + u4 / (nu * nu * nu * nu)
}

/// `ln I_ν(x)` by Debye's expansion; accurate for `ν ≥ 50`.
fn log_bessel_i_debye(nu: f64, x: f64) -> f64 {
    let z = x / nu;
    let s = (1.0 + z * z).sqrt();
    // ln(z / (1 + s)) written to stay accurate for tiny z.
    let eta = s + (z / (1.0 + s)).ln();
    let t = 1.0 / s;
    nu * eta - 0.5 * (2.0 * std::f64::consts::PI * nu).ln() - 0.5 * s.ln() + debye_terms(t, nu).ln()
}

/// `(ln I_ν(x), I_{ν+1}(x) / I_ν(x))` for `ν ≥ 0`, `x > 0`.
fn log_bessel_i_and_ratio(nu: f64, x: f64) -> (f64, f64) {
    let m = if nu >= DEBYE_MIN_ORDER {
        0
    } else {
        (DEBYE_MIN_ORDER - nu).ceil() as usize
    };
    let top = nu + m as f64;
    let log_i = log_bessel_i_debye(top, x);
    let log_i_next = log_bessel_i_debye(top + 1.0, x);
    let mut ratio = (log_i_next - log_i).exp();
    let mut log_i = log_i;
    let mut order = top;
    for _ in 0..m {
        // From order `order` down to `order − 1`.
        let step = ratio + 2.0 * order / x;
        log_i += step.ln();
        ratio = 1.0 / step;
        order -= 1.0;
    }
    (log_i, ratio)
}

/// `ln I_ν(x)`, the log of the modified Bessel function of the first kind, in f64.
///
/// Accurate to about 1e-9 relative over `ν ∈ [0, 1000]`, `x ∈ [1e-4, 1e5]` (tested against
/// mpmath), with no overflow or underflow. NaN for `ν < 0`, `x ≤ 0` or NaN input.
///
/// ```
/// use elbo::math::log_bessel_i;
/// // I_{1/2}(x) = √(2/(πx)) sinh x
/// let x = 3.0f64;
/// let exact = ((2.0 / (std::f64::consts::PI * x)).sqrt() * x.sinh()).ln();
/// assert!((log_bessel_i(0.5, x) - exact).abs() < 1e-9);
/// ```
pub fn log_bessel_i(nu: f64, x: f64) -> f64 {
    if !(nu >= 0.0 && x > 0.0 && nu.is_finite() && x.is_finite()) {
        return f64::NAN;
    }
    log_bessel_i_and_ratio(nu, x).0
}

/// `A_d(κ) = I_{d/2}(κ) / I_{d/2−1}(κ)`, the mean resultant length of a von Mises–Fisher
/// distribution on `S^{d−1}` with concentration `κ`: `E[μᵀz] = A_d(κ)`.
///
/// NaN for `d < 2`, `κ ≤ 0` or NaN. Computed directly as a ratio (not as a difference of
/// logs), so it is accurate also where `A_d(κ) → 1` (large κ).
///
/// ```
/// use elbo::math::bessel_ratio;
/// // d = 3: A_3(κ) = coth κ − 1/κ
/// let k = 2.5f64;
/// assert!((bessel_ratio(3, k) - (1.0 / k.tanh() - 1.0 / k)).abs() < 1e-12);
/// ```
pub fn bessel_ratio(d: usize, kappa: f64) -> f64 {
    if d < 2 || !(kappa > 0.0 && kappa.is_finite()) {
        return f64::NAN;
    }
    log_bessel_i_and_ratio(d as f64 / 2.0 - 1.0, kappa).1
}

/// `d/dx ln I_ν(x) = I_{ν+1}(x)/I_ν(x) + ν/x`.
pub fn log_bessel_i_derivative(nu: f64, x: f64) -> f64 {
    if !(nu >= 0.0 && x > 0.0) {
        return f64::NAN;
    }
    log_bessel_i_and_ratio(nu, x).1 + nu / x
}
