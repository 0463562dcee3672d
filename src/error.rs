//! The crate's one error type.
//!
//! Every fallible public function returns [`Result<T>`](Result). Each variant carries
//! structured fields and a message that says what to change.

use std::path::PathBuf;

/// Everything that can go wrong when a user hands `elbo` a config, a file or a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of its valid range.
    #[error("invalid config: `{field}` = {value}: {expected}")]
    InvalidConfig {
        /// The offending field, as named in the config struct.
        field: &'static str,
        /// The value that was given, formatted.
        value: String,
        /// What a valid value looks like.
        expected: String,
    },
    /// A tensor or batch does not have the shape the model or distribution needs.
    #[error("shape mismatch in {context}: expected {expected}, got {actual}")]
    ShapeMismatch {
        /// Which call or argument the shape belongs to.
        context: String,
        /// The expected shape, in words or as dims.
        expected: String,
        /// The shape that was given.
        actual: String,
    },
    /// A data file is malformed (wrong magic, truncated, inconsistent header).
    #[error("data file {}: {reason}", path.display())]
    InvalidData {
        /// The file that was read.
        path: PathBuf,
        /// What is wrong with it and what was expected.
        reason: String,
    },
    /// An I/O operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or folder being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The training loss became NaN or infinite.
    #[error(
        "loss became non-finite ({value}) at epoch {epoch}, step {step} of that epoch (global step {global_step}); \
         lower the learning rate, add gradient clipping or check the data for NaN/inf"
    )]
    NonFiniteLoss {
        /// 1-based epoch.
        epoch: usize,
        /// 0-based step within the epoch.
        step: usize,
        /// 0-based step counted over the whole run.
        global_step: usize,
        /// The non-finite value observed.
        value: f64,
    },
    /// A value that must be finite (an input, an estimate) is NaN or infinite.
    #[error("non-finite value in {context}; {hint}")]
    NonFinite {
        /// Where the value was found.
        context: String,
        /// What to change.
        hint: String,
    },
    /// A checkpoint is missing, corrupt, or was written for another configuration.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint folder or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Writing an image failed.
    #[error("image {}: {reason}", path.display())]
    Image {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// `Result` with [`Error`] as the error type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::InvalidConfig`].
    pub fn config(
        field: &'static str,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Error::InvalidConfig {
            field,
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// Shorthand for [`Error::ShapeMismatch`].
    pub fn shape(
        context: impl Into<String>,
        expected: impl Into<String>,
        actual: impl std::fmt::Debug,
    ) -> Self {
        Error::ShapeMismatch {
            context: context.into(),
            expected: expected.into(),
            actual: format!("{actual:?}"),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Checks that `value > 0` (false for NaN).
pub(crate) fn ensure_positive(field: &'static str, value: f64) -> Result<()> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(Error::config(field, value, "a finite number > 0"))
    }
}

/// Checks that `value >= 0` (false for NaN).
pub(crate) fn ensure_non_negative(field: &'static str, value: f64) -> Result<()> {
    if value >= 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(Error::config(field, value, "a finite number >= 0"))
    }
}

/// Checks that a size is at least 1.
pub(crate) fn ensure_nonzero(field: &'static str, value: usize) -> Result<()> {
    if value >= 1 {
        Ok(())
    } else {
        Err(Error::config(field, value, "an integer >= 1"))
    }
}
