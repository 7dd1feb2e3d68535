//! The [`Analyzer`]: decode, detect, crop and measure photos in parallel, then classify all faces
//! of a batch in one call.

use crate::blazeface::{BlazeDetector, BlazeSettings, LANDMARK_NAMES};
use crate::results::summarise;
use crate::{
    quality, square_crop, AnalyzerConfig, ClassProb, DetectorKind, FaceBox, FaceDetector,
    FaceResult, FacesError, Landmark, PhotoResult, Quality, UNCERTAIN,
};
use emolens_core::{decode_image, CropBox, DecodeLimits, EmotionClassifier, Preprocessor};
use image::{DynamicImage, GenericImageView};
use rayon::prelude::*;
use std::sync::Arc;

/// A face waiting for the batch's classifier call.
struct PendingFace {
    bbox: FaceBox,
    crop: FaceBox,
    score: f32,
    landmarks: Vec<Landmark>,
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
    /// Present when the configuration selects BlazeFace.
    blazeface: Option<BlazeDetector>,
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
        if !(0.0..=1.0).contains(&config.min_blazeface_score) {
            return Err(FacesError::Config(format!(
                "min_blazeface_score is a probability (0..=1), got {}",
                config.min_blazeface_score
            )));
        }
        let detector = FaceDetector::new(config.detector).map_err(FacesError::Config)?;
        let blazeface = match config.detector_kind {
            DetectorKind::SeetaFace => None,
            DetectorKind::BlazeFace => Some(
                BlazeDetector::new(BlazeSettings {
                    min_face_px: config.detector.min_face_px,
                    max_side: config.detector.max_side,
                    ..config.blazeface
                })
                .map_err(FacesError::Config)?,
            ),
        };
        Ok(Analyzer {
            preprocessor: Preprocessor::new(meta.input.clone()),
            classifier,
            detector,
            blazeface,
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

    /// The SeetaFace cascade (built whichever detector is selected).
    pub fn detector(&self) -> &FaceDetector {
        &self.detector
    }

    /// The BlazeFace detector, when selected.
    pub fn blazeface(&self) -> Option<&BlazeDetector> {
        self.blazeface.as_ref()
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

        let detections: Vec<(FaceBox, f32, Vec<Landmark>)> = if self.config.assume_crop {
            let whole = FaceBox {
                x: 0.0,
                y: 0.0,
                width: width as f32,
                height: height as f32,
            };
            vec![(whole, 0.0, Vec::new())]
        } else {
            let mut found: Vec<(crate::Detection, Vec<Landmark>)> = match &self.blazeface {
                Some(b) => b
                    .detect_image(img)
                    .into_iter()
                    .map(|f| {
                        let marks = LANDMARK_NAMES
                            .iter()
                            .zip(f.points)
                            .map(|(name, [x, y])| Landmark {
                                name: name.to_string(),
                                x,
                                y,
                            })
                            .collect();
                        (f.detection, marks)
                    })
                    .collect(),
                None => self
                    .detector
                    .detect_image(img)
                    .into_iter()
                    .map(|d| (d, Vec::new()))
                    .collect(),
            };
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
                    match &self.blazeface {
                        Some(b) => b.smallest_findable_face(width, height),
                        None => self.detector.smallest_findable_face(width, height),
                    }
                ));
            }
            found
                .into_iter()
                .map(|(d, marks)| {
                    let b = FaceBox {
                        x: d.x,
                        y: d.y,
                        width: d.width,
                        height: d.height,
                    };
                    (b, d.score, marks)
                })
                .collect()
        };

        let faces = detections
            .into_iter()
            .map(|(bbox, score, marks)| self.pend_face(img, bbox, score, marks))
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

    fn pend_face(
        &self,
        img: &DynamicImage,
        bbox: FaceBox,
        score: f32,
        landmarks: Vec<Landmark>,
    ) -> PendingFace {
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
            landmarks,
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
            let min_score = match cfg.detector_kind {
                DetectorKind::SeetaFace => cfg.min_detector_score,
                DetectorKind::BlazeFace => cfg.min_blazeface_score,
            };
            if !cfg.assume_crop && f.score < min_score {
                reasons.push(format!(
                    "weak detection: score {:.2} under {:.2}",
                    f.score, min_score
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
                landmarks: f.landmarks,
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

/// The server shares one analyzer between request threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Analyzer>();
};
