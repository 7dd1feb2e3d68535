//! What an analysis returns: faces, their classification and quality, per-photo summaries.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A box in source-image pixels (after EXIF orientation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

/// A face landmark from the detector, source-image pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Landmark {
    /// `right_eye`, `left_eye` (the person's), `nose_tip`, `mouth`, `right_ear_tragion`,
    /// `left_ear_tragion`.
    pub name: String,
    pub x: f32,
    pub y: f32,
}

/// One class and its probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassProb {
    pub emotion: String,
    pub probability: f32,
}

/// Quality signals of one face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Side of the detected box, source px.
    pub face_px: f32,
    /// Variance of the Laplacian of the crop at 64x64 (higher is sharper).
    pub sharpness: f32,
    /// Mean luma of the crop, 0..255.
    pub brightness: f32,
    /// Standard deviation of the crop's luma (low = washed out or in the dark).
    pub contrast: f32,
}

/// One face and its classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceResult {
    /// The detector's box.
    pub bbox: FaceBox,
    /// The square crop (box plus margin) the classifier saw.
    pub crop: FaceBox,
    /// The detector's score (0 with `assume_crop`, where nothing was detected): SeetaFace's
    /// cascade score (typically 2..40), or BlazeFace's probability (0..1).
    pub detector_score: f32,
    /// Landmarks, when the detector gives them (BlazeFace); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub landmarks: Vec<Landmark>,
    /// Class probabilities in the model's output order; empty when not classified.
    pub probabilities: Vec<ClassProb>,
    /// The most probable emotion, or `"uncertain"` when the face fails the quality gate.
    pub top_emotion: String,
    /// The classifier's most probable class even when uncertain; `None` when not classified.
    pub predicted_emotion: Option<String>,
    /// Probability of the most probable class (0 when not classified).
    pub confidence: f32,
    pub quality: Quality,
    pub uncertain: bool,
    pub uncertain_reasons: Vec<String>,
    /// False for faces under `min_face_px`, which are reported but not classified.
    pub classified: bool,
}

/// Per-photo summary over its faces.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PhotoSummary {
    pub face_count: usize,
    /// Faces that passed the quality gate.
    pub confident_count: usize,
    pub uncertain_count: usize,
    /// Faces under the minimum size (reported, not classified).
    pub too_small_count: usize,
    /// Confident faces per top emotion.
    pub emotion_counts: BTreeMap<String, usize>,
    /// The most frequent top emotion among confident faces (ties: higher mean probability).
    pub dominant_emotion: Option<String>,
    /// Mean probabilities over the confident faces, in model order; empty when there are none.
    pub mean_probabilities: Vec<ClassProb>,
}

/// Everything found in one photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoResult {
    pub source: String,
    /// Size after EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub faces: Vec<FaceResult>,
    pub summary: PhotoSummary,
    /// Remarks, e.g. "no face found".
    pub notes: Vec<String>,
}

pub(crate) fn summarise(faces: &[FaceResult], classes: &[String]) -> PhotoSummary {
    let confident: Vec<&FaceResult> = faces
        .iter()
        .filter(|f| !f.uncertain && f.classified)
        .collect();
    let mut emotion_counts = BTreeMap::new();
    for f in &confident {
        *emotion_counts.entry(f.top_emotion.clone()).or_insert(0) += 1;
    }
    let mean_probabilities: Vec<ClassProb> = if confident.is_empty() {
        Vec::new()
    } else {
        classes
            .iter()
            .enumerate()
            .map(|(i, c)| ClassProb {
                emotion: c.clone(),
                probability: confident
                    .iter()
                    .map(|f| f.probabilities[i].probability)
                    .sum::<f32>()
                    / confident.len() as f32,
            })
            .collect()
    };
    let mean_of = |e: &str| {
        mean_probabilities
            .iter()
            .find(|p| p.emotion == e)
            .map_or(0.0, |p| p.probability)
    };
    let dominant_emotion = emotion_counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(mean_of(a.0).total_cmp(&mean_of(b.0))))
        .map(|(e, _)| e.clone());
    PhotoSummary {
        face_count: faces.len(),
        confident_count: confident.len(),
        uncertain_count: faces.iter().filter(|f| f.uncertain).count(),
        too_small_count: faces.iter().filter(|f| !f.classified).count(),
        emotion_counts,
        dominant_emotion,
        mean_probabilities,
    }
}
