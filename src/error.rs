//! The crate's one error type.
//!
//! Every fallible public function returns [`Result<T>`](Result). Each variant carries
//! structured fields and a message that says what to change.

use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong when a user hands `elbo` a config, a file or a batch.
///
/// `Clone`, so that an error can travel in a value burn requires to be `Clone` (a batch
/// from burn's `DataLoader`): the one foreign source it holds, an I/O error, is shared.
#[derive(Clone, Debug, thiserror::Error)]
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
    /// A data folder does not exist or lacks files it must hold. Every file is checked
    /// before any is read, so one error names everything that is missing.
    #[error("{}", data_folder_message(folder, kind, *exists, missing, required, set_by.as_deref()))]
    DataFolder {
        /// The folder that was given.
        folder: PathBuf,
        /// What the folder holds, in words ("MNIST", "sentence").
        kind: &'static str,
        /// Whether the folder exists (as a folder).
        exists: bool,
        /// The required files it lacks (all of them when it does not exist).
        missing: Vec<String>,
        /// Every file it must hold.
        required: Vec<String>,
        /// How the caller chose the folder (a flag such as `--data DIR`, an environment
        /// variable), for the message; see [`Error::set_by`].
        set_by: Option<String>,
    },
    /// An I/O operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or folder being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Arc<std::io::Error>,
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

    /// Names how the data folder of an [`Error::DataFolder`] is chosen (`"--data DIR"`,
    /// `"$ELBO_MNIST_DIR"`), so that its message says what to change; other errors pass
    /// through unchanged.
    ///
    /// ```
    /// let err = elbo::data::Mnist::load("no/such/folder").unwrap_err().set_by("--data DIR");
    /// let message = err.to_string();
    /// assert!(message.contains("no/such/folder") && message.contains("--data DIR"));
    /// assert!(message.contains("train-images-idx3-ubyte.gz"));
    /// ```
    pub fn set_by(mut self, how: impl Into<String>) -> Self {
        if let Error::DataFolder { set_by, .. } = &mut self {
            *set_by = Some(how.into());
        }
        self
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }
}

/// The message of [`Error::DataFolder`].
fn data_folder_message(
    folder: &std::path::Path,
    kind: &str,
    exists: bool,
    missing: &[String],
    required: &[String],
    set_by: Option<&str>,
) -> String {
    let problem = if exists {
        format!("is missing {}", missing.join(", "))
    } else {
        "does not exist or is not a folder".to_string()
    };
    let fix = match set_by {
        Some(how) => format!("; point {how} at a folder that holds them"),
        None => String::new(),
    };
    format!(
        "{kind} data folder {}: {problem}; it must hold {}{fix}",
        folder.display(),
        required.join(", ")
    )
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

/// Checks a number of importance samples or posterior draws, `k ≥ 1`: the one check of
/// every `k` the estimators and models take.
pub(crate) fn ensure_samples(k: usize) -> Result<()> {
    ensure_nonzero("k", k)
}

/// Checks that a size is at least 1.
pub(crate) fn ensure_nonzero(field: &'static str, value: usize) -> Result<()> {
    if value >= 1 {
        Ok(())
    } else {
        Err(Error::config(field, value, "an integer >= 1"))
    }
}
