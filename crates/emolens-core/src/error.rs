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

/// What kind of failure an error of the domain crates (faces, video) is. The domain errors say
/// only which kind they are; each front end decides how to report a kind: the server maps kinds
/// onto its HTTP answers in one place (`emolens_server::error`), and the reports of the command
/// line (`emolens analyze --json`) and the Python package carry [`ErrorKind::report_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is empty, damaged or truncated (an image that does not decode, a video with
    /// no frames).
    InvalidInput,
    /// The input is in a format or encoding emolens does not read (not an image, not a video,
    /// audio only, a codec FFmpeg cannot decode).
    Unsupported,
    /// The input is over a configured size limit.
    TooLarge,
    /// The caller asked the work to stop before it finished.
    Cancelled,
    /// emolens failed, not the input: settings, the classifier, reading or writing files, a bug.
    Internal,
}

impl ErrorKind {
    /// True when the input, not emolens, is at fault.
    pub fn is_client_error(self) -> bool {
        matches!(
            self,
            ErrorKind::InvalidInput | ErrorKind::Unsupported | ErrorKind::TooLarge
        )
    }

    /// The HTTP-style status number a report gives a failed item of this kind: the `status` of
    /// `emolens analyze --json` and of the Python package's results (400 invalid, 415
    /// unsupported, 413 too large, 503 cancelled, 500 internal). The service's own answers are
    /// mapped by the server (`emolens_server::error`).
    pub fn report_status(self) -> u16 {
        match self {
            ErrorKind::InvalidInput => 400,
            ErrorKind::Unsupported => 415,
            ErrorKind::TooLarge => 413,
            ErrorKind::Cancelled => 503,
            ErrorKind::Internal => 500,
        }
    }
}
