//! What the server asks of the inference side: classify one face crop, or find and classify every
//! face in a photo. Both run on blocking threads, never on the async executor.

use crate::error::ServerError;
use emolens_core::{decode_image, DecodeLimits, EmotionClassifier, Preprocessor};
use serde::Serialize;
use std::sync::Arc;

/// A face box in source-image pixels.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

/// One classified face.
#[derive(Debug, Clone, Serialize)]
pub struct FaceReport {
    /// Where the face is; the whole image when the image was taken as a crop.
    #[serde(rename = "box")]
    pub bbox: FaceBox,
    /// Class probabilities in the model's class order.
    pub probabilities: Vec<f32>,
    /// Index of the most probable class.
    pub top: usize,
    /// Quality of the face for classification in [0, 1] (contrast, size, sharpness).
    pub quality: f32,
    /// The analyzer's own verdict on certainty, when it has one; otherwise the server's
    /// thresholds decide.
    #[serde(skip)]
    pub uncertain: Option<bool>,
}

/// The faces of one photo.
#[derive(Debug, Clone, Serialize)]
pub struct PhotoReport {
    pub width: u32,
    pub height: u32,
    pub faces: Vec<FaceReport>,
}

/// Finds and classifies the faces of a photo. The default implementation treats the whole image
/// as one face crop; the face-detecting analyzer of `emolens-faces` plugs in through this trait.
pub trait PhotoAnalyzer: Send + Sync + 'static {
    /// Analyses one encoded image. `name` is used in error messages.
    fn analyze_photo(&self, bytes: &[u8], name: &str) -> Result<PhotoReport, ServerError>;
}

/// Classifies a whole image as one face, the original design's `/api/predict` behaviour.
pub struct CropAnalyzer {
    classifier: Arc<dyn EmotionClassifier>,
    preprocessor: Preprocessor,
    limits: DecodeLimits,
}

impl CropAnalyzer {
    pub fn new(classifier: Arc<dyn EmotionClassifier>, limits: DecodeLimits) -> Self {
        let preprocessor = Preprocessor::new(classifier.meta().input.clone());
        CropAnalyzer {
            classifier,
            preprocessor,
            limits,
        }
    }

    /// The model behind this analyzer.
    pub fn classifier(&self) -> &Arc<dyn EmotionClassifier> {
        &self.classifier
    }

    /// Classifies already-preprocessed inputs (`n` images, planar), checking the output shape.
    pub fn predict_tensors(&self, inputs: &[f32], n: usize) -> Result<Vec<Vec<f32>>, ServerError> {
        let rows = self.classifier.predict(inputs, n)?;
        let classes = self.classifier.meta().classes.len();
        if rows.len() != n || rows.iter().any(|r| r.len() != classes) {
            return Err(ServerError::Inference(format!(
                "model returned {} rows for {n} inputs (expected {classes} values each)",
                rows.len()
            )));
        }
        Ok(rows)
    }

    /// Decodes, preprocesses and classifies one image as a single face.
    pub fn classify_crop(&self, bytes: &[u8], name: &str) -> Result<PhotoReport, ServerError> {
        let img = decode_image(bytes, name, &self.limits)?;
        let pixels = self.preprocessor.to_pixels(&img, None);
        let mut input = vec![0.0; pixels.len()];
        self.preprocessor.normalise_into(&pixels, &mut input);
        let probs = self.predict_tensors(&input, 1)?.remove(0);
        let quality = crop_quality(&pixels, img.width().min(img.height()));
        Ok(PhotoReport {
            width: img.width(),
            height: img.height(),
            faces: vec![FaceReport {
                bbox: FaceBox {
                    x: 0.0,
                    y: 0.0,
                    width: img.width() as f32,
                    height: img.height() as f32,
                },
                top: argmax(&probs),
                probabilities: probs,
                quality,
                uncertain: None,
            }],
        })
    }
}

impl PhotoAnalyzer for CropAnalyzer {
    fn analyze_photo(&self, bytes: &[u8], name: &str) -> Result<PhotoReport, ServerError> {
        self.classify_crop(bytes, name)
    }
}

/// Index of the largest value (first on ties; 0 for an empty slice).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Quality of a face crop from its preprocessed pixels: contrast (pixel standard deviation; a
/// blank or washed-out crop carries no expression) times a size factor (crops under 48 px a side
/// were upscaled and lost detail). 1.0 for a well-lit 48 px crop, 0.0 for a constant one.
pub fn crop_quality(pixels: &[u8], source_min_side: u32) -> f32 {
    if pixels.is_empty() {
        return 0.0;
    }
    let n = pixels.len() as f64;
    let mean = pixels.iter().map(|&p| p as f64).sum::<f64>() / n;
    let var = pixels
        .iter()
        .map(|&p| (p as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    // A std of 40 grey levels is typical of a well-exposed face; more contrast adds nothing.
    let contrast = (var.sqrt() / 40.0).min(1.0);
    let size = (source_min_side as f64 / 48.0).min(1.0);
    (contrast * size) as f32
}

/// Face detection and classification by `emolens-faces`. Its own quality gate (confidence,
/// sharpness, detector score) decides which faces are uncertain; faces too small to classify are
/// left out of the report.
pub struct FacesAnalyzer {
    inner: emolens_faces::Analyzer,
}

impl FacesAnalyzer {
    pub fn new(inner: emolens_faces::Analyzer) -> Self {
        FacesAnalyzer { inner }
    }

    /// Builds the detector-backed analyzer for a classifier with default settings and the
    /// server's decode limits and confidence threshold.
    pub fn for_classifier(
        classifier: Arc<dyn EmotionClassifier>,
        limits: DecodeLimits,
        min_confidence: f32,
    ) -> Result<Self, ServerError> {
        let config = emolens_faces::AnalyzerConfig {
            decode_limits: limits,
            min_confidence,
            ..Default::default()
        };
        emolens_faces::Analyzer::new(classifier, config)
            .map(FacesAnalyzer::new)
            .map_err(|e| ServerError::Internal(format!("face analyzer: {e}")))
    }
}

/// One quality score in [0, 1] from the face crate's signals: sharpness (Laplacian variance;
/// 100 and above counts as sharp), contrast (luma std; 40 and above) and size (48 px and above).
pub fn quality_score(q: &emolens_faces::Quality) -> f32 {
    let sharp = (q.sharpness / 100.0).clamp(0.0, 1.0);
    let contrast = (q.contrast / 40.0).clamp(0.0, 1.0);
    let size = (q.face_px / 48.0).clamp(0.0, 1.0);
    sharp * contrast * size
}

impl PhotoAnalyzer for FacesAnalyzer {
    fn analyze_photo(&self, bytes: &[u8], name: &str) -> Result<PhotoReport, ServerError> {
        let r = self
            .inner
            .analyze_bytes(bytes, name)
            .map_err(ServerError::from)?;
        let classes = self.inner.classes();
        let faces = r
            .faces
            .iter()
            .filter(|f| f.classified && f.probabilities.len() == classes.len())
            .map(|f| {
                // Probabilities come back in model order; map by name to be safe.
                let probabilities: Vec<f32> = classes
                    .iter()
                    .map(|c| {
                        f.probabilities
                            .iter()
                            .find(|p| &p.emotion == c)
                            .map_or(0.0, |p| p.probability)
                    })
                    .collect();
                FaceReport {
                    bbox: FaceBox {
                        x: f.bbox.x,
                        y: f.bbox.y,
                        width: f.bbox.width,
                        height: f.bbox.height,
                    },
                    top: argmax(&probabilities),
                    probabilities,
                    quality: quality_score(&f.quality),
                    uncertain: Some(f.uncertain),
                }
            })
            .collect();
        Ok(PhotoReport {
            width: r.width,
            height: r.height,
            faces,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_picks_first_largest() {
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), 1);
        assert_eq!(argmax(&[0.5, 0.5]), 0);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn quality_is_zero_for_blank_and_high_for_contrast() {
        assert_eq!(crop_quality(&[0u8; 2304], 48), 0.0);
        let stripes: Vec<u8> = (0..2304)
            .map(|i| if i % 2 == 0 { 40 } else { 200 })
            .collect();
        assert!((crop_quality(&stripes, 48) - 1.0).abs() < 1e-6);
        assert!((crop_quality(&stripes, 24) - 0.5).abs() < 1e-6);
    }
}
