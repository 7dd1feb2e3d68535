//! Faces in real photos: find every face (an embedded SeetaFace cascade, no download), crop it
//! the way the classifier's training data looks, measure its quality, and classify all faces of
//! a batch of photos in one [`EmotionClassifier::predict`] call.
//!
//! ```text
//! bytes --decode_image--> photo --detect--> boxes --square+margin--> Preprocessor::to_pixels
//!       (parallel per photo, rayon)                                   |
//!                                         one predict() for the batch <+
//! ```
//!
//! The detector gives no landmarks, so faces are not rotated upright; a face turned more than
//! the cascade tolerates is simply not found.

pub mod annotate;
pub mod detect;
pub mod quality;

pub use emolens_core::ErrorKind;
use emolens_core::{
    decode_image, CoreError, CropBox, DecodeLimits, EmotionClassifier, Preprocessor,
};
use image::{DynamicImage, GenericImageView};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

pub use detect::{Detection, DetectorSettings, FaceDetector, DETECTOR_WINDOW_PX};

/// File extensions taken as photos when a folder is searched (the workspace's one list lives in
/// `emolens_core::files`).
pub use emolens_core::files::PHOTO_EXTENSIONS;

/// What the top emotion reads when a face fails the quality gate.
pub const UNCERTAIN: &str = "uncertain";

/// Errors of face analysis. Each names the input and what to do; [`FacesError::kind`] says
/// whether the input or emolens is at fault (front ends map kinds to their own codes).
#[derive(Debug, thiserror::Error)]
pub enum FacesError {
    /// Empty, truncated or corrupt image data ([`ErrorKind::InvalidInput`]).
    #[error("{message}")]
    InvalidImage {
        source_name: String,
        message: String,
    },
    /// Bytes that are no supported image format, or a pixel layout emolens cannot read
    /// ([`ErrorKind::Unsupported`]).
    #[error("{message}")]
    UnsupportedImage {
        source_name: String,
        message: String,
    },
    /// Over the decode limits ([`ErrorKind::TooLarge`]).
    #[error("{message}")]
    TooLarge {
        source_name: String,
        message: String,
    },
    /// The analyzer's settings are inconsistent (a misconfiguration: [`ErrorKind::Internal`]).
    #[error("invalid face analysis settings: {0}")]
    Config(String),
    /// The classifier failed or answered malformed output ([`ErrorKind::Internal`]).
    #[error("emotion classifier failed: {0}")]
    Classifier(String),
    /// Reading or writing a file failed ([`ErrorKind::Internal`]).
    #[error("{path}: {detail}")]
    Io {
        path: std::path::PathBuf,
        detail: String,
    },
    /// A bug caught at the boundary of one photo, so the rest of the batch goes on
    /// ([`ErrorKind::Internal`]).
    #[error("{source_name}: internal error while analysing this photo: {detail}; please report it with the file")]
    Internal { source_name: String, detail: String },
}

impl FacesError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            FacesError::InvalidImage { .. } => ErrorKind::InvalidInput,
            FacesError::UnsupportedImage { .. } => ErrorKind::Unsupported,
            FacesError::TooLarge { .. } => ErrorKind::TooLarge,
            FacesError::Config(_)
            | FacesError::Classifier(_)
            | FacesError::Io { .. }
            | FacesError::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// True when the input, not emolens, is at fault.
    pub fn is_client_error(&self) -> bool {
        self.kind().is_client_error()
    }

    fn from_core(e: CoreError, source_name: &str) -> Self {
        let message = e.to_string();
        let source_name = source_name.to_string();
        match e {
            CoreError::EmptyImage { .. } | CoreError::Decode { .. } | CoreError::Io { .. } => {
                FacesError::InvalidImage {
                    source_name,
                    message,
                }
            }
            CoreError::UnknownFormat { .. } => FacesError::UnsupportedImage {
                source_name,
                message,
            },
            CoreError::TooLarge { .. } => FacesError::TooLarge {
                source_name,
                message,
            },
            CoreError::Meta(m) => FacesError::Config(m),
            CoreError::Inference(m) => FacesError::Classifier(m),
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
    /// Detector settings (cascade threshold, pyramid step, detection size).
    pub detector: DetectorSettings,
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
            detector: DetectorSettings::default(),
            decode_limits: DecodeLimits {
                max_side: 16_384,
                max_alloc: 512 << 20,
            },
            max_faces_per_photo: 200,
        }
    }
}

/// A box in source-image pixels (after EXIF orientation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
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
    /// The cascade's score (0 with `assume_crop`, where nothing was detected).
    pub detector_score: f32,
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

/// A face waiting for the batch's classifier call.
struct PendingFace {
    bbox: FaceBox,
    crop: FaceBox,
    score: f32,
    quality: Quality,
    /// Planar u8 pixels from the shared preprocessing; `None` for faces too small to classify.
    pixels: Option<Vec<u8>>,
}

struct Prepared {
    source: String,
    width: u32,
    height: u32,
    faces: Vec<PendingFace>,
    notes: Vec<String>,
}

/// A batch of photos decoded, detected and cropped ([`Analyzer::prepare_batch`]), waiting for
/// its one classifier call ([`Analyzer::classify_batch`]). It holds only the face crops, not
/// the decoded photos.
pub struct PreparedBatch(Vec<Result<Prepared, FacesError>>);

impl PreparedBatch {
    /// Photos in the batch (failed ones included).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Finds and classifies faces. `Send + Sync`; share it in an `Arc`.
pub struct Analyzer {
    classifier: Arc<dyn EmotionClassifier>,
    preprocessor: Preprocessor,
    detector: FaceDetector,
    config: AnalyzerConfig,
}

impl Analyzer {
    /// Checks the settings and parses the embedded detector model.
    pub fn new(
        classifier: Arc<dyn EmotionClassifier>,
        config: AnalyzerConfig,
    ) -> Result<Self, FacesError> {
        let meta = classifier.meta();
        meta.validate()
            .map_err(|e| FacesError::Config(e.to_string()))?;
        if !(0.0..=2.0).contains(&config.margin) {
            return Err(FacesError::Config(format!(
                "margin {} is out of range 0..=2 (fraction of the face box added on each side)",
                config.margin
            )));
        }
        for (name, v) in [
            ("min_confidence", config.min_confidence),
            ("min_sharpness", config.min_sharpness),
            ("min_detector_score", config.min_detector_score),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(FacesError::Config(format!(
                    "{name} must be a finite number >= 0, got {v}"
                )));
            }
        }
        if config.min_confidence > 1.0 {
            return Err(FacesError::Config(format!(
                "min_confidence is a probability (0..=1), got {}",
                config.min_confidence
            )));
        }
        if config.max_faces_per_photo == 0 {
            return Err(FacesError::Config(
                "max_faces_per_photo must be at least 1".into(),
            ));
        }
        let detector = FaceDetector::new(config.detector).map_err(FacesError::Config)?;
        Ok(Analyzer {
            preprocessor: Preprocessor::new(meta.input.clone()),
            classifier,
            detector,
            config,
        })
    }

    pub fn config(&self) -> &AnalyzerConfig {
        &self.config
    }

    /// The model's class names, in output order.
    pub fn classes(&self) -> &[String] {
        &self.classifier.meta().classes
    }

    pub fn detector(&self) -> &FaceDetector {
        &self.detector
    }

    /// Runs the classifier once on one blank face, so its one-off start-up cost (first-call
    /// allocations and kernel set-up, about 0.1-0.3 s on the CPU backend) is paid before the
    /// first photo rather than inside it. Optional: results are the same without it.
    pub fn warm_up(&self) -> Result<(), FacesError> {
        let pixels = vec![128u8; self.preprocessor.spec().len()];
        let mut input = vec![0.0f32; pixels.len()];
        self.preprocessor.normalise_into(&pixels, &mut input);
        let started = std::time::Instant::now();
        self.classifier
            .predict(&input, 1)
            .map_err(|e| FacesError::Classifier(e.to_string()))?;
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "classifier warmed up"
        );
        Ok(())
    }

    /// Analyses one photo.
    pub fn analyze_bytes(
        &self,
        bytes: &[u8],
        source_name: &str,
    ) -> Result<PhotoResult, FacesError> {
        let prepared = self.prepare_guarded(source_name, bytes);
        self.classify(vec![prepared]).pop().unwrap_or_else(|| {
            Err(FacesError::Internal {
                source_name: source_name.to_string(),
                detail: "no result came back".into(),
            })
        })
    }

    /// Analyses a batch: decode and detect in parallel (rayon), then classify all faces of the
    /// batch in one `predict` call. One result per item, in order; a bad item fails alone.
    pub fn analyze_batch(
        &self,
        items: Vec<(String, Vec<u8>)>,
    ) -> Vec<Result<PhotoResult, FacesError>> {
        self.classify_batch(self.prepare_batch(items))
    }

    /// The first half of [`Analyzer::analyze_batch`]: decode, detect and crop each photo, in
    /// parallel (rayon). Split out so a caller can classify one batch while the next is being
    /// prepared (the CLI does, with `rayon::join`).
    pub fn prepare_batch(&self, items: Vec<(String, Vec<u8>)>) -> PreparedBatch {
        PreparedBatch(
            items
                .into_par_iter()
                // Each photo's bytes are dropped as soon as it is decoded and cropped.
                .map(|(name, bytes)| self.prepare_guarded(&name, &bytes))
                .collect(),
        )
    }

    /// Like [`Analyzer::prepare_batch`] for pictures already decoded (video frames): detect,
    /// crop and measure each, in parallel. The pictures stay the caller's.
    pub fn prepare_images(&self, items: &[(String, DynamicImage)]) -> PreparedBatch {
        PreparedBatch(
            items
                .par_iter()
                .map(|(name, img)| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.prepare_decoded(name, img)
                    }))
                    .unwrap_or_else(|panic| Err(internal(name, panic)))
                })
                .collect(),
        )
    }

    /// The second half of [`Analyzer::analyze_batch`]: one `predict` call for every
    /// classifiable face of the batch; one result per photo, in the batch's order.
    pub fn classify_batch(&self, batch: PreparedBatch) -> Vec<Result<PhotoResult, FacesError>> {
        self.classify(batch.0)
    }

    /// Classifies `batch` (when there is one) while `work` runs, on the same thread pool: a
    /// streaming caller passes the preparation of its next batch as `work`, so the classifier
    /// and the detector run at the same time and at most two batches are held in memory.
    pub fn classify_while<T: Send>(
        &self,
        batch: Option<PreparedBatch>,
        work: impl FnOnce() -> T + Send,
    ) -> (Option<Vec<Result<PhotoResult, FacesError>>>, T) {
        rayon::join(|| batch.map(|b| self.classify_batch(b)), work)
    }

    /// Decode, detect, crop and measure one photo; a panic in a dependency becomes this
    /// photo's error instead of ending the batch.
    fn prepare_guarded(&self, source_name: &str, bytes: &[u8]) -> Result<Prepared, FacesError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.prepare(source_name, bytes)
        }))
        .unwrap_or_else(|panic| Err(internal(source_name, panic)))
    }

    fn prepare(&self, source_name: &str, bytes: &[u8]) -> Result<Prepared, FacesError> {
        check_decoded_size(bytes, source_name, &self.config.decode_limits)?;
        let img = decode_image(bytes, source_name, &self.config.decode_limits)
            .map_err(|e| FacesError::from_core(e, source_name))?;
        self.prepare_decoded(source_name, &img)
    }

    /// Detect, crop and measure the faces of an already decoded picture.
    fn prepare_decoded(
        &self,
        source_name: &str,
        img: &DynamicImage,
    ) -> Result<Prepared, FacesError> {
        let (width, height) = img.dimensions();
        let mut notes = Vec::new();

        let detections: Vec<(FaceBox, f32)> = if self.config.assume_crop {
            let whole = FaceBox {
                x: 0.0,
                y: 0.0,
                width: width as f32,
                height: height as f32,
            };
            vec![(whole, 0.0)]
        } else {
            let mut found = self.detector.detect_image(img);
            if found.len() > self.config.max_faces_per_photo {
                notes.push(format!(
                    "{} faces found; only the {} with the best detector scores are kept",
                    found.len(),
                    self.config.max_faces_per_photo
                ));
                found.truncate(self.config.max_faces_per_photo);
            }
            if found.is_empty() {
                notes.push(format!(
                    "no face found (the smallest face findable in this {width}x{height} photo is {:.0} px)",
                    self.detector.smallest_findable_face(width, height)
                ));
            }
            found
                .into_iter()
                .map(|d| {
                    let b = FaceBox {
                        x: d.x,
                        y: d.y,
                        width: d.width,
                        height: d.height,
                    };
                    (b, d.score)
                })
                .collect()
        };

        let faces = detections
            .into_iter()
            .map(|(bbox, score)| self.pend_face(img, bbox, score))
            .collect();
        tracing::debug!(source = source_name, width, height, "photo prepared");
        Ok(Prepared {
            source: source_name.to_string(),
            width,
            height,
            faces,
            notes,
        })
    }

    fn pend_face(&self, img: &DynamicImage, bbox: FaceBox, score: f32) -> PendingFace {
        let (w, h) = img.dimensions();
        let crop = if self.config.assume_crop {
            bbox
        } else {
            square_crop(bbox, self.config.margin, w, h)
        };
        let cb = CropBox {
            x: crop.x,
            y: crop.y,
            width: crop.width,
            height: crop.height,
        };
        // Quality is measured on the same region the classifier sees.
        let x0 = crop.x.max(0.0).floor() as u32;
        let y0 = crop.y.max(0.0).floor() as u32;
        let cw = (crop.width.ceil() as u32).clamp(1, w - x0.min(w - 1));
        let ch = (crop.height.ceil() as u32).clamp(1, h - y0.min(h - 1));
        // Only the face region is turned grayscale, never the whole (possibly huge) photo.
        let region = img
            .crop_imm(x0.min(w - 1), y0.min(h - 1), cw, ch)
            .to_luma8();
        let (brightness, contrast) = quality::brightness_contrast(&region);
        let quality = Quality {
            face_px: bbox.width.min(bbox.height),
            sharpness: quality::sharpness(&region),
            brightness,
            contrast,
        };
        let classifiable = quality.face_px >= self.config.min_face_px as f32;
        PendingFace {
            bbox,
            crop,
            score,
            pixels: classifiable.then(|| self.preprocessor.to_pixels(img, Some(cb))),
            quality,
        }
    }

    /// Runs the classifier once over every classifiable face of the batch and builds results.
    fn classify(
        &self,
        prepared: Vec<Result<Prepared, FacesError>>,
    ) -> Vec<Result<PhotoResult, FacesError>> {
        let per_face = self.preprocessor.spec().len();
        let n: usize = prepared
            .iter()
            .flatten()
            .map(|p| p.faces.iter().filter(|f| f.pixels.is_some()).count())
            .sum();
        let mut inputs = vec![0.0f32; n * per_face];
        let mut i = 0;
        for p in prepared.iter().flatten() {
            for px in p.faces.iter().filter_map(|f| f.pixels.as_ref()) {
                self.preprocessor
                    .normalise_into(px, &mut inputs[i * per_face..(i + 1) * per_face]);
                i += 1;
            }
        }
        let classes = self.classes();
        let probs: Result<Vec<Vec<f32>>, FacesError> = if n == 0 {
            Ok(Vec::new())
        } else {
            let started = std::time::Instant::now();
            let out = self
                .classifier
                .predict(&inputs, n)
                .map_err(|e| FacesError::Classifier(e.to_string()))
                .and_then(|rows| {
                    if rows.len() != n || rows.iter().any(|r| r.len() != classes.len()) {
                        Err(FacesError::Classifier(format!(
                            "expected {n} rows of {} probabilities, got {} rows",
                            classes.len(),
                            rows.len()
                        )))
                    } else {
                        Ok(rows)
                    }
                });
            tracing::debug!(
                faces = n,
                ms = started.elapsed().as_millis() as u64,
                "batch classified"
            );
            out
        };
        drop(inputs);

        let mut rows = match probs {
            Ok(rows) => rows.into_iter(),
            Err(e) => {
                // Photos with faces to classify share the failure; photos without still report.
                let msg = e.to_string();
                return prepared
                    .into_iter()
                    .map(|p| {
                        let p = p?;
                        if p.faces.iter().any(|f| f.pixels.is_some()) {
                            Err(FacesError::Classifier(format!("{}: {msg}", p.source)))
                        } else {
                            Ok(self.finish(p, &mut std::iter::empty()))
                        }
                    })
                    .collect();
            }
        };
        prepared
            .into_iter()
            .map(|p| p.map(|p| self.finish(p, &mut rows)))
            .collect()
    }

    fn finish(&self, p: Prepared, rows: &mut dyn Iterator<Item = Vec<f32>>) -> PhotoResult {
        let classes = self.classes();
        let cfg = &self.config;
        let mut faces = Vec::with_capacity(p.faces.len());
        for f in p.faces {
            let mut reasons = Vec::new();
            let row = if f.pixels.is_some() {
                rows.next()
            } else {
                None
            };
            if f.pixels.is_none() {
                reasons.push(format!(
                    "face is {:.0} px, under the {} px minimum; not classified",
                    f.quality.face_px, cfg.min_face_px
                ));
            }
            if f.quality.sharpness < cfg.min_sharpness {
                reasons.push(format!(
                    "blurred: sharpness {:.1} under {:.1}",
                    f.quality.sharpness, cfg.min_sharpness
                ));
            }
            if !cfg.assume_crop && f.score < cfg.min_detector_score {
                reasons.push(format!(
                    "weak detection: score {:.2} under {:.2}",
                    f.score, cfg.min_detector_score
                ));
            }
            let (probabilities, predicted, confidence) = match &row {
                Some(r) => {
                    let (best, conf) = r.iter().enumerate().fold((0, f32::MIN), |acc, (i, &v)| {
                        if v > acc.1 {
                            (i, v)
                        } else {
                            acc
                        }
                    });
                    let probs = classes
                        .iter()
                        .zip(r)
                        .map(|(c, &p)| ClassProb {
                            emotion: c.clone(),
                            probability: p,
                        })
                        .collect();
                    (probs, Some(classes[best].clone()), conf)
                }
                None => (Vec::new(), None, 0.0),
            };
            if row.is_some() && confidence < cfg.min_confidence {
                reasons.push(format!(
                    "low confidence: {confidence:.2} under {:.2}",
                    cfg.min_confidence
                ));
            }
            let uncertain = !reasons.is_empty();
            faces.push(FaceResult {
                bbox: f.bbox,
                crop: f.crop,
                detector_score: f.score,
                probabilities,
                top_emotion: match (&predicted, uncertain) {
                    (Some(e), false) => e.clone(),
                    _ => UNCERTAIN.to_string(),
                },
                predicted_emotion: predicted,
                confidence,
                quality: f.quality,
                uncertain,
                uncertain_reasons: reasons,
                classified: row.is_some(),
            });
        }
        let summary = summarise(&faces, classes);
        PhotoResult {
            source: p.source,
            width: p.width,
            height: p.height,
            faces,
            summary,
            notes: p.notes,
        }
    }
}

/// A panic caught at the boundary of one photo, as that photo's error.
fn internal(source_name: &str, panic: Box<dyn std::any::Any + Send>) -> FacesError {
    let detail = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(source = source_name, %detail, "photo analysis panicked");
    FacesError::Internal {
        source_name: source_name.to_string(),
        detail,
    }
}

/// Refuses, from the header alone, an image whose decoded pixels would exceed the memory bound
/// (`decode_image` checks the side length; the pixel buffer itself is checked here so a small
/// file announcing e.g. 15000x15000 never gets its 640 MiB allocated).
fn check_decoded_size(
    bytes: &[u8],
    source_name: &str,
    limits: &DecodeLimits,
) -> Result<(), FacesError> {
    use image::ImageDecoder;
    let Ok(reader) = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format()
    else {
        return Ok(()); // decode_image reports unreadable input with its own message
    };
    let Ok(decoder) = reader.into_decoder() else {
        return Ok(());
    };
    let (w, h) = decoder.dimensions();
    let total = decoder.total_bytes();
    if total > limits.max_alloc {
        return Err(FacesError::TooLarge {
            source_name: source_name.to_string(),
            message: format!(
                "{source_name}: image is {w}x{h}, its pixels need {} MiB, over the memory bound of {} MiB per photo; downscale it first",
                total >> 20,
                limits.max_alloc >> 20
            ),
        });
    }
    Ok(())
}

/// Square box around `b`'s centre, side = longer side * (1 + 2 * margin), moved inside the
/// image where it fits so the crop is not squashed at the borders.
pub fn square_crop(b: FaceBox, margin: f32, img_w: u32, img_h: u32) -> FaceBox {
    let side = b.width.max(b.height) * (1.0 + 2.0 * margin);
    let cx = b.x + b.width / 2.0;
    let cy = b.y + b.height / 2.0;
    let place = |centre: f32, limit: f32| {
        let start = centre - side / 2.0;
        if side >= limit {
            // Larger than the image: centre it; the preprocessing clamps.
            start
        } else {
            start.clamp(0.0, limit - side)
        }
    };
    FaceBox {
        x: place(cx, img_w as f32),
        y: place(cy, img_h as f32),
        width: side,
        height: side,
    }
}

fn summarise(faces: &[FaceResult], classes: &[String]) -> PhotoSummary {
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

/// The server shares one analyzer between request threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Analyzer>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_crop_adds_margin_and_stays_inside() {
        let close = |a: f32, b: f32| (a - b).abs() < 1e-3;
        let b = |x, y, w, h| FaceBox {
            x,
            y,
            width: w,
            height: h,
        };
        let c = square_crop(b(100.0, 100.0, 50.0, 40.0), 0.1, 1000, 1000);
        assert!(close(c.width, 60.0) && close(c.height, 60.0), "{c:?}");
        assert!(close(c.x, 95.0) && close(c.y, 90.0), "{c:?}");
        // At the border the square is shifted in, not squashed.
        let c = square_crop(b(0.0, 0.0, 50.0, 50.0), 0.2, 1000, 1000);
        assert!(
            close(c.x, 0.0) && close(c.y, 0.0) && close(c.width, 70.0),
            "{c:?}"
        );
        let c = square_crop(b(960.0, 10.0, 40.0, 40.0), 0.5, 1000, 1000);
        assert!(close(c.x, 920.0) && close(c.width, 80.0), "{c:?}");
    }

    #[test]
    fn errors_have_kinds() {
        let e = FacesError::from_core(
            CoreError::EmptyImage {
                source_name: "a".into(),
            },
            "a",
        );
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.kind().report_status(), 400);
        let e = FacesError::from_core(
            CoreError::UnknownFormat {
                source_name: "a".into(),
                detail: "x".into(),
            },
            "a",
        );
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(e.kind().report_status(), 415);
        let e = FacesError::from_core(
            CoreError::TooLarge {
                source_name: "a".into(),
                width: 1,
                height: 1,
                max: 1,
                max_alloc_mib: 1,
            },
            "a",
        );
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        assert_eq!(e.kind().report_status(), 413);
        assert!(e.to_string().contains('a'));
        assert!(!FacesError::Classifier("x".into()).is_client_error());
        assert_eq!(
            FacesError::Classifier("x".into()).kind().report_status(),
            500
        );
    }
}
