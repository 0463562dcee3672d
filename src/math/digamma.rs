//! The digamma and trigamma functions `ψ(x) = d/dx ln Γ(x)` and `ψ'(x)`.

/// `ψ(x)` for `x > 0`, in f64 (NaN otherwise); about 1e-14 absolute.
///
/// # Formula
/// ```text
/// ψ(x) = ψ(x + 1) − 1/x                                   (recurrence, up to x ≥ 10)
/// ψ(x) ≈ ln x − 1/(2x) − 1/(12x²) + 1/(120x⁴) − 1/(252x⁶) + 1/(240x⁸) − 1/(132x¹⁰)
/// ```
/// (Abramowitz & Stegun 6.3.5 and 6.3.18.)
///
/// ```
/// // ψ(1) = −γ (Euler–Mascheroni)
/// assert!((elbo::math::digamma(1.0) + 0.577_215_664_901_532_9).abs() < 1e-13);
/// ```
pub fn digamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    let mut x = x;
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let r = 1.0 / (x * x);
    let series =
        r * (1.0 / 12.0 - r * (1.0 / 120.0 - r * (1.0 / 252.0 - r * (1.0 / 240.0 - r / 132.0))));
    shift + x.ln() - 0.5 / x - series
}

/// `ψ'(x)` for `x > 0`, in f64 (NaN otherwise); about 1e-14 relative.
///
/// # Formula
/// ```text
/// ψ'(x) = ψ'(x + 1) + 1/x²                                (recurrence, up to x ≥ 10)
/// ψ'(x) ≈ 1/x + 1/(2x²) + 1/(6x³) − 1/(30x⁵) + 1/(42x⁷) − 1/(30x⁹) + 5/(66x¹¹)
/// ```
/// (Abramowitz & Stegun 6.4.6 and 6.4.12.)
pub fn trigamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    let mut x = x;
    let mut shift = 0.0;
    while x < 10.0 {
        shift += 1.0 / (x * x);
        x += 1.0;
    }
    let r = 1.0 / (x * x);
    let series = 1.0 / x
        + r / 2.0
        + r / x
            * (1.0 / 6.0 - r * (1.0 / 30.0 - r * (1.0 / 42.0 - r * (1.0 / 30.0 - r * 5.0 / 66.0))));
    shift + series
}
