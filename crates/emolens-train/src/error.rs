use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Data(#[from] emolens_data::DataError),
    #[error(transparent)]
    Model(#[from] emolens_model::ModelError),
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error("training diverged (loss is not finite) at epoch {epoch}, step {step}; lower --lr or add batch normalisation")]
    Diverged { epoch: usize, step: usize },
}

impl TrainError {
    pub fn io(path: &Path, e: std::io::Error) -> Self {
        TrainError::Io {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    }
}
