//! Faces in real photos: find every face (an embedded SeetaFace cascade, no download), crop it
//! the way the classifier's training data looks, measure its quality, and classify all faces of
//! a batch of photos in one [`emolens_core::EmotionClassifier::predict`] call.
//!
//! ```text
//! bytes --decode_image--> photo --detect--> boxes --square+margin--> Preprocessor::to_pixels
//!       (parallel per photo, rayon)                                   |
//!                                         one predict() for the batch <+
//! ```
//!
//! Two detectors ([`DetectorKind`]): the SeetaFace cascade (the default; no landmarks) and
//! BlazeFace ([`blazeface`], a CNN with six landmarks per face). Faces are not rotated upright
//! yet.

mod analyzer;
pub mod annotate;
pub mod blazeface;
mod config;
mod crop;
pub mod detect;
mod error;
pub mod quality;
mod results;

pub use analyzer::{Analyzer, PreparedBatch};
pub use config::{AnalyzerConfig, DetectorKind};
pub use crop::square_crop;
pub use detect::{Detection, DetectorSettings, FaceDetector, DETECTOR_WINDOW_PX};
pub use emolens_core::ErrorKind;
pub use error::FacesError;
pub use results::{ClassProb, FaceBox, FaceResult, Landmark, PhotoResult, PhotoSummary, Quality};

/// File extensions taken as photos when a folder is searched (the workspace's one list lives in
/// `emolens_core::files`).
pub use emolens_core::files::PHOTO_EXTENSIONS;

/// What the top emotion reads when a face fails the quality gate.
pub const UNCERTAIN: &str = "uncertain";
