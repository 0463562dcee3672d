//! The log-gamma function.

/// Lanczos coefficients for g = 7, n = 9 (Godfrey's set, as in Numerical Recipes 3rd ed.
/// and many libm-free implementations): relative error below 1e-15 for `x ≥ 0.5`.
const LANCZOS_G: f64 = 7.0;
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// `ln Γ(x)` for `x > 0`, in f64 (NaN for `x ≤ 0` or NaN).
///
/// # Formula
/// ```text
/// Γ(x) = √(2π) (x + g − ½)^{x − ½} e^{−(x + g − ½)} A_g(x)          (Lanczos 1964)
/// Γ(x) = π / (sin(πx) Γ(1 − x))                                      (reflection, x < ½)
/// ```
///
/// ```
/// use elbo::math::lgamma;
/// assert!((lgamma(5.0) - 24f64.ln()).abs() < 1e-13);
/// assert!((lgamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-14);
/// ```
pub fn lgamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x < 0.5 {
        // Γ(x)Γ(1 − x) = π / sin(πx), sin(πx) > 0 on (0, ½).
        return std::f64::consts::PI.ln() - (std::f64::consts::PI * x).sin().ln() - lgamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = LANCZOS[0];
    let t = x + LANCZOS_G + 0.5;
    for (i, c) in LANCZOS.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}
