//! The analysis settings.

use crate::blazeface::BlazeSettings;
use crate::DetectorSettings;
use emolens_core::DecodeLimits;

/// Which face detector the analysis uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetectorKind {
    /// The SeetaFace frontal cascade ([`crate::FaceDetector`]): no landmarks.
    #[default]
    SeetaFace,
    /// MediaPipe's BlazeFace CNN ([`crate::blazeface::BlazeDetector`]): six landmarks per face.
    BlazeFace,
}

impl DetectorKind {
    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            DetectorKind::SeetaFace => "seetaface",
            DetectorKind::BlazeFace => "blazeface",
        }
    }
}

impl std::str::FromStr for DetectorKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "seetaface" | "seeta" => Ok(DetectorKind::SeetaFace),
            "blazeface" | "blaze" => Ok(DetectorKind::BlazeFace),
            other => Err(format!(
                "unknown face detector {other:?}: use seetaface or blazeface"
            )),
        }
    }
}

/// Settings of the analysis. Defaults are the measured ones documented on each field.
#[derive(Debug, Clone)]
pub struct AnalyzerConfig {
    /// Faces whose detected box is smaller than this (source px) are reported, not classified.
    /// 48 = the FER training crop size: smaller faces would be upscaled without detail.
    pub min_face_px: u32,
    /// Context added around the detector's box on each side, as a fraction of its side, so the
    /// crop looks like a FER2013 training crop. 0.05: over 106 FER2013 test crops pasted at
    /// 144 px, the crop side was a median 1.10 times the detector's box, centred on it.
    pub margin: f32,
    /// Skip detection: each image is one ready face crop.
    pub assume_crop: bool,
    /// Top-class probability under which the face is "uncertain".
    pub min_confidence: f32,
    /// Laplacian variance (crop at 64x64) under which the face is "uncertain" (blurred). 80 is
    /// the 1st percentile over 1,311 FER2013 test crops (median 417): blurrier than 99% of the
    /// data the classifier learnt from (`examples/calibrate_sharpness.rs`).
    pub min_sharpness: f32,
    /// Detector score under which the face is "uncertain". The cascade keeps boxes from 2.0; true
    /// faces in FER2013 composites scored a median of 15.8, and 2..3 is the weak tail.
    pub min_detector_score: f32,
    /// Which detector finds the faces. SeetaFace stays the default until BlazeFace measures
    /// better on every axis of `bench/analyze`.
    pub detector_kind: DetectorKind,
    /// SeetaFace settings (cascade threshold, pyramid step, detection size).
    pub detector: DetectorSettings,
    /// BlazeFace settings (network, score threshold, pyramid); its `min_face_px` and `max_side`
    /// are taken from `detector` so both detectors look for the same smallest face.
    pub blazeface: BlazeSettings,
    /// BlazeFace score (0..1) under which the face is "uncertain". 0.5 is MediaPipe's own
    /// acceptance threshold, so by default no BlazeFace face is weak: its scores are on another
    /// scale than the cascade's, which `min_detector_score` is for.
    pub min_blazeface_score: f32,
    /// Decode bounds per photo; peak decode memory is about this times the worker count.
    pub decode_limits: DecodeLimits,
    /// At most this many faces per photo are kept (best detector scores first).
    pub max_faces_per_photo: usize,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            min_face_px: 48,
            margin: 0.05,
            assume_crop: false,
            min_confidence: 0.4,
            min_sharpness: 80.0,
            min_detector_score: 3.0,
            detector_kind: DetectorKind::default(),
            detector: DetectorSettings::default(),
            blazeface: BlazeSettings::default(),
            min_blazeface_score: 0.5,
            decode_limits: DecodeLimits {
                max_side: 16_384,
                max_alloc: 512 << 20,
            },
            max_faces_per_photo: 200,
        }
    }
}
