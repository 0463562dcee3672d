//! The input and size checks that several parts of the models share: flat inputs of a
//! given width, MLP sizes, the dimension of a latent sphere, token ids within a vocabulary.

use burn::tensor::Tensor;

use crate::data::TokenBatch;
use crate::error::ensure_nonzero;
use crate::{Error, Result};

/// Checks that a flat batch is `[batch >= 1, width]`.
pub(crate) fn check_flat_input(context: &str, x: &Tensor<2>, width: usize) -> Result<()> {
    let [batch, d] = x.dims();
    if d != width || batch == 0 {
        return Err(Error::shape(
            context.to_string(),
            format!("[batch >= 1, {width}]"),
            x.dims(),
        ));
    }
    Ok(())
}

/// Checks the sizes every MLP VAE config shares: a non-zero data width, latent width and
/// hidden widths.
pub(crate) fn check_mlp_sizes(input_dim: usize, latent_dim: usize, hidden: &[usize]) -> Result<()> {
    ensure_nonzero("input_dim", input_dim)?;
    ensure_nonzero("latent_dim", latent_dim)?;
    for &h in hidden {
        ensure_nonzero("hidden", h)?;
    }
    Ok(())
}

/// Checks that a latent of width `latent_dim` can live on a sphere: `S^{d−1}` needs `d ≥ 2`.
pub(crate) fn check_sphere_dim(latent_dim: usize) -> crate::Result<()> {
    if latent_dim < 2 {
        return Err(crate::Error::config(
            "latent_dim",
            latent_dim,
            "at least 2 (the sphere S^{d-1} in R^d)",
        ));
    }
    Ok(())
}

/// Checks that every id of `x` is below `vocab_size`.
pub(crate) fn check_token_ids(context: &str, x: &TokenBatch, vocab_size: usize) -> Result<()> {
    if x.max_id() >= vocab_size as i64 {
        return Err(Error::shape(
            context.to_string(),
            format!("token ids below the vocabulary size {vocab_size}"),
            format!("id {}", x.max_id()),
        ));
    }
    Ok(())
}
