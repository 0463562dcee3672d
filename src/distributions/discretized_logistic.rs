//! The discretized mixture of logistics over 8-bit images (PixelCNN++, NVAE).

use burn::tensor::{Distribution as TensorDistribution, Int, Tensor};

use super::sum_event_dims;
use crate::math::log_sum_exp;
use crate::traits::{Batch, Distribution};
use crate::{Error, Result};

/// Half the width of one grey-level bin in the model's `[−1, 1]` space: `1/255`.
const HALF_BIN: f64 = 1.0 / 255.0;
/// PixelCNN++'s lower bound on the log-scales.
const MIN_LOG_SCALE: f64 = -7.0;
/// Bins whose mass is below this use PixelCNN++'s density-times-width fallback.
const TINY_BIN_MASS: f64 = 1e-5;
/// `y < −EDGE` is the bottom bin (`x = 0`), `y > EDGE` the top bin (`x = 1`).
const EDGE: f64 = 0.999;
/// Noise for the logistic inverse CDF is clamped into `[U_EPS, 1 − U_EPS]`, as PixelCNN++.
const U_EPS: f64 = 1e-5;

/// A batch of discretized mixtures of logistics over 8-bit images `[batch, C, H, W]`
/// (Salimans et al. 2017, "PixelCNN++", eq. 2; the output distribution of NVAE).
///
/// Values are grey levels `x = k/255`, `k ∈ {0, .., 255}` (as
/// [`Binarization::Grey`](crate::data::Binarization::Grey) gives them, reshaped to
/// `[batch, C, H, W]`). Internally they live in `[−1, 1]`: `y = 2x − 1`, so the 256 bins
/// have centres `y_k = 2k/255 − 1` and half-width `1/255`. Means `μ` are in that `[−1, 1]`
/// space too.
///
/// Every element (channel `c` of pixel `(h, w)`) has its own mixture of `M` logistics:
/// weights `π = softmax(logit_pi)` over `M`, means `μ_m`, scales `s_m = exp(log_scale_m)`
/// with `log_scale` clamped below at −7 as PixelCNN++ does. The elements are independent:
/// in particular the channels of a pixel are independent given their parameters. This is
/// **not** PixelCNN++'s RGB model, which shares the mixture indicator across a pixel's
/// channels and makes the green and blue means linear in the earlier channels; for
/// greyscale (`C = 1`) the two coincide.
///
/// # Formula
///
/// ```text
/// P(x) = Σ_m π_m · P_m(x)                                      (PixelCNN++ eq. 2)
///
/// P_m(x) = σ((y + 1/255 − μ_m)/s_m) − σ((y − 1/255 − μ_m)/s_m)   0 < x < 1
/// P_m(0) = σ((y + 1/255 − μ_m)/s_m)                              all mass below the bin
/// P_m(1) = 1 − σ((y − 1/255 − μ_m)/s_m)                          all mass above the bin
/// ```
///
/// so the 256 bin masses of each element sum to 1. In log space, with
/// `a = (y + 1/255 − μ)/s`, `b = (y − 1/255 − μ)/s`, `softplus(t) = ln(1 + e^t)`:
///
/// ```text
/// ln P_m(x) = −softplus(−a) − softplus(b) + ln(1 − e^{−(a − b)}),   a − b = 2/(255·s)
/// ln P_m(0) = −softplus(−a)            (= ln σ(a))
/// ln P_m(1) = −softplus(b)             (= ln(1 − σ(b)))
/// ```
///
/// which never subtracts two probabilities, so it stays finite and accurate at any `μ` and
/// `s`; `ln(1 − e^{−δ})` uses a series for `δ < ½` so wide components (`s ≫ 1`) lose no
/// digits. Like PixelCNN++, an interior bin whose mass is below `1e-5` uses the density
/// at the bin centre times the bin width instead:
///
/// ```text
/// ln P_m(x) ≈ ln p_m(y) + ln(2/255),   ln p_m(y) = t − ln s − 2·softplus(t),   t = (y − μ)/s
/// ```
///
/// (this keeps the values comparable with PixelCNN++/NVAE; it changes only bins with
/// `P_m < 1e-5`). The mixture is `ln P(x) = LSE_m [ln π_m + ln P_m(x)]`, and
/// [`log_prob`](Distribution::log_prob) sums over `C, H, W`.
///
/// # Example
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::Distribution;
/// use elbo::distributions::DiscretizedLogisticMixture;
///
/// let device = elbo::device::default_device();
/// // A decoder's conv output for 2 images, 1 channel, 4×4 pixels, 3 components:
/// // 3 · M · C = 9 output channels (logits, then means, then log-scales).
/// let params = Tensor::<4>::zeros([2, 9, 4, 4], &device);
/// let p = DiscretizedLogisticMixture::from_network_output(params, 1, 3)?;
/// let x = Tensor::<4>::full([2, 1, 4, 4], 128.0 / 255.0, &device);
/// assert_eq!(p.log_prob(&x).dims(), [2]);
/// let draw = p.sample(); // grey levels k/255
/// assert_eq!(draw.dims(), [2, 1, 4, 4]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct DiscretizedLogisticMixture {
    /// `[batch, M, C, H, W]`.
    logit_pi: Tensor<5>,
    /// `[batch, M, C, H, W]`, in `[−1, 1]` space.
    means: Tensor<5>,
    /// `[batch, M, C, H, W]`, clamped at −7.
    log_scales: Tensor<5>,
}

impl DiscretizedLogisticMixture {
    /// A batch of mixtures from the mixture logits, the means (in `[−1, 1]` space) and the
    /// log-scales, each of shape `[batch, M, C, H, W]` (`M` components). Log-scales below
    /// −7 are clamped to −7 (PixelCNN++).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the three shapes differ, or if any dimension is 0.
    pub fn new(logit_pi: Tensor<5>, means: Tensor<5>, log_scales: Tensor<5>) -> Result<Self> {
        let dims = logit_pi.dims();
        for (name, other) in [("means", means.dims()), ("log_scales", log_scales.dims())] {
            if other != dims {
                return Err(Error::shape(
                    format!("DiscretizedLogisticMixture::new ({name})"),
                    format!("the shape of logit_pi, {dims:?} ([batch, M, C, H, W])"),
                    other,
                ));
            }
        }
        check_nonempty("DiscretizedLogisticMixture::new", &dims)?;
        Ok(Self {
            logit_pi,
            means,
            log_scales: log_scales.clamp_min(MIN_LOG_SCALE),
        })
    }

    /// Splits a network output `[batch, 3·M·C, H, W]` (for `C = channels`, `M = mixtures`)
    /// into the mixture's parameters and builds it with [`new`](Self::new).
    ///
    /// Channel order: the first `M·C` output channels are the logits, the next `M·C` the
    /// means, the last `M·C` the log-scales; inside each block, output channel `m·C + c`
    /// belongs to component `m` of image channel `c` (component-major).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `channels` or `mixtures` is 0;
    /// [`Error::ShapeMismatch`] if the output does not have `3·M·C` channels or has an
    /// empty batch, height or width.
    pub fn from_network_output(
        params: Tensor<4>,
        channels: usize,
        mixtures: usize,
    ) -> Result<Self> {
        if channels == 0 {
            return Err(Error::config(
                "channels",
                channels,
                "the number of image channels, >= 1 (1 for greyscale, 3 for RGB)",
            ));
        }
        if mixtures == 0 {
            return Err(Error::config(
                "mixtures",
                mixtures,
                "the number of logistic components, >= 1 (PixelCNN++ uses 10)",
            ));
        }
        let [batch, out, height, width] = params.dims();
        let block = mixtures.checked_mul(channels);
        let expected = block.and_then(|b| b.checked_mul(3));
        let (Some(block), Some(expected)) = (block, expected) else {
            return Err(Error::config(
                "mixtures",
                mixtures,
                format!("a count with 3 · mixtures · channels ({channels}) representable in usize"),
            ));
        };
        if out != expected {
            return Err(Error::shape(
                "DiscretizedLogisticMixture::from_network_output",
                format!(
                    "[batch, 3 · mixtures · channels = 3 · {mixtures} · {channels} = {expected}, H, W]: \
                     give the last layer {expected} output channels, or pass the mixtures and \
                     channels it was built for"
                ),
                params.dims(),
            ));
        }
        check_nonempty(
            "DiscretizedLogisticMixture::from_network_output",
            &[batch, mixtures, channels, height, width],
        )?;
        let part = |i: usize| {
            params
                .clone()
                .narrow(1, i * block, block)
                .reshape([batch, mixtures, channels, height, width])
        };
        Self::new(part(0), part(1), part(2))
    }

    /// The mixture logits `[batch, M, C, H, W]`.
    pub fn logit_pi(&self) -> Tensor<5> {
        self.logit_pi.clone()
    }

    /// The log mixture weights `ln π = log_softmax(logit_pi)` over `M`: `[batch, M, C, H, W]`.
    pub fn log_weights(&self) -> Tensor<5> {
        self.logit_pi.clone() - log_sum_exp(self.logit_pi.clone(), 1)
    }

    /// The component means in `[−1, 1]` space (`y = 2x − 1`): `[batch, M, C, H, W]`.
    pub fn means(&self) -> Tensor<5> {
        self.means.clone()
    }

    /// The component log-scales, clamped below at −7: `[batch, M, C, H, W]`.
    pub fn log_scales(&self) -> Tensor<5> {
        self.log_scales.clone()
    }

    /// The number of mixture components `M`.
    pub fn mixtures(&self) -> usize {
        self.logit_pi.dims()[1]
    }

    /// The shape of one batch of images, `[batch, C, H, W]`.
    pub fn image_dims(&self) -> [usize; 4] {
        let [b, _, c, h, w] = self.logit_pi.dims();
        [b, c, h, w]
    }

    /// Checks that `x` can be scored: shape `[batch, C, H, W]` as [`image_dims`](Self::image_dims),
    /// and every value a finite grey level `k/255` in `[0, 1]` (within `1e-3/255`).
    /// [`log_prob`](Distribution::log_prob) does not check (the trait returns no `Result`, and
    /// the value check reads one scalar back from the device); call this on data you do not
    /// trust.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for a wrong shape; [`Error::NonFinite`] for NaN or infinite
    /// values; [`Error::InvalidConfig`] for values off the `k/255` grid.
    pub fn check_value(&self, x: &Tensor<4>) -> Result<()> {
        if x.dims() != self.image_dims() {
            return Err(Error::shape(
                "DiscretizedLogisticMixture (value)",
                format!("{:?} ([batch, C, H, W])", self.image_dims()),
                x.dims(),
            ));
        }
        let x = x.clone().detach();
        let non_finite: i64 = x.clone().is_finite().bool_not().int().sum().into_scalar();
        if non_finite > 0 {
            return Err(Error::NonFinite {
                context: "DiscretizedLogisticMixture (value)".into(),
                hint: format!("{non_finite} values are NaN or infinite; give grey levels k/255"),
            });
        }
        let scaled = x.mul_scalar(255.0);
        let off_grid = (scaled.clone() - scaled.clone().round())
            .abs()
            .greater_elem(1e-3);
        let out_of_range = scaled
            .clone()
            .lower_elem(-1e-3)
            .bool_or(scaled.greater_elem(255.0 + 1e-3));
        let bad: i64 = off_grid.bool_or(out_of_range).int().sum().into_scalar();
        if bad > 0 {
            return Err(Error::config(
                "x",
                format!("{bad} values not of the form k/255"),
                "grey levels k/255 for integers k in 0..=255 (scale 8-bit data by 1/255)",
            ));
        }
        Ok(())
    }

    /// `ln P_m(x)` for every component: `[batch, M, C, H, W]` (see the type's formula).
    fn component_log_probs(&self, x: &Tensor<4>) -> Tensor<5> {
        let y = x
            .clone()
            .mul_scalar(2.0)
            .sub_scalar(1.0)
            .unsqueeze_dim::<5>(1);
        let centred = y.clone() - self.means.clone();
        let inv_s = self.log_scales.clone().neg().exp();
        let a = (centred.clone().add_scalar(HALF_BIN)) * inv_s.clone();
        let b = (centred.clone().sub_scalar(HALF_BIN)) * inv_s.clone();
        let log_cdf_a = softplus(a.neg()).neg(); // ln σ(a): bottom edge
        let log_sf_b = softplus(b).neg(); // ln(1 − σ(b)): top edge
        // ln(1 − e^{−(a−b)}), with ln(a − b) = ln(2/255) − ln s exactly.
        let log_width = self
            .log_scales
            .clone()
            .neg()
            .add_scalar((2.0 * HALF_BIN).ln());
        let interior = log_cdf_a.clone() + log_sf_b.clone() + log1mexp(log_width);
        // PixelCNN++'s fallback: density at the bin centre times the bin width.
        let t = centred * inv_s;
        let log_pdf = t.clone() - self.log_scales.clone() - softplus(t).mul_scalar(2.0);
        let fallback = log_pdf.add_scalar((2.0 * HALF_BIN).ln());
        let interior = interior
            .clone()
            .mask_where(interior.lower_elem(TINY_BIN_MASS.ln()), fallback);
        let y = y.expand(self.means.shape());
        interior
            .mask_where(y.clone().lower_elem(-EDGE), log_cdf_a)
            .mask_where(y.greater_elem(EDGE), log_sf_b)
    }

    /// The component chosen by inverse CDF of `π` for uniforms `u` `[batch, C, H, W]`:
    /// indices `[batch, 1, C, H, W]`.
    fn pick_components(&self, u: Tensor<4>) -> Tensor<5, Int> {
        let m = self.mixtures();
        let cdf = self.log_weights().exp().cumsum(1);
        let below = cdf.lower_equal(u.unsqueeze_dim::<5>(1).expand(self.means.shape()));
        below.int().sum_dim(1).clamp_max(m as i64 - 1)
    }

    /// The draw for given noise (not differentiable: it rounds to grey levels).
    ///
    /// # Formula
    /// ```text
    /// m = min{ j : u_c < Σ_{i ≤ j} π_i }                   (inverse CDF of π)
    /// y = μ_m + s_m · (ln u_l − ln(1 − u_l)),   u_l clamped to [1e-5, 1 − 1e-5]
    /// x = round(255 · clamp((y + 1)/2, 0, 1)) / 255
    /// ```
    /// This is PixelCNN++'s sampler (one component per element rather than per pixel).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless both noises have shape
    /// [`image_dims`](Self::image_dims) (`[batch, C, H, W]`).
    pub fn sample_with_noise(
        &self,
        component_uniform: Tensor<4>,
        logistic_uniform: Tensor<4>,
    ) -> Result<Tensor<4>> {
        let dims = self.image_dims();
        for (name, u) in [
            ("component_uniform", &component_uniform),
            ("logistic_uniform", &logistic_uniform),
        ] {
            if u.dims() != dims {
                return Err(Error::shape(
                    format!("DiscretizedLogisticMixture::sample_with_noise ({name})"),
                    format!("{dims:?} ([batch, C, H, W], one uniform per element)"),
                    u.dims(),
                ));
            }
        }
        Ok(self.draw(component_uniform, logistic_uniform))
    }

    fn draw(&self, component_uniform: Tensor<4>, logistic_uniform: Tensor<4>) -> Tensor<4> {
        let dims = self.image_dims();
        let k = self.pick_components(component_uniform.detach());
        let mu = self
            .means
            .clone()
            .detach()
            .gather(1, k.clone())
            .reshape(dims);
        let log_s = self.log_scales.clone().detach().gather(1, k).reshape(dims);
        let u = logistic_uniform.detach().clamp(U_EPS, 1.0 - U_EPS);
        let logit_u = u.clone().log() - u.neg().add_scalar(1.0).log();
        let y = mu + log_s.exp() * logit_u;
        let x = y.add_scalar(1.0).mul_scalar(0.5).clamp(0.0, 1.0);
        x.mul_scalar(255.0).round().div_scalar(255.0)
    }
}

/// Rejects an empty `[batch, M, C, H, W]` (burn cannot reshape empty tensors).
fn check_nonempty(context: &str, dims: &[usize; 5]) -> Result<()> {
    if dims.contains(&0) {
        return Err(Error::shape(
            context,
            "[batch, M, C, H, W] with at least 1 image, mixture component, channel, row and column",
            dims,
        ));
    }
    Ok(())
}

/// `softplus(t) = ln(1 + e^t) = max(t, 0) + ln(1 + e^{−|t|})`, finite for every finite `t`.
fn softplus<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    t.clone().clamp_min(0.0) + t.abs().neg().exp().log1p()
}

/// `ln(1 − e^{−δ})` for `δ = exp(log_delta) > 0`.
///
/// For `δ ≥ ½`: `ln(1 − e^{−δ})` directly (`1 − e^{−δ} ≥ 0.39`, no cancellation). For
/// `δ < ½`, with `d = −δ`: `ln(−d) + d/2 + d²/24 − d⁴/2880 + d⁶/181440` (the series of
/// `ln((e^d − 1)/d)`, error below `5e-10` at `δ = ½`), so `δ → 0` loses no digits. Both
/// branches are evaluated on clamped inputs so neither produces inf/NaN gradients.
fn log1mexp<const D: usize>(log_delta: Tensor<D>) -> Tensor<D> {
    let delta = log_delta.clone().exp();
    let large = delta.clone().clamp_min(0.5).neg().exp().neg().log1p();
    let d = delta.clone().clamp_max(0.5).neg();
    let d2 = d.clone().powi_scalar(2);
    let poly = d.clone().mul_scalar(0.5)
        + d2.clone().mul_scalar(1.0 / 24.0)
        + d2.clone().powi_scalar(2).mul_scalar(-1.0 / 2880.0)
        + d2.powi_scalar(3).mul_scalar(1.0 / 181_440.0);
    let small = log_delta + poly;
    large.mask_where(delta.lower_elem(0.5), small)
}

impl Distribution for DiscretizedLogisticMixture {
    type Value = Tensor<4>;

    /// `ln P(x)` per image, summed over `C, H, W` (see the type's formula). `x` must have
    /// shape `[batch, C, H, W]` with values `k/255` ([`check_value`](Self::check_value)).
    fn log_prob(&self, x: &Tensor<4>) -> Tensor<1> {
        let joint = self.log_weights() + self.component_log_probs(x);
        sum_event_dims(log_sum_exp(joint, 1))
    }

    /// One draw per image, on the parameters' device: uniforms from burn's
    /// `Tensor::random`, then [`sample_with_noise`](Self::sample_with_noise).
    fn sample(&self) -> Tensor<4> {
        let device = self.means.device();
        let dims = self.image_dims();
        let uniform = || Tensor::random(dims, TensorDistribution::Uniform(0.0, 1.0), &device);
        self.draw(uniform(), uniform())
    }

    /// `Σ_m π_m μ_m` mapped back to `[0, 1]` (`(y + 1)/2`, clamped): the mean of the
    /// underlying continuous mixture, not rounded to a grey level (it is not exactly the
    /// mean of the discretized distribution, whose edge bins collect the tails).
    fn mean(&self) -> Tensor<4> {
        let y = (self.log_weights().exp() * self.means.clone()).sum_dim(1);
        y.reshape(self.image_dims())
            .add_scalar(1.0)
            .mul_scalar(0.5)
            .clamp(0.0, 1.0)
    }

    fn batch_size(&self) -> usize {
        self.logit_pi.dims()[0]
    }

    fn repeat_rows(&self, k: usize) -> Self {
        Self {
            logit_pi: self.logit_pi.repeat_rows(k),
            means: self.means.repeat_rows(k),
            log_scales: self.log_scales.repeat_rows(k),
        }
    }
}
