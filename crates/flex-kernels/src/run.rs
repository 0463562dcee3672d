//! One way to run a layer: `layer.run(x)` computes `layer.forward(x)` by this crate's
//! kernel where one applies (flex, f32, a supported shape) and by burn's `forward`
//! everywhere else, so model code never has to remember a fast path.
//!
//! ```
//! use burn::nn::LinearConfig;
//! use burn::tensor::Tensor;
//! use flex_kernels::Run;
//! # #[cfg(feature = "flex")] {
//! let device = burn::tensor::Device::flex();
//! let layer = LinearConfig::new(3, 2).init(&device);
//! let x = Tensor::<2>::ones([4, 3], &device);
//! let y = layer.run(x.clone()); // the kernel on flex
//! let reference = layer.forward(x);
//! assert!(y.sub(reference).abs().max().into_scalar::<f32>() < 1e-6);
//! # }
//! ```

use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{BatchNorm, GroupNorm, Linear};
use burn::tensor::Tensor;

/// A burn layer that this crate can run: `run` is the layer's `forward`, on the fastest
/// path for the tensor's device.
pub trait Run<X> {
    /// What `forward` returns.
    type Output;

    /// `self.forward(x)`, by [`crate`]'s kernel where it applies.
    fn run(&self, x: X) -> Self::Output;
}

/// `x W + b` over the last dimension ([`crate::linear`]).
///
/// # Shapes
/// - `x`: `[..., d_input]`
/// - output: `[..., d_output]`
impl<const D: usize> Run<Tensor<D>> for Linear {
    type Output = Tensor<D>;

    fn run(&self, x: Tensor<D>) -> Tensor<D> {
        crate::linear(self, x)
    }
}

/// The 2-D convolution ([`crate::conv2d`]).
///
/// # Shapes
/// - `x`: `[batch, channels_in, height_in, width_in]`
/// - output: `[batch, channels_out, height_out, width_out]`
impl Run<Tensor<4>> for Conv2d {
    type Output = Tensor<4>;

    fn run(&self, x: Tensor<4>) -> Tensor<4> {
        crate::conv2d(self, x)
    }
}

/// The transposed 2-D convolution ([`crate::conv_transpose2d`]).
///
/// # Shapes
/// - `x`: `[batch, channels_in, height_in, width_in]`
/// - output: `[batch, channels_out, height_out, width_out]`
impl Run<Tensor<4>> for ConvTranspose2d {
    type Output = Tensor<4>;

    fn run(&self, x: Tensor<4>) -> Tensor<4> {
        crate::conv_transpose2d(self, x)
    }
}

/// Group normalisation ([`crate::group_norm`]).
///
/// # Shapes
/// - `x`: `[batch, channels, ...]`
/// - output: the same
impl<const D: usize> Run<Tensor<D>> for GroupNorm {
    type Output = Tensor<D>;

    fn run(&self, x: Tensor<D>) -> Tensor<D> {
        crate::group_norm(self, x)
    }
}

/// Batch normalisation ([`crate::batch_norm`]).
///
/// # Shapes
/// - `x`: `[batch, channels, ...]`
/// - output: the same
impl<const D: usize> Run<Tensor<D>> for BatchNorm {
    type Output = Tensor<D>;

    fn run(&self, x: Tensor<D>) -> Tensor<D> {
        crate::batch_norm(self, x)
    }
}
