//! Running a classifier over preprocessed images in batches. Flip test-time augmentation is the
//! model file's own setting, applied inside the classifier (`emolens eval --flip-tta` overrides
//! the setting before loading): it is never averaged a second time here.

use emolens_core::{CoreError, EmotionClassifier, Preprocessor};

/// Probabilities for `n` images stored back to back in `pixels` (each `pre.spec().len()`
/// bytes, as [`Preprocessor::to_pixels`] gives them), `batch` at a time. `on_batch` is called
/// with the number of images done after each batch (for a progress bar).
pub fn predict_pixels(
    classifier: &dyn EmotionClassifier,
    pre: &Preprocessor,
    pixels: &[u8],
    n: usize,
    batch: usize,
    on_batch: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>, CoreError> {
    let len = pre.spec().len();
    let batch = batch.max(1);
    let mut out = Vec::with_capacity(n);
    let mut input = vec![0f32; batch * len];
    for start in (0..n).step_by(batch) {
        let m = batch.min(n - start);
        let chunk = &pixels[start * len..(start + m) * len];
        for (img, slot) in chunk.chunks_exact(len).zip(input.chunks_exact_mut(len)) {
            pre.normalise_into(img, slot);
        }
        let probs = classifier.predict(&input[..m * len], m)?;
        if probs.len() != m {
            return Err(CoreError::Inference(format!(
                "the model returned {} rows for {m} images",
                probs.len()
            )));
        }
        out.extend(probs);
        on_batch(out.len());
    }
    Ok(out)
}
