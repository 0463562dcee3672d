//! The discretized Normal over 8-bit data in `[−1, 1]`: DDPM's decoder `p(x_0 | x_1)`.

use std::f64::consts::FRAC_1_SQRT_2;

use burn::tensor::{Distribution as TensorDistribution, Tensor};

use super::sum_event_dims;
use crate::traits::{Batch, Distribution};
use crate::{Error, Result};

/// Half the width of one grey-level bin in `[−1, 1]` space: `1/255`.
const HALF_BIN: f64 = 1.0 / 255.0;
/// `x < −EDGE` is the bottom bin (`x = −1`), `x > EDGE` the top bin (`x = 1`), as in Ho et
/// al.'s reference code.
const EDGE: f64 = 0.999;
/// Bin masses are clamped below at this before the log, as in Ho et al.'s reference code.
const MIN_MASS: f64 = 1e-12;
/// `Φ(z)` comes from burn's `erf` for `z ≥ TAIL_Z` and from [`erfc_tail`] below it.
const TAIL_Z: f64 = -1.0;
/// Grid steps per unit in `[−1, 1]` space: `x = k / STEPS − 1`, `k = 0..=255`.
const STEPS: f64 = 127.5;

/// A batch of discretized Normals over flat 8-bit data `[batch, d]` scaled to `[−1, 1]`:
/// the decoder `p(x_0 | x_1)` of DDPM (Ho et al. 2020, "Denoising Diffusion Probabilistic
/// Models", sec. 3.3, eq. 13).
///
/// Values are the 256 grey levels `x = 2k/255 − 1`, `k ∈ {0, .., 255}` (the bins have
/// half-width `1/255`). Each element has its own Normal `N(μ, σ²)`, `σ = exp(log_scale)`,
/// integrated over its bin; the two edge bins collect the tails, so the 256 masses of each
/// element sum to 1. Elements are independent and [`log_prob`](Distribution::log_prob)
/// sums over `d`. The log-scale is not clamped (the reference code does not clamp it).
///
/// # Formula
///
/// ```text
/// p(x_0 | x_1) = Π_i ∫_{δ₋(x_0^i)}^{δ₊(x_0^i)} N(t; μ^i, σ_i²) dt        (Ho et al. 2020, eq. 13)
///
/// δ₊(x) = +∞ if x = 1,  x + 1/255 otherwise
/// δ₋(x) = −∞ if x = −1, x − 1/255 otherwise
/// ```
///
/// With `u = (x + 1/255 − μ)/σ`, `l = (x − 1/255 − μ)/σ` and `Φ(z) = ½(1 + erf(z/√2))`,
/// each element contributes, with the edge selection (`x < −0.999`, `x > 0.999`) and the
/// floor of the reference `discretized_gaussian_log_likelihood` (Ho et al.'s
/// `diffusion_tf/utils.py`):
///
/// ```text
/// ln P(−1) = ln max(Φ(u), 1e-12)              bottom bin: all mass below −1 + 1/255
/// ln P(+1) = ln max(Φ(−l), 1e-12)             top bin: 1 − Φ(l), without cancellation
/// ln P(x)  = ln max(Φ(u) − Φ(l), 1e-12)       interior bins
/// ```
///
/// **The floor.** Like the reference, a bin whose mass is below `1e-12` scores
/// `ln 1e-12 ≈ −27.63` nats for that element, and has zero gradient there: a value more
/// than about 7σ from its mean costs at most 27.63 nats per dimension (so the bound is
/// slightly optimistic for such values), and the floored masses no longer sum exactly
/// to 1 (the excess is below `256 · 1e-12` per element). The floor keeps the values
/// comparable with the paper's; it matters only where the model is badly wrong.
///
/// **Φ, and the tails, more accurately than the reference.** The reference evaluates Φ
/// with the tanh approximation `½(1 + tanh(√(2/π)(z + 0.044715 z³)))` (absolute error up
/// to 1.8e-4, and 0.55× the true Φ at `z = −4`); eq. 13 asks for the exact Normal CDF,
/// which is what this type computes, so its values differ from the reference's (by up to
/// 7e-3 nats per element on bins of mass above 1e-2, and up to ~1.3 nats on bins of
/// mass 1e-6, computed in f64 for `log σ ∈ [−7, 1]`). And even with the exact `erf`,
/// `1 + erf(z/√2)` in `f32` cannot represent `Φ(z)` for `z < −5.4` (it rounds to 0 or to a
/// multiple of `3e-8`) and is already 4 % off at `z = −5`. Here:
///
/// - `Φ(z)` for `z < −1` is `½ erfc(−z/√2)` from a Chebyshev fit of `ln erfc` (Press et
///   al., *Numerical Recipes*, `erfcc`; the fit's relative error is below `1.2e-7`, and
///   `f32` rounding of `z²/2` adds up to `1.5e-6` above the floor); for `z ≥ −1` it is
///   burn's `erf` (relative error below `2e-7` there). So `Φ` is accurate in *relative*
///   terms for every `z` down to `f32` underflow, which also makes the two edge bins
///   accurate down to the floor.
/// - An interior bin with both bounds in the upper tail (`l > 0`) uses the symmetric form
///   `Φ(−l) − Φ(−u)`: the difference of two small, accurately known numbers instead of two
///   numbers that both round to 1. A bin in the lower tail (`u ≤ 0`) already has this
///   form, and a bin that straddles the mean has a mass of order 1 either way.
///
/// Interior masses thus keep about 5 significant digits wherever the bin is not narrow
/// compared with its distance from the mean (the subtraction loses `log₁₀ (Φ(−l)/P)`
/// digits, at most about 3 for `σ ≤ e`); against an f64 reference the log-probabilities
/// are within `7e-6 · max(|ln P|, 1)` at every grey level for `log σ ∈ [−7, 1]`.
///
/// # Example
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::Distribution;
/// use elbo::distributions::DiscretizedNormal;
///
/// let device = elbo::device::default_device();
/// // The decoder's mean and log-variance for 2 flattened 2×2 images.
/// let mean = Tensor::<2>::zeros([2, 4], &device);
/// let log_var = Tensor::<2>::full([2, 4], -6.0, &device);
/// let p = DiscretizedNormal::from_log_variance(mean, log_var)?;
/// let x = Tensor::<2>::full([2, 4], 1.0 / 255.0, &device); // grey level k = 128
/// p.check_value(&x)?;
/// let lp: Vec<f32> = p.log_prob(&x).try_into_vec_as::<f32>().unwrap();
/// assert!(lp[0] < 0.0 && lp[0] > -4.0 * 27.7);
/// let draw = p.sample(); // grey levels 2k/255 − 1
/// assert_eq!(draw.dims(), [2, 4]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct DiscretizedNormal {
    /// `[batch, d]`, in `[−1, 1]` space (not clamped).
    mean: Tensor<2>,
    /// `[batch, d]`, `ln σ`.
    log_scale: Tensor<2>,
}

/// The second parameter has the mean's shape `[batch, d]`, and neither dimension is 0.
fn check_shapes(context: &str, mean: &Tensor<2>, other: &Tensor<2>) -> Result<()> {
    let dims = mean.dims();
    if other.dims() != dims {
        return Err(Error::shape(
            context,
            format!("the mean's shape {dims:?} ([batch, d])"),
            other.dims(),
        ));
    }
    if dims.contains(&0) {
        return Err(Error::shape(
            "DiscretizedNormal (mean)",
            "[batch, d] with at least 1 row and 1 dimension (flatten images to [batch, C·H·W])",
            dims,
        ));
    }
    Ok(())
}

impl DiscretizedNormal {
    /// A batch of discretized Normals with means `μ` (in `[−1, 1]` space) and log-scales
    /// `ln σ`, both of shape `[batch, d]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the shapes differ or either dimension is 0.
    pub fn new(mean: Tensor<2>, log_scale: Tensor<2>) -> Result<Self> {
        check_shapes("DiscretizedNormal::new (log_scale)", &mean, &log_scale)?;
        Ok(Self { mean, log_scale })
    }

    /// From the mean and the log-variance `ln σ²` (what DDPM's schedule and variance head
    /// give): [`new`](Self::new) with `log_scale = ½ log_var`.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_log_variance(mean: Tensor<2>, log_var: Tensor<2>) -> Result<Self> {
        // Checked before any arithmetic: an empty tensor must not reach the backend.
        check_shapes(
            "DiscretizedNormal::from_log_variance (log_var)",
            &mean,
            &log_var,
        )?;
        Ok(Self {
            mean,
            log_scale: log_var.mul_scalar(0.5),
        })
    }

    /// The means `μ` of the underlying Normals, in `[−1, 1]` space (not clamped).
    pub fn loc(&self) -> Tensor<2> {
        self.mean.clone()
    }

    /// The log-scales `ln σ`.
    pub fn log_scale(&self) -> Tensor<2> {
        self.log_scale.clone()
    }

    /// The scales `σ = exp(log_scale)`.
    pub fn scale(&self) -> Tensor<2> {
        self.log_scale.clone().exp()
    }

    /// The shape of one batch of values, `[batch, d]`.
    pub fn dims(&self) -> [usize; 2] {
        self.mean.dims()
    }

    /// Checks that `x` can be scored: shape [`dims`](Self::dims), and every value a finite
    /// grey level `2k/255 − 1` in `[−1, 1]` (within `1e-3/127.5`).
    /// [`log_prob`](Distribution::log_prob) does not check (the trait returns no `Result`,
    /// and the value check reads one scalar back from the device); call this on data you
    /// do not trust.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for a wrong shape; [`Error::NonFinite`] for NaN or infinite
    /// values; [`Error::InvalidConfig`] for values off the grid.
    pub fn check_value(&self, x: &Tensor<2>) -> Result<()> {
        if x.dims() != self.dims() {
            return Err(Error::shape(
                "DiscretizedNormal (value)",
                format!("{:?} ([batch, d])", self.dims()),
                x.dims(),
            ));
        }
        let x = x.clone().detach();
        let non_finite: i64 = x.clone().is_finite().bool_not().int().sum().into_scalar();
        if non_finite > 0 {
            return Err(Error::NonFinite {
                context: "DiscretizedNormal (value)".into(),
                hint: format!("{non_finite} values are NaN or infinite; give 2k/255 − 1"),
            });
        }
        let steps = x.add_scalar(1.0).mul_scalar(STEPS);
        let off_grid = (steps.clone() - steps.clone().round())
            .abs()
            .greater_elem(1e-3);
        let out_of_range = steps
            .clone()
            .lower_elem(-1e-3)
            .bool_or(steps.greater_elem(255.0 + 1e-3));
        let bad: i64 = off_grid.bool_or(out_of_range).int().sum().into_scalar();
        if bad > 0 {
            return Err(Error::config(
                "x",
                format!("{bad} values not of the form 2k/255 − 1"),
                "8-bit data scaled to [−1, 1]: 2k/255 − 1 for integers k in 0..=255 \
                 (map a byte b to b/127.5 − 1)",
            ));
        }
        Ok(())
    }

    /// `ln P(x_i)` for every element, shape `[batch, d]` (see the type's formula);
    /// [`log_prob`](Distribution::log_prob) is its sum over `d`. Every entry is at least
    /// `ln 1e-12`.
    pub fn log_prob_per_dim(&self, x: &Tensor<2>) -> Tensor<2> {
        let centred = x.clone() - self.mean.clone();
        let inv_scale = self.log_scale.clone().neg().exp();
        let upper = centred.clone().add_scalar(HALF_BIN) * inv_scale.clone();
        let lower = centred.sub_scalar(HALF_BIN) * inv_scale;

        // Interior: Φ(u) − Φ(l), or Φ(−l) − Φ(−u) when both bounds are in the upper tail.
        let upper_tail = lower.clone().greater_elem(0.0);
        let hi = upper
            .clone()
            .mask_where(upper_tail.clone(), lower.clone().neg());
        let lo = lower.clone().mask_where(upper_tail, upper.clone().neg());
        let interior = std_normal_cdf(hi) - std_normal_cdf(lo);
        let bottom = std_normal_cdf(upper);
        let top = std_normal_cdf(lower.neg());

        interior
            .mask_where(x.clone().lower_elem(-EDGE), bottom)
            .mask_where(x.clone().greater_elem(EDGE), top)
            .clamp_min(MIN_MASS)
            .log()
    }

    /// The draw for given standard-normal noise `ε` (not differentiable: it rounds).
    ///
    /// # Formula
    /// ```text
    /// y = clamp(μ + σ·ε, −1, 1)
    /// x = round(127.5 · (y + 1)) / 127.5 − 1          the nearest grey level 2k/255 − 1
    /// ```
    /// For `ε ~ N(0, I)` this is an exact draw from the discretized Normal: the clamp sends
    /// each tail to its edge bin and the rounding maps `[x − 1/255, x + 1/255)` to `x`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless `noise` has shape [`dims`](Self::dims).
    pub fn sample_with_noise(&self, noise: Tensor<2>) -> Result<Tensor<2>> {
        if noise.dims() != self.dims() {
            return Err(Error::shape(
                "DiscretizedNormal::sample_with_noise",
                format!(
                    "{:?} ([batch, d], one standard normal per element)",
                    self.dims()
                ),
                noise.dims(),
            ));
        }
        Ok(self.draw(noise))
    }

    fn draw(&self, noise: Tensor<2>) -> Tensor<2> {
        let y = self.mean.clone().detach() + self.log_scale.clone().detach().exp() * noise;
        let k = y.clamp(-1.0, 1.0).add_scalar(1.0).mul_scalar(STEPS).round();
        k.div_scalar(STEPS).sub_scalar(1.0)
    }
}

/// The standard normal CDF `Φ(z)`, accurate in relative terms for every `z`.
///
/// # Formula
/// ```text
/// Φ(z) = ½ (1 + erf(z/√2))     z ≥ −1   (burn's erf; relative error < 2e-7 there)
/// Φ(z) = ½ erfc(−z/√2)         z < −1   (erfc_tail)
/// ```
/// Both branches are evaluated on inputs where they are finite, so `mask_where` passes no
/// NaN gradients.
fn std_normal_cdf(z: Tensor<2>) -> Tensor<2> {
    let body = z
        .clone()
        .mul_scalar(FRAC_1_SQRT_2)
        .erf()
        .add_scalar(1.0)
        .mul_scalar(0.5);
    let w = z
        .clone()
        .neg()
        .mul_scalar(FRAC_1_SQRT_2)
        .clamp_min(-TAIL_Z * FRAC_1_SQRT_2);
    let tail = erfc_tail(w).mul_scalar(0.5);
    body.mask_where(z.lower_elem(TAIL_Z), tail)
}

/// `erfc(w)` for `w ≥ 1/√2`, with relative error below `1.2e-7` (plus `f32` rounding of
/// `w²`, up to `6e-8 · w²` relative): it never forms `1 − erf(w)`, so it keeps its digits
/// down to `f32` underflow (`erfc(w) < 1e-38` for `w > 9.2`).
///
/// # Formula
/// ```text
/// erfc(w) ≈ t · exp(−w² − 1.26551223 + t·(1.00002368 + t·(0.37409196 + t·(0.09678418
///           + t·(−0.18628806 + t·(0.27886807 + t·(−1.13520398 + t·(1.48851587
///           + t·(−0.82215223 + t·0.17087277))))))))),      t = 1/(1 + w/2)
/// ```
/// (Press et al., *Numerical Recipes*, 2nd ed., sec. 6.2, `erfcc`: a Chebyshev fit valid
/// for every `w ≥ 0`.)
fn erfc_tail(w: Tensor<2>) -> Tensor<2> {
    const COEFFS: [f64; 9] = [
        -0.822_152_23,
        1.488_515_87,
        -1.135_203_98,
        0.278_868_07,
        -0.186_288_06,
        0.096_784_18,
        0.374_091_96,
        1.000_023_68,
        -1.265_512_23,
    ];
    let t = w.clone().mul_scalar(0.5).add_scalar(1.0).recip();
    let mut poly = t.clone().mul_scalar(0.170_872_77);
    for (i, c) in COEFFS.into_iter().enumerate() {
        poly = poly.add_scalar(c);
        if i + 1 < COEFFS.len() {
            poly = poly * t.clone();
        }
    }
    t * (poly - w.powi_scalar(2)).exp()
}

impl Distribution for DiscretizedNormal {
    type Value = Tensor<2>;

    /// `ln p(x_0 | x_1)` per row, summed over `d` (see the type's formula). `x` must have
    /// shape `[batch, d]` with values `2k/255 − 1` ([`check_value`](Self::check_value)).
    fn log_prob(&self, x: &Tensor<2>) -> Tensor<1> {
        sum_event_dims(self.log_prob_per_dim(x))
    }

    /// One draw per row, on the parameters' device: standard normals from burn's
    /// `Tensor::random`, then [`sample_with_noise`](Self::sample_with_noise).
    fn sample(&self) -> Tensor<2> {
        let noise = Tensor::random(
            self.mean.shape(),
            TensorDistribution::Normal(0.0, 1.0),
            &self.mean.device(),
        );
        self.draw(noise)
    }

    /// `μ` clamped to `[−1, 1]`: the mean of the underlying Normal, clamped to the data
    /// range and not rounded to a grey level (it is not exactly the mean of the
    /// discretized distribution, whose edge bins collect the tails). This is what DDPM
    /// shows as its final, noise-free sample.
    fn mean(&self) -> Tensor<2> {
        self.mean.clone().clamp(-1.0, 1.0)
    }

    fn batch_size(&self) -> usize {
        self.mean.dims()[0]
    }

    fn repeat_rows(&self, k: usize) -> Self {
        Self {
            mean: self.mean.repeat_rows(k),
            log_scale: self.log_scale.repeat_rows(k),
        }
    }
}
