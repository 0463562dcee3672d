//! One Adam / AdamW update of a parameter: the step's scalars ([`AdamStep`]), the update
//! in a single pass over the parameter, its moments and its gradient, in place on flex
//! where the buffers are not shared ([`adam_update`]; burn's Adam takes about a dozen
//! element-wise passes, each with a fresh buffer), and the same update composed from
//! tensor operations on every other device ([`adam_update_composed`]).
//!
//! # Formula
//! Kingma & Ba 2015, algorithm 1, with decoupled weight decay λ (Loshchilov & Hutter
//! 2019, algorithm 2), at step `t` with learning rate `η` and gradient `g`:
//! ```text
//! m ← β₁ m + (1 − β₁) g
//! v ← β₂ v + (1 − β₂) g²
//! θ ← (1 − η λ) θ − η m̂ / (√v̂ + ε),   m̂ = m / (1 − β₁ᵗ),   v̂ = v / (1 − β₂ᵗ)
//!   = (1 − η λ) θ − s m / (√v + ε'),   s = η √(1 − β₂ᵗ) / (1 − β₁ᵗ),   ε' = ε √(1 − β₂ᵗ)
//! ```
//! The last line is the form computed (and burn's): the bias corrections fold into two
//! scalars, leaving one square root and one division per value.

use burn::tensor::Tensor;
#[cfg(feature = "flex")]
use {
    burn::backend::Flex,
    burn::backend::flex::FlexTensor,
    burn::tensor::{DType, TensorData},
    rayon::prelude::*,
};

/// The scalars of one update (the module docs' last line).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    /// `β₁`, the first moment's decay.
    pub beta_1: f32,
    /// `β₂`, the second moment's decay.
    pub beta_2: f32,
    /// `1 − η λ`: the decoupled weight decay's factor (1 without decay).
    pub decay: f32,
    /// `s = η √(1 − β₂ᵗ) / (1 − β₁ᵗ)`.
    pub step_size: f32,
    /// `ε' = ε √(1 − β₂ᵗ)`.
    pub epsilon: f32,
}

impl AdamStep {
    /// The scalars of step `t` (1-based) at learning rate `lr` for the hyper-parameters
    /// `β₁`, `β₂`, `ε` and the decoupled weight decay `λ` (0 for Adam), in f64 then rounded
    /// once.
    ///
    /// ```
    /// let s = flex_kernels::adam::AdamStep::new(0.9, 0.999, 1e-8, 0.0, 1e-3, 1);
    /// // At t = 1: s = η √(1 − β₂) / (1 − β₁), with β as the f32 values given; rounded
    /// // once to f32 (relative error below 1e-7).
    /// let want = 1e-3 * (1.0 - 0.999f32 as f64).sqrt() / (1.0 - 0.9f32 as f64);
    /// assert!((s.step_size as f64 - want).abs() < 1e-7 * want);
    /// assert_eq!(s.decay, 1.0);
    /// ```
    pub fn new(
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        weight_decay: f32,
        lr: f64,
        t: usize,
    ) -> Self {
        let t = t.min(i32::MAX as usize) as i32;
        let bias_1 = 1.0 - (beta_1 as f64).powi(t);
        let bias_2_sqrt = (1.0 - (beta_2 as f64).powi(t)).sqrt();
        AdamStep {
            beta_1,
            beta_2,
            decay: (1.0 - lr * weight_decay as f64) as f32,
            step_size: (lr * bias_2_sqrt / bias_1) as f32,
            epsilon: (epsilon as f64 * bias_2_sqrt) as f32,
        }
    }
}

/// One update of a parameter `theta` with gradient `grad` and moments `(m, v)` (none at the
/// first step): the new `(θ, m, v)`, in one pass and in place where the buffers are not
/// shared on flex, from [`adam_update_composed`] elsewhere.
pub fn adam_update<const D: usize>(
    s: &AdamStep,
    theta: Tensor<D>,
    grad: Tensor<D>,
    moments: Option<(Tensor<D>, Tensor<D>)>,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    #[cfg(feature = "flex")]
    {
        let dims = theta.dims();
        let plain = |t: &Tensor<D>| t.dims() == dims && is_plain_f32(t);
        if plain(&theta)
            && plain(&grad)
            && moments.as_ref().is_none_or(|(m, v)| plain(m) && plain(v))
        {
            return in_place(s, theta, grad, moments);
        }
    }
    adam_update_composed(s, theta, grad, moments)
}

/// The update of the module docs from tensor operations, on any device: the fallback of
/// [`adam_update`].
pub fn adam_update_composed<const D: usize>(
    s: &AdamStep,
    theta: Tensor<D>,
    grad: Tensor<D>,
    moments: Option<(Tensor<D>, Tensor<D>)>,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (c1, c2) = (1.0 - s.beta_1, 1.0 - s.beta_2);
    let (m, v) = match moments {
        Some((m, v)) => (
            m.mul_scalar(s.beta_1) + grad.clone().mul_scalar(c1),
            v.mul_scalar(s.beta_2) + grad.square().mul_scalar(c2),
        ),
        None => (grad.clone().mul_scalar(c1), grad.square().mul_scalar(c2)),
    };
    let update = m
        .clone()
        .mul_scalar(s.step_size)
        .div(v.clone().sqrt().add_scalar(s.epsilon));
    (theta.mul_scalar(s.decay) - update, m, v)
}

/// Whether `t` is an f32 tensor on flex without autodiff (what [`in_place`] takes).
#[cfg(feature = "flex")]
fn is_plain_f32<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == DType::F32 && t.clone().try_into_primitive::<Flex>().is_ok()
}

/// One fused Adam update (see [`update`]) of tensors that are all
/// [`is_plain_f32`] and of one shape: the new `(θ, m, v)`. Buffers that are not shared
/// are updated in place.
#[cfg(feature = "flex")]
fn in_place<const D: usize>(
    s: &AdamStep,
    theta: Tensor<D>,
    grad: Tensor<D>,
    moments: Option<(Tensor<D>, Tensor<D>)>,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let primitive = |t: Tensor<D>| {
        own_contiguous(
            t.try_into_primitive::<Flex>()
                .expect("the caller checked for plain f32 flex tensors"),
        )
    };
    let g = primitive(grad);
    let mut theta = primitive(theta);
    let (mut m, mut v) = match moments {
        Some((m, v)) => (primitive(m), primitive(v)),
        None => {
            let zeros = || FlexTensor::zeros(g.layout().shape().clone(), DType::F32);
            (zeros(), zeros())
        }
    };
    update(
        s,
        theta.storage_mut::<f32>(),
        m.storage_mut::<f32>(),
        v.storage_mut::<f32>(),
        g.storage::<f32>(),
    );
    let tensor = |t| Tensor::from_primitive::<Flex>(t);
    (tensor(theta), tensor(m), tensor(v))
}

/// `t` itself when its values fill its whole buffer in order (so that `storage_mut` is
/// the tensor, and writes in place when the buffer is not shared), else a contiguous copy.
#[cfg(feature = "flex")]
fn own_contiguous(t: FlexTensor) -> FlexTensor {
    let exact = t.layout().contiguous_offsets() == Some((0, t.storage::<f32>().len()));
    if exact {
        return t;
    }
    let dims = t.layout().shape().to_vec();
    let values = t
        .into_data()
        .try_into_vec::<f32>()
        .expect("Adam's tensors are f32");
    FlexTensor::from_data(TensorData::new(values, dims))
}

/// Values per parallel task of the slice update: large enough that scheduling costs little next to a pass
/// over them.
#[cfg(feature = "flex")]
const CHUNK: usize = 32 * 1024;

/// Updates `theta`, `m` and `v` in place from the gradient `g` (all of one length).
#[cfg(feature = "flex")]
pub(crate) fn update(s: &AdamStep, theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    debug_assert!(theta.len() == g.len() && m.len() == g.len() && v.len() == g.len());
    if g.len() <= CHUNK {
        update_chunk(s, theta, m, v, g);
        return;
    }
    theta
        .par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK))
        .for_each(|(((theta, m), v), g)| update_chunk(s, theta, m, v, g));
}

#[cfg(feature = "flex")]
fn update_chunk(s: &AdamStep, theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        unsafe { update_avx2(s, theta, m, v, g) };
        return;
    }
    update_generic(s, theta, m, v, g);
}

/// [`update_generic`] compiled for AVX2 (eight values per instruction).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(all(feature = "flex", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
unsafe fn update_avx2(s: &AdamStep, theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    update_generic(s, theta, m, v, g);
}

#[cfg(feature = "flex")]
#[inline(always)]
fn update_generic(s: &AdamStep, theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    let (b1, b2) = (s.beta_1, s.beta_2);
    let (c1, c2) = (1.0 - b1, 1.0 - b2);
    for (((theta, m), v), &g) in theta.iter_mut().zip(m).zip(v).zip(g) {
        *m = b1 * *m + c1 * g;
        *v = b2 * *v + c2 * (g * g);
        *theta = s.decay * *theta - s.step_size * *m / (v.sqrt() + s.epsilon);
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;

    /// Three steps of the kernel against algorithm 1 written out in f64 with the bias
    /// corrections applied to the moments (the paper's form, not the folded one), on
    /// more values than one chunk so the parallel path runs. Tolerance: the f32 moments
    /// carry a relative rounding error of a few ulp per step, so the update agrees to
    /// 1e-5 of the step size η plus 1e-6 of |θ|.
    #[test]
    fn matches_algorithm_1_in_f64() {
        let n = 3 * CHUNK + 17;
        let (lr, b1, b2, eps, wd) = (1e-2f64, 0.9f32, 0.999f32, 1e-8f32, 0.1f32);
        let mut theta: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
        let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        let mut theta64: Vec<f64> = theta.iter().map(|&x| x as f64).collect();
        let (mut m64, mut v64) = (vec![0.0f64; n], vec![0.0f64; n]);
        for t in 1..=3 {
            let g: Vec<f32> = (0..n)
                .map(|i| ((i * t) as f32 * 0.11).cos() * if i % 7 == 0 { 1e-4 } else { 1.0 })
                .collect();
            update(
                &AdamStep::new(b1, b2, eps, wd, lr, t),
                &mut theta,
                &mut m,
                &mut v,
                &g,
            );
            for i in 0..n {
                let gi = g[i] as f64;
                m64[i] = b1 as f64 * m64[i] + (1.0 - b1 as f64) * gi;
                v64[i] = b2 as f64 * v64[i] + (1.0 - b2 as f64) * gi * gi;
                let m_hat = m64[i] / (1.0 - (b1 as f64).powi(t as i32));
                let v_hat = v64[i] / (1.0 - (b2 as f64).powi(t as i32));
                theta64[i] =
                    (1.0 - lr * wd as f64) * theta64[i] - lr * m_hat / (v_hat.sqrt() + eps as f64);
            }
        }
        for i in 0..n {
            let err = (theta[i] as f64 - theta64[i]).abs();
            assert!(
                err < 1e-5 * lr + 1e-6 * theta64[i].abs(),
                "value {i}: {} vs {}",
                theta[i],
                theta64[i]
            );
        }
    }
}
