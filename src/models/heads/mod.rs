//! Posterior heads: the last layer of an encoder, features `[batch, d]` → `q(z|x)`. Every
//! head works on every trunk ([`trunks`](super::trunks)).

mod bn;
mod gaussian;
mod power_spherical;
mod vmf;

pub(crate) use bn::check_batch_statistics;
pub use bn::{BnGaussianHead, BnScale};
pub use gaussian::GaussianHead;
pub use power_spherical::PowerSphericalHead;
pub use vmf::{VmfHead, VmfKappa};
