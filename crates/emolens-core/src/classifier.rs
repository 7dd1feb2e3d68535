//! The backend trait every consumer of a model (evaluation, face analysis, the server) talks to.
//! Only the `emolens-model` crate implements it; everything else stays free of burn.

use crate::error::CoreError;
use crate::meta::ModelMeta;

/// An emotion classifier loaded from a model file.
pub trait EmotionClassifier: Send + Sync {
    /// The model file's metadata: classes in output order, input spec, normalisation.
    fn meta(&self) -> &ModelMeta;

    /// Runs the model on `n` preprocessed images, concatenated in `inputs` (each
    /// `meta().input.len()` values, planar `C x H x W`, as [`crate::Preprocessor`] makes them).
    /// Returns `n` rows of class probabilities (softmax), in `meta().classes` order.
    fn predict(&self, inputs: &[f32], n: usize) -> Result<Vec<Vec<f32>>, CoreError>;

    /// How the model runs (kernels and number format), for reports: results can differ in the
    /// last digits between runtimes.
    fn runtime(&self) -> String {
        "unspecified".into()
    }
}
