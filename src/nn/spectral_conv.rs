//! A 2-d convolution that keeps a running power-iteration estimate of its weight's
//! largest singular value, for NVAE's spectral regularisation.

use crate::kernels::Run;
use burn::module::{Module, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Distribution, Tensor};

/// `n` steps of the power iteration on `w` (`[m, n]`) from the left vector `u` (`[m]`).
///
/// # Formula
/// ```text
/// v ← Wᵀu / ‖Wᵀu‖,   u ← W v / ‖W v‖          (repeated `iterations` times)
/// σ_max(W) ≈ uᵀ W v
/// ```
/// (Miyato et al. 2018, "Spectral normalization for GANs", Algorithm 1.) Returns the new
/// `(u, v)`, both unit vectors, computed without gradient; [`spectral_norm_estimate`] turns
/// them into `σ` with the gradient `∂σ/∂W = u vᵀ`.
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::nn::{power_iteration, spectral_norm_estimate};
/// let device = elbo::device::default_device();
/// // diag(3, 1): the largest singular value is 3.
/// let w = Tensor::<2>::from_floats([[3.0, 0.0], [0.0, 1.0]], &device);
/// let (u, v) = power_iteration(w.clone(), Tensor::from_floats([1.0, 1.0], &device), 30);
/// let sigma: f32 = spectral_norm_estimate(w, u, v).into_scalar();
/// assert!((sigma - 3.0).abs() < 1e-4);
/// ```
pub fn power_iteration(w: Tensor<2>, u: Tensor<1>, iterations: usize) -> (Tensor<1>, Tensor<1>) {
    let w = w.detach();
    let [m, n] = w.dims();
    let mut u = normalize(u.detach());
    let mut v = normalize(
        w.clone()
            .transpose()
            .matmul(u.clone().reshape([m, 1]))
            .reshape([n]),
    );
    for _ in 1..iterations.max(1) {
        u = normalize(w.clone().matmul(v.clone().reshape([n, 1])).reshape([m]));
        v = normalize(
            w.clone()
                .transpose()
                .matmul(u.clone().reshape([m, 1]))
                .reshape([n]),
        );
    }
    u = normalize(w.matmul(v.clone().reshape([n, 1])).reshape([m]));
    (u, v)
}

/// `σ = uᵀ W v`, shape `[1]`, differentiable in `W` (`u`, `v` from [`power_iteration`]).
pub fn spectral_norm_estimate(w: Tensor<2>, u: Tensor<1>, v: Tensor<1>) -> Tensor<1> {
    let [m, n] = w.dims();
    u.reshape([1, m])
        .matmul(w)
        .matmul(v.reshape([n, 1]))
        .reshape([1])
}

fn normalize(x: Tensor<1>) -> Tensor<1> {
    let norm = x.clone().powf_scalar(2.0).sum().sqrt().clamp_min(1e-12);
    x / norm
}

/// A [`Conv2d`] plus the left singular vector of its weight (reshaped to
/// `[channels_out, channels_in/groups · k_h · k_w]`), refined by a few power-iteration steps
/// each time [`spectral_norm`](Self::spectral_norm) is called, as NVAE does.
#[derive(Module, Debug)]
pub struct SpectralConv2d {
    /// The convolution.
    pub conv: Conv2d,
    /// The running left singular vector `u`, `[channels_out]`.
    u: RunningState<Tensor<1>>,
}

impl SpectralConv2d {
    /// A convolution from `config` with a random unit `u`.
    pub fn new(config: &Conv2dConfig, device: &Device) -> Self {
        let conv = config.init(device);
        let out = conv.weight.dims()[0];
        let u = Tensor::<1>::random([out], Distribution::Normal(0.0, 1.0), device);
        Self {
            conv,
            u: RunningState::new(normalize(u)),
        }
    }

    /// `[b, c_in, h, w] → [b, c_out, h', w']`.
    ///
    /// # Shapes
    /// - `x`: `[batch, c_in, height, width]`
    /// - output: `[batch, c_out, height_out, width_out]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.run(x)
    }

    /// The largest singular value of the weight matrix after `iterations` power steps from
    /// the stored `u` (which is then updated), shape `[1]`, differentiable in the weight.
    pub fn spectral_norm(&self, iterations: usize) -> Tensor<1> {
        let w = self.conv.weight.val();
        let [out, a, b, c] = w.dims();
        let w = w.reshape([out, a * b * c]);
        let device = w.device();
        // `value_sync`: this thread's last update (`value` alone would return the one
        // before it), averaged with other replicas' where several threads train one module.
        let u0 = self.u.value_sync().to_device(&device);
        let (u, v) = power_iteration(w.clone(), u0, iterations);
        self.u.update(u.clone());
        spectral_norm_estimate(w, u, v)
    }
}
