//! Errors that stop a whole data operation. Per-file trouble is a [`crate::Problem`] instead.

use std::path::PathBuf;

/// Errors of the data layer; each names the input and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: cannot read the dataset folder ({detail}); pass the folder that holds train/ (and valid/ or test/)")]
    DatasetUnreadable { path: PathBuf, detail: String },
    #[error("{path}: no split folders found; expected train/, valid/ (or validation/, val/) and/or test/, each holding one folder per class")]
    NoSplits { path: PathBuf },
    #[error("{path}: no usable training images ({detail})")]
    NoTrainingData { path: PathBuf, detail: String },
    #[error("{path}: not a valid emolens manifest: {detail}")]
    Manifest { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error("invalid setting: {0}")]
    Invalid(String),
}
