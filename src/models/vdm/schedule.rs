//! The noise schedule of a Variational Diffusion Model: `γ(t) = −log SNR(t)` on
//! `t ∈ [0, 1]`, fixed linear or learned by a monotone network (Kingma et al. 2021, §3.4
//! and appendix H; the network of their `NoiseSchedule_NNet`), between learned endpoints.
//!
//! # Formula
//! ```text
//! α_t² = sigmoid(−γ(t)),   σ_t² = sigmoid(γ(t)),   SNR(t) = α_t² / σ_t² = e^{−γ(t)}
//!
//! γ(t) = γ_0 + |r| ĝ(t),   γ'(t) = |r| ĝ'(t),   ĝ(0) = 0, ĝ(1) = 1
//!
//! fixed:    γ_0 = γ_min, |r| = γ_max − γ_min, ĝ(t) = t
//! learned:  ĝ(t) = (n(t) − n(0)) / (n(1) − n(0)),   ĝ'(t) = n'(t) / (n(1) − n(0))
//!           n(t) = |w₁| t + (1/m) Σ_j |w₃,j| φ(|w₂,j| (2t − 1) + b₂,j),   φ(h) = 2σ(h) − 1
//!           n'(t) = |w₁| + (4/m) Σ_j |w₃,j| |w₂,j| σ(h_j)(1 − σ(h_j))
//! ```
//! Every weight of `n` enters through its absolute value and `φ` increases, so the learned
//! `γ` is non-decreasing in `t` for any parameters. The endpoints `γ(0) = γ_0` and
//! `γ(1) = γ_0 + |r|` are parameters of their own, apart from the shape `ĝ`: the
//! continuous-time loss depends on the schedule only through its endpoints (VDM eq. 20), so
//! the endpoints are trained on the bound and the shape, which cannot change the expected
//! loss, on its variance ([`ScheduleGradient::Variance`](super::ScheduleGradient)). It
//! starts at the fixed schedule's endpoints with `|w₁| = γ_max − γ_min`, so that `ĝ` is
//! close to the line (the network's part is at most `mean_j |w₃,j|` beside it).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution as TensorDistribution, Tensor, activation};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ensure_nonzero};

/// Which schedule `γ(t)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScheduleKind {
    /// `γ(t) = γ_min + (γ_max − γ_min) t`, not trained.
    FixedLinear,
    /// The monotone network with `features` hidden units (VDM uses 1024), trained.
    Learned {
        /// Hidden units of the monotone network.
        features: usize,
    },
}

/// Configuration of a [`GammaSchedule`].
#[derive(Config, Debug)]
pub struct GammaScheduleConfig {
    /// Fixed or learned.
    #[config(default = "ScheduleKind::FixedLinear")]
    pub kind: ScheduleKind,
    /// `γ(0)`, the log inverse SNR at the data end (VDM's −13.3).
    #[config(default = -13.3)]
    pub gamma_min: f64,
    /// `γ(1)`, the log inverse SNR at the noise end (VDM's 5).
    #[config(default = 5.0)]
    pub gamma_max: f64,
}

impl GammaScheduleConfig {
    /// Checks `γ_min < γ_max` (both finite) and a non-zero width.
    pub fn validate(&self) -> crate::Result<()> {
        for (field, value) in [("gamma_min", self.gamma_min), ("gamma_max", self.gamma_max)] {
            if !value.is_finite() {
                return Err(Error::config(field, value, "a finite number"));
            }
        }
        if self.gamma_min >= self.gamma_max {
            return Err(Error::config(
                "gamma_min",
                self.gamma_min,
                format!(
                    "a number below gamma_max = {} (γ = −log SNR rises from the data to the \
                     noise end)",
                    self.gamma_max
                ),
            ));
        }
        if let ScheduleKind::Learned { features } = self.kind {
            ensure_nonzero("features", features)?;
        }
        Ok(())
    }

    /// Builds the schedule (the learned network's hidden weights drawn from `N(0, 1)`, as
    /// VDM's).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> crate::Result<GammaSchedule> {
        self.validate()?;
        let network = match self.kind {
            ScheduleKind::FixedLinear => None,
            ScheduleKind::Learned { features } => {
                let scalar =
                    |v: f64| Param::from_tensor(Tensor::<1>::from_floats([v as f32], device));
                let normal = || {
                    Param::from_tensor(Tensor::<1>::random(
                        [features],
                        TensorDistribution::Normal(0.0, 1.0),
                        device,
                    ))
                };
                Some(MonotoneNetwork {
                    gamma_0: scalar(self.gamma_min),
                    range: scalar(self.gamma_max - self.gamma_min),
                    w1: scalar(self.gamma_max - self.gamma_min),
                    w2: normal(),
                    b2: normal(),
                    w3: normal(),
                })
            }
        };
        Ok(GammaSchedule {
            network,
            gamma_min: self.gamma_min,
            gamma_max: self.gamma_max,
        })
    }
}

/// The learned schedule: its endpoints and the monotone network `n` of its shape.
#[derive(Module, Debug)]
pub struct MonotoneNetwork {
    /// `γ_0 = γ(0)`, `[1]` (`γ_min` at initialisation).
    pub gamma_0: Param<Tensor<1>>,
    /// `r`, `[1]`, used as `|r| = γ(1) − γ(0)` (`γ_max − γ_min` at initialisation).
    pub range: Param<Tensor<1>>,
    /// `w₁`, `[1]`, used as `|w₁|` (`γ_max − γ_min` at initialisation).
    pub w1: Param<Tensor<1>>,
    /// `w₂`: the units' input weights, `[m]`.
    pub w2: Param<Tensor<1>>,
    /// `b₂`: the units' biases, `[m]`.
    pub b2: Param<Tensor<1>>,
    /// `w₃`: the units' output weights, `[m]`.
    pub w3: Param<Tensor<1>>,
}

impl MonotoneNetwork {
    /// `n(t)` and `n'(t)`, `[batch]` each (the module docs' formula).
    fn network_and_slope(&self, t: Tensor<1>) -> (Tensor<1>, Tensor<1>) {
        let [b] = t.dims();
        let [m] = self.w2.dims();
        let w1 = self.w1.val().abs().expand([b]);
        let linear = t.clone() * w1.clone();
        let w2 = self.w2.val().abs().reshape([1, m]);
        let w3 = self.w3.val().abs().reshape([1, m]);
        // h = |w₂| (2t − 1) + b₂,  [b, m]
        let u = t.mul_scalar(2.0).sub_scalar(1.0).reshape([b, 1]);
        let h = u * w2.clone() + self.b2.val().reshape([1, m]);
        let s = activation::sigmoid(h);
        let phi = s.clone().mul_scalar(2.0).sub_scalar(1.0);
        let nonlinear = (phi * w3.clone())
            .sum_dim(1)
            .reshape([b])
            .div_scalar(m as f64);
        let ds = s.clone() * s.neg().add_scalar(1.0);
        let d_nonlinear = (ds * w2 * w3)
            .sum_dim(1)
            .reshape([b])
            .mul_scalar(4.0 / m as f64);
        (linear + nonlinear, w1 + d_nonlinear)
    }

    /// `ĝ(t)` and `ĝ'(t)`, `[batch]` each: `n` rescaled to run from 0 at `t = 0` to 1 at
    /// `t = 1` (a flat `n`, whose rise is below 1e-30, gives `ĝ = 0`).
    fn shape_and_slope(&self, t: Tensor<1>) -> (Tensor<1>, Tensor<1>) {
        let [b] = t.dims();
        let ends = Tensor::<1>::from_floats([0.0, 1.0], &t.device());
        let (n, slope) = self.network_and_slope(Tensor::cat(vec![t, ends], 0));
        let n_0 = n.clone().narrow(0, b, 1);
        let rise = (n.clone().narrow(0, b + 1, 1) - n_0.clone()).clamp_min(1e-30);
        let shape = (n.narrow(0, 0, b) - n_0.expand([b])) / rise.clone().expand([b]);
        (shape, slope.narrow(0, 0, b) / rise.expand([b]))
    }
}

/// `γ(t) = −log SNR(t)`, fixed linear or learned (see the module docs).
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::models::vdm::GammaScheduleConfig;
/// let device = elbo::device::default_device();
/// let fixed = GammaScheduleConfig::new().init(&device)?;
/// let t = Tensor::<1>::from_floats([0.0, 0.5, 1.0], &device);
/// let (gamma, slope) = fixed.gamma_and_slope(t);
/// let gamma: Vec<f32> = gamma.to_data().try_to_vec().unwrap();
/// assert!((gamma[1] - (-13.3 + 18.3 * 0.5)).abs() < 1e-5);
/// let slope: Vec<f32> = slope.to_data().try_to_vec().unwrap();
/// assert!((slope[0] - 18.3).abs() < 1e-5);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct GammaSchedule {
    /// The learned network; `None` for the fixed schedule.
    pub network: Option<MonotoneNetwork>,
    /// The configured `γ_min`: the fixed schedule's `γ(0)`, and the lower end of the
    /// range the denoiser's input `γ` is normalised to.
    #[module(skip)]
    pub gamma_min: f64,
    /// The configured `γ_max`.
    #[module(skip)]
    pub gamma_max: f64,
}

impl GammaSchedule {
    /// `γ(t)` and its derivative `γ'(t)` for each `t` of `[batch]`, both `[batch]` and
    /// differentiable in the schedule's parameters: `γ_0 + |r| ĝ(t)` and `|r| ĝ'(t)`.
    pub fn gamma_and_slope(&self, t: Tensor<1>) -> (Tensor<1>, Tensor<1>) {
        let (shape, shape_slope) = self.shape_and_slope(t);
        self.gamma_from_shape(shape, shape_slope)
    }

    /// The shape `ĝ(t)` (from 0 at `t = 0` to 1 at `t = 1`) and its derivative, `[batch]`
    /// each: `t` and 1 for the fixed schedule.
    pub fn shape_and_slope(&self, t: Tensor<1>) -> (Tensor<1>, Tensor<1>) {
        match &self.network {
            Some(network) => network.shape_and_slope(t),
            None => {
                let slope = Tensor::ones_like(&t);
                (t, slope)
            }
        }
    }

    /// `γ = γ_0 + |r| ĝ` and `γ' = |r| ĝ'` from a shape and its slope (`[batch]` each), the
    /// endpoints differentiable for a learned schedule (plain numbers for the fixed one).
    pub fn gamma_from_shape(
        &self,
        shape: Tensor<1>,
        shape_slope: Tensor<1>,
    ) -> (Tensor<1>, Tensor<1>) {
        match &self.network {
            Some(network) => {
                let [b] = shape.dims();
                let range = network.range.val().abs().expand([b]);
                let gamma_0 = network.gamma_0.val().expand([b]);
                (shape * range.clone() + gamma_0, shape_slope * range)
            }
            None => {
                let range = self.gamma_max - self.gamma_min;
                (
                    shape.mul_scalar(range).add_scalar(self.gamma_min),
                    shape_slope.mul_scalar(range),
                )
            }
        }
    }

    /// `γ(t)` for each `t` of `[batch]`.
    pub fn gamma(&self, t: Tensor<1>) -> Tensor<1> {
        self.gamma_and_slope(t).0
    }

    /// `γ(t)` at the given times on the host, for a sampler's grid.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if a value is not finite (diverged parameters).
    pub fn gamma_on_host(&self, times: &[f64], device: &Device) -> crate::Result<Vec<f64>> {
        let t: Vec<f32> = times.iter().map(|&v| v as f32).collect();
        let gamma = self.gamma(Tensor::<1>::from_floats(t.as_slice(), device));
        let values: Vec<f64> = gamma
            .try_into_vec_as::<f64>()
            .map_err(|e| Error::NonFinite {
                context: "reading the noise schedule back from the device".into(),
                hint: format!("{e:?}"),
            })?;
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                context: format!("the noise schedule γ(t) = {v}"),
                hint: "the schedule's parameters diverged; lower the learning rate".into(),
            });
        }
        Ok(values)
    }

    /// Whether the schedule is learned.
    pub fn is_learned(&self) -> bool {
        self.network.is_some()
    }
}
