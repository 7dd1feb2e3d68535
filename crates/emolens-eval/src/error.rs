use std::path::PathBuf;

/// Errors of the evaluation layer. Each names the input it concerns and what to do.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The labels/probabilities handed to a metric are inconsistent.
    #[error("evaluation input: {0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
    /// A training-history file is missing, unreadable or not a Keras History JSON.
    #[error("{path}: {detail}")]
    History { path: PathBuf, detail: String },
    /// Drawing a plot failed.
    #[error("plot '{plot}': {detail}")]
    Plot { plot: String, detail: String },
    /// The classifier failed on a batch.
    #[error("inference: {0}")]
    Inference(#[from] emolens_core::CoreError),
}

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        EvalError::Io {
            path: path.into(),
            detail: e.to_string(),
        }
    }
}
