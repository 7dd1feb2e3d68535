use std::path::PathBuf;

/// Errors of the shared layer. Each names the input it concerns and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{source_name}: empty file (0 bytes); supply a real image file")]
    EmptyImage { source_name: String },
    #[error("{source_name}: not a recognised image format ({detail}); supported: JPEG, PNG, TIFF, WebP, BMP, GIF")]
    UnknownFormat { source_name: String, detail: String },
    #[error("{source_name}: could not decode image: {detail}")]
    Decode { source_name: String, detail: String },
    #[error("{source_name}: image is {width}x{height}, over the limit of {max} pixels per side (or the memory bound of {max_alloc_mib} MiB); downscale it first")]
    TooLarge {
        source_name: String,
        width: u32,
        height: u32,
        max: u32,
        max_alloc_mib: u64,
    },
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error("model metadata: {0}")]
    Meta(String),
    #[error("inference: {0}")]
    Inference(String),
}
