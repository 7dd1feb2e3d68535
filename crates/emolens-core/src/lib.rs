//! Shared vocabulary of emolens: the seven emotions, the model-file metadata, and the one
//! preprocessing path that training, evaluation, the CLI and the server all call.
//!
//! This crate knows nothing of burn, HTTP or SQL.

pub mod classifier;
pub mod emotion;
pub mod error;
pub mod files;
pub mod fingerprint;
pub mod meta;
pub mod paths;
pub mod preprocess;

pub use classifier::EmotionClassifier;
pub use emotion::Emotion;
pub use error::{CoreError, ErrorKind};
pub use meta::{ColourMode, InputSpec, Int8Calibration, ModelMeta, Normalisation};
pub use preprocess::{
    decode_image, mirror_rows, probe_image, CropBox, DecodeLimits, ImageInfo, Preprocessor,
};
