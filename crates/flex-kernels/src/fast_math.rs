//! `e^x` and `ln x` in f32 without branches, so that loops over slices vectorise (glibc's
//! `expf` and `logf` are a call per element), for the sigmoid and softplus inside the
//! fused kernels.

/// `e^x` to within 2 ulp for `x` in `[−87.3, 88]`; below, the result is `e^{−87.3}`
/// (about 1.2e-38, instead of a smaller subnormal or 0), above, `e^{88}`; NaN stays NaN.
///
/// # Formula
/// ```text
/// n = round(x / ln 2),   r = x − n ln 2   (|r| ≤ ln 2 / 2; ln 2 in two parts, Cody & Waite)
/// e^x = 2^n · e^r,   e^r ≈ 1 + r + r² P(r)   (P: the degree-5 minimax polynomial of
///                                             Cephes' expf, Moshier 1989)
/// ```
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 · 2^23 rounds to the nearest integer in f32.
    const ROUND: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.336_55, 88.0);
    let t = clamped * LOG2_E + ROUND;
    let n = t - ROUND;
    let r = (clamped - n * LN2_HI) - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e_r = p * r * r + r + 1.0;
    // 2^n from its exponent bits, n + 127 in 1..=254 after the clamp. t = 1.5·2^23 + n has
    // n in its low mantissa bits, so integer arithmetic on the bits gives n without a
    // float-to-int conversion (which would not vectorise).
    let n_bits = t.to_bits().wrapping_sub(ROUND.to_bits());
    let two_n = f32::from_bits(n_bits.wrapping_add(127) << 23);
    if x.is_nan() { x } else { e_r * two_n }
}

/// `σ(u) = 1 / (1 + e^{−u})` with [`exp`]; within 3 ulp of the f64 value, and exactly 1
/// above `u ≈ 17` where that is the nearest f32.
#[inline(always)]
pub(crate) fn sigmoid(u: f32) -> f32 {
    1.0 / (1.0 + exp(-u))
}

/// `ln x` to within 2 ulp (absolute error below 1.2e-7 near `x = 1`) for positive normal
/// `x`; not meant for zero, subnormals, negatives, infinities or NaN.
///
/// # Formula
/// ```text
/// x = 2^e · m,  m ∈ [√½, √2)        (the exponent and mantissa bits)
/// ln x = e ln 2 + ln(1 + f),  f = m − 1,
/// ln(1 + f) ≈ f − f²/2 + f³ Q(f)     (Q: the degree-8 polynomial of Cephes' logf)
/// ```
#[inline(always)]
pub(crate) fn ln(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    // m ∈ [0.5, 1) and x = 2^(e + 1)·m … folded into [√½, √2) below.
    let exponent = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x807f_ffff) | 0x3f00_0000);
    let small = m < SQRT_HALF;
    let e = (exponent - small as i32) as f32;
    let f = if small { m + m - 1.0 } else { m - 1.0 };
    let z = f * f;
    let q = (((((((7.037_683_6e-2 * f - 1.151_461_1e-1) * f + 1.167_699_9e-1) * f
        - 1.242_014_1e-1)
        * f
        + 1.424_932_3e-1)
        * f
        - 1.666_805_8e-1)
        * f
        + 2.000_071_4e-1)
        * f
        - 2.499_999_4e-1)
        * f
        + 0.333_333_3;
    let y = q * f * z - 2.121_944_4e-4 * e - 0.5 * z;
    f + y + 0.693_359_4 * e
}

/// `softplus(l) = ln(1 + e^l) = max(l, 0) + ln(1 + e^{−|l|})`, overflow-free, with
/// [`exp`] and [`ln`]: absolute error below 3e-7.
#[inline(always)]
pub(crate) fn softplus(l: f32) -> f32 {
    l.max(0.0) + ln(1.0 + exp(-l.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error against f64 `exp` on 2 million points of [−87.3, 88]: at most 2 ulp
    /// (2 · 2^−23 ≈ 2.4e-7) of the correctly rounded value.
    #[test]
    fn exp_is_within_two_ulp() {
        let (lo, hi) = (-87.3f64, 88.0f64);
        let n = 2_000_000;
        let mut worst = 0f64;
        for i in 0..=n {
            let x = (lo + (hi - lo) * i as f64 / n as f64) as f32;
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(
            worst < 2.0 * f32::EPSILON as f64,
            "worst relative error {worst:e}"
        );
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) < 2e-38 && exp(-1000.0) > 0.0);
        assert!(exp(1000.0).is_finite());
    }

    /// `ln` against f64 on a geometric grid over [1e-30, 1e30]: within 2 ulp of the value
    /// (1 ulp = 2^−23 relative), and within 1.2e-7 absolute on [0.5, 2] where the value
    /// is near 0.
    #[test]
    fn ln_is_within_two_ulp() {
        let n = 2_000_000;
        for i in 0..=n {
            let x = (1e-30f64 * (1e60f64).powf(i as f64 / n as f64)) as f32;
            let want = (x as f64).ln();
            let got = ln(x) as f64;
            let tolerance = (2.0 * f32::EPSILON as f64 * want.abs()).max(1.2e-7);
            assert!(
                (got - want).abs() <= tolerance,
                "ln({x}) = {got}, want {want}"
            );
        }
        for i in 0..=n {
            let x = 0.5 + 1.5 * i as f32 / n as f32;
            let want = (x as f64).ln();
            assert!((ln(x) as f64 - want).abs() < 1.2e-7, "ln({x})");
        }
    }

    /// `softplus` against f64 `ln(1 + e^l)` on [−100, 100]: absolute error below 3e-7
    /// plus 2 ulp of the value (for large `l`, where softplus(l) ≈ l).
    #[test]
    fn softplus_is_accurate() {
        for i in 0..=2_000_000 {
            let l = -100.0 + i as f32 * 1e-4;
            let want = (l as f64).max(0.0) + (-(l as f64).abs()).exp().ln_1p();
            let got = softplus(l) as f64;
            let tolerance = 3e-7 + 2.0 * f32::EPSILON as f64 * want.abs();
            assert!(
                (got - want).abs() <= tolerance,
                "softplus({l}) = {got}, want {want}"
            );
        }
    }

    /// σ against f64 on [−30, 30], relative error within 3 ulp.
    #[test]
    fn sigmoid_is_within_three_ulp() {
        for i in 0..=600_000 {
            let u = -30.0 + i as f32 * 1e-4;
            let want = 1.0 / (1.0 + (-(u as f64)).exp());
            let got = sigmoid(u) as f64;
            assert!(
                ((got - want) / want).abs() < 3.0 * f32::EPSILON as f64,
                "σ({u}) = {got}, want {want}"
            );
        }
    }
}
