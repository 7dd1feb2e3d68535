//! Errors of video analysis. Each names the file and says what to do; [`VideoError::kind`] says
//! whether the input or emolens is at fault (front ends map kinds to their own codes).

use emolens_core::ErrorKind;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// FFmpeg recognises no container in the file ([`ErrorKind::Unsupported`]).
    #[error("{source_name}: not a video FFmpeg can read ({detail}); give an MP4, MOV, MKV, WebM or AVI file")]
    NotAVideo { source_name: String, detail: String },
    /// A media file with sound but no picture ([`ErrorKind::Unsupported`]).
    #[error("{source_name}: audio only ({audio_streams} audio stream(s), no video stream); emolens needs a video of the viewers' faces")]
    AudioOnly {
        source_name: String,
        audio_streams: usize,
    },
    /// Video streams exist but none can be decoded ([`ErrorKind::Unsupported`]).
    #[error("{source_name}: the video stream ({codec}) cannot be decoded: {detail}; re-encode it as H.264 or VP9 (e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`)")]
    NoDecodableStream {
        source_name: String,
        codec: String,
        detail: String,
    },
    /// The file holds no frame at all ([`ErrorKind::InvalidInput`]).
    #[error(
        "{source_name}: the video has no frames (zero length{detail}); record the session again"
    )]
    Empty { source_name: String, detail: String },
    /// The container is damaged before any frame could be read ([`ErrorKind::InvalidInput`]).
    #[error("{source_name}: the video is corrupt or truncated and no frame could be decoded ({detail}); re-export or re-upload the complete file")]
    Corrupt { source_name: String, detail: String },
    /// Over a size limit ([`ErrorKind::TooLarge`]).
    #[error("{source_name}: {message}")]
    TooLarge {
        source_name: String,
        message: String,
    },
    /// Bad settings (a misconfiguration: [`ErrorKind::Internal`]).
    #[error("invalid video analysis settings: {0}")]
    Config(String),
    /// The caller asked the analysis to stop ([`crate::VideoOptions::cancel`]):
    /// [`ErrorKind::Cancelled`] (in the service, a job put back in the queue, or one erased while
    /// it ran).
    #[error("{source_name}: analysis cancelled after {at_s:.1} s of video")]
    Cancelled { source_name: String, at_s: f64 },
    /// Reading or writing a file failed.
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
    /// Encoding a video failed (the writer used by tests, benchmarks and annotations).
    #[error("{path}: cannot encode video: {detail}")]
    Encode { path: PathBuf, detail: String },
    /// Face analysis of the frames failed.
    #[error("{source_name}: {error}")]
    Faces {
        source_name: String,
        error: emolens_faces::FacesError,
    },
}

impl VideoError {
    /// What kind of failure this is (a failure of face analysis keeps its own kind).
    pub fn kind(&self) -> ErrorKind {
        match self {
            VideoError::NotAVideo { .. }
            | VideoError::AudioOnly { .. }
            | VideoError::NoDecodableStream { .. } => ErrorKind::Unsupported,
            VideoError::Empty { .. } | VideoError::Corrupt { .. } => ErrorKind::InvalidInput,
            VideoError::TooLarge { .. } => ErrorKind::TooLarge,
            VideoError::Faces { error, .. } => error.kind(),
            VideoError::Cancelled { .. } => ErrorKind::Cancelled,
            VideoError::Config(_) | VideoError::Io { .. } | VideoError::Encode { .. } => {
                ErrorKind::Internal
            }
        }
    }

    /// True when the input, not emolens, is at fault.
    pub fn is_client_error(&self) -> bool {
        self.kind().is_client_error()
    }
}
