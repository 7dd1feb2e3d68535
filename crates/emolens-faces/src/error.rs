//! The errors of face analysis.

use emolens_core::{CoreError, ErrorKind};

/// Errors of face analysis. Each names the input and what to do; [`FacesError::kind`] says
/// whether the input or emolens is at fault (front ends map kinds to their own codes).
#[derive(Debug, thiserror::Error)]
pub enum FacesError {
    /// Empty, truncated or corrupt image data ([`ErrorKind::InvalidInput`]).
    #[error("{message}")]
    InvalidImage {
        source_name: String,
        message: String,
    },
    /// Bytes that are no supported image format, or a pixel layout emolens cannot read
    /// ([`ErrorKind::Unsupported`]).
    #[error("{message}")]
    UnsupportedImage {
        source_name: String,
        message: String,
    },
    /// Over the decode limits ([`ErrorKind::TooLarge`]).
    #[error("{message}")]
    TooLarge {
        source_name: String,
        message: String,
    },
    /// The analyzer's settings are inconsistent (a misconfiguration: [`ErrorKind::Internal`]).
    #[error("invalid face analysis settings: {0}")]
    Config(String),
    /// The classifier failed or answered malformed output ([`ErrorKind::Internal`]).
    #[error("emotion classifier failed: {0}")]
    Classifier(String),
    /// Reading or writing a file failed ([`ErrorKind::Internal`]).
    #[error("{path}: {detail}")]
    Io {
        path: std::path::PathBuf,
        detail: String,
    },
    /// A bug caught at the boundary of one photo, so the rest of the batch goes on
    /// ([`ErrorKind::Internal`]).
    #[error("{source_name}: internal error while analysing this photo: {detail}; please report it with the file")]
    Internal { source_name: String, detail: String },
}

impl FacesError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            FacesError::InvalidImage { .. } => ErrorKind::InvalidInput,
            FacesError::UnsupportedImage { .. } => ErrorKind::Unsupported,
            FacesError::TooLarge { .. } => ErrorKind::TooLarge,
            FacesError::Config(_)
            | FacesError::Classifier(_)
            | FacesError::Io { .. }
            | FacesError::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// True when the input, not emolens, is at fault.
    pub fn is_client_error(&self) -> bool {
        self.kind().is_client_error()
    }

    pub(crate) fn from_core(e: CoreError, source_name: &str) -> Self {
        let message = e.to_string();
        let source_name = source_name.to_string();
        match e {
            CoreError::EmptyImage { .. } | CoreError::Decode { .. } | CoreError::Io { .. } => {
                FacesError::InvalidImage {
                    source_name,
                    message,
                }
            }
            CoreError::UnknownFormat { .. } => FacesError::UnsupportedImage {
                source_name,
                message,
            },
            CoreError::TooLarge { .. } => FacesError::TooLarge {
                source_name,
                message,
            },
            CoreError::Meta(m) => FacesError::Config(m),
            CoreError::Inference(m) => FacesError::Classifier(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_kinds() {
        let e = FacesError::from_core(
            CoreError::EmptyImage {
                source_name: "a".into(),
            },
            "a",
        );
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.kind().report_status(), 400);
        let e = FacesError::from_core(
            CoreError::UnknownFormat {
                source_name: "a".into(),
                detail: "x".into(),
            },
            "a",
        );
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(e.kind().report_status(), 415);
        let e = FacesError::from_core(
            CoreError::TooLarge {
                source_name: "a".into(),
                width: 1,
                height: 1,
                max: 1,
                max_alloc_mib: 1,
            },
            "a",
        );
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        assert_eq!(e.kind().report_status(), 413);
        assert!(e.to_string().contains('a'));
        assert!(!FacesError::Classifier("x".into()).is_client_error());
        assert_eq!(
            FacesError::Classifier("x".into()).kind().report_status(),
            500
        );
    }
}
