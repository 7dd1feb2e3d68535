//! Running a classifier over preprocessed images in batches, optionally with horizontal-flip
//! test-time augmentation.

use emolens_core::{CoreError, EmotionClassifier, Preprocessor};

/// Mirrors planar `C x H x W` pixels left to right.
pub fn flip_horizontal(pixels: &[u8], width: usize) -> Vec<u8> {
    let mut out = pixels.to_vec();
    for row in out.chunks_exact_mut(width.max(1)) {
        row.reverse();
    }
    out
}

/// Probabilities for `n` images stored back to back in `pixels` (each `pre.spec().len()`
/// bytes, as [`Preprocessor::to_pixels`] gives them), `batch` at a time. With `flip_tta` each
/// image's probabilities are the mean of the image's and its mirror's. `on_batch` is called
/// with the number of images done after each batch (for a progress bar).
pub fn predict_pixels(
    classifier: &dyn EmotionClassifier,
    pre: &Preprocessor,
    pixels: &[u8],
    n: usize,
    batch: usize,
    flip_tta: bool,
    on_batch: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>, CoreError> {
    let len = pre.spec().len();
    let width = pre.spec().width as usize;
    let batch = batch.max(1);
    let mut out = Vec::with_capacity(n);
    let mut input = vec![0f32; batch * len];
    for start in (0..n).step_by(batch) {
        let m = batch.min(n - start);
        let chunk = &pixels[start * len..(start + m) * len];
        for (img, slot) in chunk.chunks_exact(len).zip(input.chunks_exact_mut(len)) {
            pre.normalise_into(img, slot);
        }
        let mut probs = classifier.predict(&input[..m * len], m)?;
        if flip_tta {
            for (img, slot) in chunk.chunks_exact(len).zip(input.chunks_exact_mut(len)) {
                pre.normalise_into(&flip_horizontal(img, width), slot);
            }
            let flipped = classifier.predict(&input[..m * len], m)?;
            for (p, f) in probs.iter_mut().zip(&flipped) {
                for (a, b) in p.iter_mut().zip(f) {
                    *a = (*a + b) / 2.0;
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_mirrors_each_row_of_each_channel() {
        // 2 channels, 2x3.
        let px = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        assert_eq!(
            flip_horizontal(&px, 3),
            vec![3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]
        );
    }
}
