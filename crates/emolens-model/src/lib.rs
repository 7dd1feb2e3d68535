//! Networks for emotion classification: architecture files (emolens' own format, the original
//! design's layer-name format and Keras model JSON), the burn network built from them, the
//! `.emolens` model file, its ONNX export, and the inference backend behind
//! [`emolens_core::EmotionClassifier`].

pub mod arch;
pub mod calibration;
pub mod classifier;
pub mod error;
pub mod file;
pub mod frozen;
pub mod import;
pub mod net;
pub mod onednn;
pub mod onnx;
pub mod runtime;
pub mod tta;

pub use arch::{Architecture, LayerSpec, Summary};
pub use classifier::{
    bundled_model, cpu_runs_accurate_fast, inference_device, load_classifier, mirror, Bundled,
    BurnClassifier, InferenceNet, BUNDLED_FAST_MODEL, BUNDLED_MODEL,
};
pub use error::ModelError;
pub use file::ModelFile;
pub use import::{parse_architecture, read_architecture_file, Imported};
pub use net::Network;
pub use runtime::{DeviceKind, Kernels, Precision, RuntimeOptions};

/// Re-exported so downstream crates use the same burn as the model.
pub use burn;
