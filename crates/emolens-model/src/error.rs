use std::path::PathBuf;

/// Errors of the model layer: architectures, model files, inference.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("architecture: {0}")]
    Architecture(String),
    #[error("architecture: layer {layer}: {reason}")]
    Layer { layer: String, reason: String },
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error("model file {source_name}: {detail}")]
    ModelFile { source_name: String, detail: String },
    /// A model file that cannot be exported (`emolens model export`), and why.
    #[error("export of {source_name}: {detail}")]
    Export { source_name: String, detail: String },
    #[error("inference: {0}")]
    Inference(String),
    #[error(transparent)]
    Core(#[from] emolens_core::CoreError),
}
