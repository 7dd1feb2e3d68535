//! Face detection with the SeetaFace frontal cascade (via `rustface`), whose model file is
//! embedded in the binary: nothing is read from disk or the network at run time.
//!
//! The cascade's window is 40 px and `rustface` never upsamples, so at detection scale 1 the
//! smallest face it finds is 40 px. Large photos are downscaled first (to `detect_max_side` on
//! their longest side), which trades the smallest findable face for speed.

use image::{imageops::FilterType, DynamicImage, GenericImageView, GrayImage};
use rustface::{ImageData, Model};

/// The SeetaFace frontal face detection model (BSD-2-Clause, see `assets/SEETAFACE-LICENSE.txt`).
const SEETA_MODEL: &[u8] = include_bytes!("../assets/seeta_fd_frontal_v1.0.bin");

/// Side of the cascade's window: faces smaller than this (at detection scale) are not found.
pub const DETECTOR_WINDOW_PX: u32 = 40;

/// A detected face in source-image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    /// The cascade's score (higher is more face-like; typical values 2..40).
    pub score: f32,
}

/// Settings of the detector.
#[derive(Debug, Clone, Copy)]
pub struct DetectorSettings {
    /// Detections scoring below this are dropped by the cascade itself.
    pub score_threshold: f64,
    /// Pyramid scale step (0.1..0.99); larger is slower and finds more. 0.75 would cost 20%
    /// less, but its coarser scales put boxes off the faces' true size (IoU under 0.5 in the
    /// composite tests), and the crop the classifier sees depends on the box.
    pub pyramid_scale: f32,
    /// Sliding-window step in pixels at detection scale. 5 would cost about 18% less, with the
    /// same recall on the benchmark's composites but 9 instead of 10 of the 12 faces of the
    /// downscaled-composite test (`examples/detector_sweep.rs`).
    pub window_step: u32,
    /// Photos are downscaled so their longest side is at most this before detection.
    pub max_side: u32,
    /// Smallest face to look for, source px (>= 40, the window). Larger values downscale the
    /// photo before detection, which is faster: 48 px (the training crop size) costs 30% less
    /// than 40 px, and smaller faces would only be reported as too small to classify.
    pub min_face_px: u32,
}

impl Default for DetectorSettings {
    fn default() -> Self {
        DetectorSettings {
            score_threshold: 2.0,
            pyramid_scale: 0.8,
            window_step: 4,
            max_side: 2048,
            min_face_px: 48,
        }
    }
}

/// The parsed cascade, shared by all threads; each detection makes its own cheap detector.
pub struct FaceDetector {
    model: Model,
    settings: DetectorSettings,
}

impl FaceDetector {
    /// Parses the embedded model.
    pub fn new(settings: DetectorSettings) -> Result<Self, String> {
        if !(0.1..=0.99).contains(&settings.pyramid_scale) {
            return Err(format!(
                "detector pyramid scale {} is out of range 0.1..=0.99",
                settings.pyramid_scale
            ));
        }
        if settings.score_threshold <= 0.0 || !settings.score_threshold.is_finite() {
            return Err(format!(
                "detector score threshold {} must be positive",
                settings.score_threshold
            ));
        }
        if settings.window_step == 0 {
            return Err("detector window step must be at least 1".into());
        }
        if settings.min_face_px < DETECTOR_WINDOW_PX {
            return Err(format!(
                "smallest face to detect ({} px) is under the detector window of {DETECTOR_WINDOW_PX} px",
                settings.min_face_px
            ));
        }
        if settings.max_side < DETECTOR_WINDOW_PX {
            return Err(format!(
                "detection size {} is under the detector window of {DETECTOR_WINDOW_PX} px",
                settings.max_side
            ));
        }
        let model = rustface::read_model(SEETA_MODEL)
            .map_err(|e| format!("embedded face detector model is unreadable: {e}"))?;
        Ok(FaceDetector { model, settings })
    }

    pub fn settings(&self) -> &DetectorSettings {
        &self.settings
    }

    /// The scale a photo of this size is detected at (<= 1).
    pub fn detection_scale(&self, width: u32, height: u32) -> f32 {
        let longest = width.max(height).max(1);
        let by_side = self.settings.max_side as f32 / longest as f32;
        let by_face = DETECTOR_WINDOW_PX as f32 / self.settings.min_face_px as f32;
        by_side.min(by_face).min(1.0)
    }

    /// Smallest face (source pixels) that can be found in a photo of this size.
    pub fn smallest_findable_face(&self, width: u32, height: u32) -> f32 {
        DETECTOR_WINDOW_PX as f32 / self.detection_scale(width, height)
    }

    /// Size of the grayscale copy a `width` x `height` photo is detected on.
    pub fn detection_size(&self, width: u32, height: u32) -> (u32, u32) {
        let scale = self.detection_scale(width, height);
        if scale >= 1.0 {
            return (width, height);
        }
        (
            ((width as f32 * scale).round() as u32).max(DETECTOR_WINDOW_PX),
            ((height as f32 * scale).round() as u32).max(DETECTOR_WINDOW_PX),
        )
    }

    /// Finds faces in a grayscale photo; boxes are in the photo's pixels, best score first.
    pub fn detect(&self, gray: &GrayImage) -> Vec<Detection> {
        self.detect_image(&DynamicImage::ImageLuma8(gray.clone()))
    }

    /// Finds faces in a decoded photo of any pixel type; boxes are in the photo's pixels, best
    /// score first. The photo is downscaled (SIMD, antialiased) *before* it is turned grayscale,
    /// so a 12-megapixel photo never gets a full-size grayscale copy.
    pub fn detect_image(&self, img: &DynamicImage) -> Vec<Detection> {
        let (w, h) = img.dimensions();
        // The cascade panics on images smaller than its window; such photos hold no findable face.
        if w < DETECTOR_WINDOW_PX || h < DETECTOR_WINDOW_PX {
            return Vec::new();
        }
        self.detect_in_copy(&self.detection_image(img), w, h)
    }

    /// The grayscale copy of `img` at detection size (see [`FaceDetector::detection_size`]).
    pub fn detection_image(&self, img: &DynamicImage) -> GrayImage {
        let (w, h) = img.dimensions();
        let (dw, dh) = self.detection_size(w, h);
        if (dw, dh) == (w, h) {
            return img.to_luma8();
        }
        downscale(img, dw, dh).unwrap_or_else(|| {
            // Pixel types the SIMD resizer lacks (none of the decoders' usual ones).
            image::imageops::resize(&img.to_luma8(), dw, dh, FilterType::Triangle)
        })
    }

    /// Runs the cascade on a detection copy (from [`FaceDetector::detection_image`]) of a
    /// `width` x `height` photo; boxes are mapped back to the photo's pixels, best score first.
    pub fn detect_in_copy(&self, img: &GrayImage, width: u32, height: u32) -> Vec<Detection> {
        let (dw, dh) = img.dimensions();
        if dw < DETECTOR_WINDOW_PX || dh < DETECTOR_WINDOW_PX {
            return Vec::new();
        }
        let sx = width as f32 / dw as f32;
        let sy = height as f32 / dh as f32;
        let mut detector = rustface::create_detector_with_model(self.model.clone());
        detector.set_min_face_size(DETECTOR_WINDOW_PX);
        detector.set_score_thresh(self.settings.score_threshold);
        detector.set_pyramid_scale_factor(self.settings.pyramid_scale);
        detector.set_slide_window_step(self.settings.window_step, self.settings.window_step);
        let data = ImageData::new(img.as_raw(), dw, dh);
        let mut out: Vec<Detection> = detector
            .detect(&data)
            .into_iter()
            .map(|f| {
                let b = f.bbox();
                Detection {
                    x: b.x() as f32 * sx,
                    y: b.y() as f32 * sy,
                    width: b.width() as f32 * sx,
                    height: b.height() as f32 * sy,
                    score: f.score() as f32,
                }
            })
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        out
    }
}

/// Antialiased (bilinear convolution) SIMD downscale in the photo's own pixel type, then luma.
/// Resizing first and converting second gives the same result as the other way round (both
/// steps are linear in the pixel values) at a fraction of the cost on big photos. `None` for
/// pixel types `fast_image_resize` does not take.
fn downscale(img: &DynamicImage, dw: u32, dh: u32) -> Option<GrayImage> {
    use fast_image_resize::{FilterType as Filter, ResizeAlg, ResizeOptions, Resizer};
    let mut dst = DynamicImage::new(dw, dh, img.color());
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(Filter::Bilinear))
        // Alpha is dropped by the grayscale step anyway; premultiplying would only cost time.
        .use_alpha(false);
    Resizer::new().resize(img, &mut dst, &options).ok()?;
    Some(match dst {
        DynamicImage::ImageLuma8(g) => g,
        other => other.to_luma8(),
    })
}
