//! Distribution families, one per file, each with its closed-form KL pairs.
//!
//! Every family is a *batch* of distributions: row `i` describes example `i`, and
//! `log_prob` sums over the event dimensions to shape `[batch]`.

mod bernoulli;
mod diag_normal;
mod discretized_logistic;
mod discretized_normal;
mod image_likelihood;
mod power_spherical;
mod std_normal;
mod uniform_sphere;
mod von_mises_fisher;

pub use bernoulli::Bernoulli;
pub use diag_normal::DiagNormal;
pub use discretized_logistic::DiscretizedLogisticMixture;
pub use discretized_normal::DiscretizedNormal;
pub use image_likelihood::{ImageLikelihood, PixelLikelihood};
pub use power_spherical::PowerSpherical;
pub use std_normal::StdNormal;
pub use uniform_sphere::UniformSphere;
pub use von_mises_fisher::{VonMisesFisher, vmf_log_normalizer};

use burn::tensor::Tensor;

/// Sums every dim but the first: `[batch, ...] -> [batch]`.
pub(crate) fn sum_event_dims<const D: usize>(x: Tensor<D>) -> Tensor<1> {
    let batch = x.dims()[0];
    x.reshape([batch as i64, -1]).sum_dim(1).reshape([batch])
}
pub(crate) use von_mises_fisher::{host_rng, normalize};
