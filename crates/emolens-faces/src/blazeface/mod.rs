//! BlazeFace, MediaPipe's CNN face detector with six landmarks (eyes, nose tip, mouth, ear
//! tragions), run by emolens' own interpreter ([`graph`]) on weights embedded in the binary.
//!
//! Two networks (`assets/blazeface_{short,full}.bin`, converted from the TFLite files by
//! `tools/blazeface/convert.py`; Apache-2.0, see `assets/BLAZEFACE-LICENSE.txt`):
//!
//! - short range, 128x128 input, for faces filling a good part of the picture (webcams);
//! - full range, 192x192 input, for smaller faces further from the camera.
//!
//! [`BlazeNet`] runs one network on one input square and decodes its anchors the way MediaPipe
//! does (`SsdAnchorsCalculator`, `TensorsToDetectionsCalculator`, weighted
//! `NonMaxSuppressionCalculator`). [`BlazeDetector`] finds faces in a photo of any size with
//! a pyramid of whole-photo passes (the network is fully convolutional).

mod graph;
mod kernels;

use crate::detect::Detection;
use image::{DynamicImage, GenericImageView, RgbImage};

const SHORT_RANGE: &[u8] = include_bytes!("../../assets/blazeface_short.bin");
const FULL_RANGE: &[u8] = include_bytes!("../../assets/blazeface_full.bin");

/// Which BlazeFace network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlazeModel {
    /// 128x128 input, 896 anchors (strides 8 and 16).
    ShortRange,
    /// 192x192 input, 2,304 anchors (stride 4).
    FullRange,
}

/// The landmarks, in BlazeFace's order. "Right" and "left" are the person's: in an unmirrored
/// photo the right eye is the one on the viewer's left.
pub const LANDMARK_NAMES: [&str; 6] = [
    "right_eye",
    "left_eye",
    "nose_tip",
    "mouth",
    "right_ear_tragion",
    "left_ear_tragion",
];

/// One face found by the network, coordinates relative to its input square (0..1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlazeDetection {
    pub xmin: f32,
    pub ymin: f32,
    pub xmax: f32,
    pub ymax: f32,
    /// Sigmoid of the score logit, 0..1.
    pub score: f32,
    /// `(x, y)` of each landmark, in [`LANDMARK_NAMES`] order.
    pub keypoints: [[f32; 2]; 6],
}

impl BlazeDetection {
    fn area(&self) -> f32 {
        (self.xmax - self.xmin).max(0.0) * (self.ymax - self.ymin).max(0.0)
    }

    fn iou(&self, o: &BlazeDetection) -> f32 {
        let w = self.xmax.min(o.xmax) - self.xmin.max(o.xmin);
        let h = self.ymax.min(o.ymax) - self.ymin.max(o.ymin);
        if w <= 0.0 || h <= 0.0 {
            return 0.0;
        }
        let inter = w * h;
        let union = self.area() + o.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
}

/// One BlazeFace network with its anchor layout.
pub struct BlazeNet {
    model: BlazeModel,
    graph: graph::Graph,
    /// Anchor strides of the heads, in output order, and anchors per cell for each.
    heads: Vec<(usize, usize)>,
    size: usize,
}

/// Score logits are clipped to this before the sigmoid (MediaPipe's `score_clipping_thresh`).
const SCORE_CLIP: f32 = 100.0;

impl BlazeNet {
    /// Parses the embedded network.
    pub fn new(model: BlazeModel) -> Result<Self, String> {
        let bytes = match model {
            BlazeModel::ShortRange => SHORT_RANGE,
            BlazeModel::FullRange => FULL_RANGE,
        };
        let graph = graph::Graph::parse(bytes)
            .map_err(|e| format!("embedded BlazeFace {model:?} network: {e}"))?;
        let [h, w, _] = graph.input_shape();
        if h != w {
            return Err(format!("BlazeFace input {h}x{w} is not square"));
        }
        // face_detection_{short,full}_range_common.pbtxt: strides [8,16,16,16] with two
        // anchors per layer (aspect ratio 1 and the interpolated scale), or [4] with one;
        // consecutive layers of one stride share a grid.
        let heads = match model {
            BlazeModel::ShortRange => vec![(8, 2), (16, 6)],
            BlazeModel::FullRange => vec![(4, 1)],
        };
        Ok(BlazeNet {
            model,
            graph,
            heads,
            size: h,
        })
    }

    pub fn model(&self) -> BlazeModel {
        self.model
    }

    /// Side of the input square the network was trained on.
    pub fn input_size(&self) -> usize {
        self.size
    }

    /// Input sides must be multiples of this; any such size runs (the network is fully
    /// convolutional).
    pub fn size_multiple(&self) -> usize {
        self.graph
            .size_multiple()
            .max(self.heads.iter().map(|h| h.0).max().unwrap_or(1))
    }

    /// The network's raw outputs on an `[h, w, 3]` RGB input scaled to -1..1: regressors
    /// (16 per anchor) and score logits (one per anchor).
    pub fn raw(&self, input: &[f32], h: usize, w: usize) -> (Vec<f32>, Vec<f32>) {
        self.graph.run(input, h, w)
    }

    /// Anchor centres for an `h` x `w` input, input pixels, in the output order: MediaPipe's
    /// `SsdAnchorsCalculator` with `fixed_anchor_size` (centre `(x + 0.5) * stride`).
    pub fn anchors(&self, h: usize, w: usize) -> Vec<[f32; 2]> {
        ssd_anchors(h, w, &self.heads)
    }

    /// Anchors whose score passes `min_score` (0..1), decoded to input pixels; not yet
    /// suppressed.
    pub fn decode(
        &self,
        regressors: &[f32],
        logits: &[f32],
        h: usize,
        w: usize,
        min_score: f32,
    ) -> Vec<BlazeDetection> {
        let anchors = self.anchors(h, w);
        assert_eq!(anchors.len(), logits.len(), "BlazeFace anchors and scores");
        let mut out = Vec::new();
        for (i, (&logit, a)) in logits.iter().zip(&anchors).enumerate() {
            let score = 1.0 / (1.0 + (-logit.clamp(-SCORE_CLIP, SCORE_CLIP)).exp());
            if score <= min_score {
                continue;
            }
            let r = &regressors[i * 16..i * 16 + 16];
            let (cx, cy) = (r[0] + a[0], r[1] + a[1]);
            let (bw, bh) = (r[2], r[3]);
            if bw <= 0.0 || bh <= 0.0 {
                continue;
            }
            let keypoints = std::array::from_fn(|k| [r[4 + 2 * k] + a[0], r[5 + 2 * k] + a[1]]);
            out.push(BlazeDetection {
                xmin: cx - bw / 2.0,
                ymin: cy - bh / 2.0,
                xmax: cx + bw / 2.0,
                ymax: cy + bh / 2.0,
                score,
                keypoints,
            });
        }
        out
    }

    /// Runs the network on an `[h, w, 3]` input and returns its faces (input pixels) after
    /// weighted suppression.
    pub fn detect(
        &self,
        input: &[f32],
        h: usize,
        w: usize,
        min_score: f32,
        nms_iou: f32,
    ) -> Vec<BlazeDetection> {
        let (reg, logits) = self.raw(input, h, w);
        weighted_nms(self.decode(&reg, &logits, h, w, min_score), nms_iou)
    }
}

/// The input tensor of an RGB picture: `px / 127.5 - 1`.
pub fn input_tensor(img: &RgbImage) -> Vec<f32> {
    img.as_raw()
        .iter()
        .map(|&v| v as f32 / 127.5 - 1.0)
        .collect()
}

fn ssd_anchors(h: usize, w: usize, heads: &[(usize, usize)]) -> Vec<[f32; 2]> {
    let mut anchors = Vec::new();
    for &(stride, per_cell) in heads {
        for y in 0..h.div_ceil(stride) {
            for x in 0..w.div_ceil(stride) {
                let c = [
                    (x as f32 + 0.5) * stride as f32,
                    (y as f32 + 0.5) * stride as f32,
                ];
                anchors.extend(std::iter::repeat_n(c, per_cell));
            }
        }
    }
    anchors
}

/// MediaPipe's weighted non-maximum suppression: best score first, every remaining detection
/// overlapping it by more than `iou` is merged into it (box and landmarks averaged, weighted by
/// score; the best score is kept).
pub fn weighted_nms(mut dets: Vec<BlazeDetection>, iou: f32) -> Vec<BlazeDetection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    while let Some(top) = dets.first().copied() {
        let (cluster, rest): (Vec<BlazeDetection>, Vec<BlazeDetection>) =
            dets.into_iter().partition(|d| d.iou(&top) > iou);
        dets = rest;
        if cluster.is_empty() {
            // Degenerate box (no area): keep it alone and go on.
            out.push(top);
            dets.retain(|d| d != &top);
            continue;
        }
        if cluster.len() == 1 {
            out.push(top);
            continue;
        }
        let total: f32 = cluster.iter().map(|d| d.score).sum();
        let avg = |f: &dyn Fn(&BlazeDetection) -> f32| {
            cluster.iter().map(|d| f(d) * d.score).sum::<f32>() / total
        };
        out.push(BlazeDetection {
            xmin: avg(&|d| d.xmin),
            ymin: avg(&|d| d.ymin),
            xmax: avg(&|d| d.xmax),
            ymax: avg(&|d| d.ymax),
            score: top.score,
            keypoints: std::array::from_fn(|k| {
                [avg(&|d| d.keypoints[k][0]), avg(&|d| d.keypoints[k][1])]
            }),
        });
    }
    out
}

/// A face found in a photo: box, score (0..1) and landmarks in the photo's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceLandmarks {
    pub detection: Detection,
    /// `(x, y)` in the photo's pixels, in [`LANDMARK_NAMES`] order.
    pub points: [[f32; 2]; 6],
}

/// Settings of [`BlazeDetector`].
#[derive(Debug, Clone, Copy)]
pub struct BlazeSettings {
    pub model: BlazeModel,
    /// Detections scoring at or under this (0..1) are dropped. MediaPipe uses 0.5.
    pub min_score: f32,
    /// Overlap (IoU) over which detections are merged. MediaPipe uses 0.3.
    pub nms_iou: f32,
    /// Smallest face (source px, box side) to look for.
    pub min_face_px: u32,
    /// Smallest face box (network input px) the network finds reliably: the photo is scaled so
    /// that `min_face_px` becomes this.
    pub net_min_face_px: f32,
    /// Scale ratio between the pyramid's levels: each level finds faces from `net_min_face_px`
    /// to about this many times that.
    pub level_ratio: f32,
    /// Photos longer than this look for proportionally larger faces (the smallest face becomes
    /// `min_face_px * longest / max_side`), as SeetaFace's detection copy does, so a
    /// 12-megapixel photo costs about what a 2,048 px one does.
    pub max_side: u32,
}

impl Default for BlazeSettings {
    fn default() -> Self {
        BlazeSettings {
            model: BlazeModel::ShortRange,
            min_score: 0.5,
            nms_iou: 0.3,
            min_face_px: 48,
            // The astronaut's face pasted at decreasing sizes onto a grey 128 / 192 square is
            // found from a box of 20 px (short range) and 13-21 px (full range).
            net_min_face_px: 20.0,
            level_ratio: 4.0,
            max_side: 2048,
        }
    }
}

/// BlazeFace over whole photos. The network is fully convolutional, so instead of cutting a
/// photo into squares of its training size it runs on the whole photo, scaled so the smallest
/// face wanted becomes the smallest face the network finds; coarser levels (each
/// `level_ratio` smaller) find the bigger faces, down to one level where the photo fits the
/// network's square.
pub struct BlazeDetector {
    net: BlazeNet,
    settings: BlazeSettings,
}

impl BlazeDetector {
    pub fn new(settings: BlazeSettings) -> Result<Self, String> {
        if !(0.0..1.0).contains(&settings.min_score) {
            return Err(format!(
                "BlazeFace min score {} is outside 0..1",
                settings.min_score
            ));
        }
        if !(0.0..=1.0).contains(&settings.nms_iou) {
            return Err(format!(
                "BlazeFace NMS overlap {} is outside 0..=1",
                settings.nms_iou
            ));
        }
        if !(settings.net_min_face_px >= 1.0 && settings.net_min_face_px.is_finite()) {
            return Err(format!(
                "BlazeFace smallest network face {} must be at least 1 px",
                settings.net_min_face_px
            ));
        }
        if !(settings.level_ratio > 1.0 && settings.level_ratio.is_finite()) {
            return Err(format!(
                "BlazeFace level ratio {} must be over 1",
                settings.level_ratio
            ));
        }
        if settings.min_face_px == 0 {
            return Err("BlazeFace smallest face must be at least 1 px".into());
        }
        if settings.max_side == 0 {
            return Err("BlazeFace detection size must be at least 1 px".into());
        }
        Ok(BlazeDetector {
            net: BlazeNet::new(settings.model)?,
            settings,
        })
    }

    pub fn settings(&self) -> &BlazeSettings {
        &self.settings
    }

    pub fn net(&self) -> &BlazeNet {
        &self.net
    }

    /// The scales (<= 1) a `width` x `height` photo is looked at, finest first.
    pub fn scales(&self, width: u32, height: u32) -> Vec<f32> {
        let s = &self.settings;
        let longest = width.max(height).max(1) as f32;
        let fit = self.net.input_size() as f32 / longest;
        let smallest = s.min_face_px as f32 * (longest / s.max_side as f32).max(1.0);
        let mut scale = (s.net_min_face_px / smallest).min(1.0);
        let mut scales = Vec::new();
        loop {
            // A level barely finer than the whole-photo one would look at the same faces again.
            if scale <= fit * 1.25 {
                scales.push(fit.min(1.0));
                break;
            }
            scales.push(scale);
            scale /= s.level_ratio;
        }
        scales
    }

    /// Smallest face (source px) found in a photo of this size.
    pub fn smallest_findable_face(&self, width: u32, height: u32) -> f32 {
        let finest = self.scales(width, height)[0];
        self.settings.net_min_face_px / finest
    }

    /// Faces of a decoded photo, best score first, in the photo's pixels.
    pub fn detect_image(&self, img: &DynamicImage) -> Vec<FaceLandmarks> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Vec::new();
        }
        let rgb;
        let src: &DynamicImage = if matches!(img, DynamicImage::ImageRgb8(_)) {
            img
        } else {
            rgb = DynamicImage::ImageRgb8(img.to_rgb8());
            &rgb
        };
        let mut found: Vec<BlazeDetection> = Vec::new();
        for scale in self.scales(w, h) {
            found.extend(self.detect_at(src, scale));
        }
        // A face seen at two levels is merged the way one network output is.
        weighted_nms(found, self.settings.nms_iou)
            .into_iter()
            .map(|d| FaceLandmarks {
                detection: Detection {
                    x: d.xmin,
                    y: d.ymin,
                    width: d.xmax - d.xmin,
                    height: d.ymax - d.ymin,
                    score: d.score,
                },
                points: d.keypoints,
            })
            .collect()
    }

    /// One pyramid level: the photo scaled by `scale` (placed top-left on a black canvas of a
    /// size the network takes), detections in photo pixels.
    fn detect_at(&self, rgb: &DynamicImage, scale: f32) -> Vec<BlazeDetection> {
        let (w, h) = rgb.dimensions();
        let dw = ((w as f32 * scale).round() as u32).max(1);
        let dh = ((h as f32 * scale).round() as u32).max(1);
        let m = self.net.size_multiple() as u32;
        let n = self.net.input_size() as u32;
        let cw = dw.max(n).div_ceil(m) * m;
        let ch = dh.max(n).div_ceil(m) * m;
        let scaled = resize_rgb(rgb, dw, dh);
        let mut canvas = RgbImage::new(cw, ch);
        image::imageops::replace(&mut canvas, &scaled, 0, 0);
        let (sx, sy) = (w as f32 / dw as f32, h as f32 / dh as f32);
        self.net
            .detect(
                &input_tensor(&canvas),
                ch as usize,
                cw as usize,
                self.settings.min_score,
                self.settings.nms_iou,
            )
            .into_iter()
            .map(|d| BlazeDetection {
                xmin: d.xmin * sx,
                ymin: d.ymin * sy,
                xmax: d.xmax * sx,
                ymax: d.ymax * sy,
                score: d.score,
                keypoints: d.keypoints.map(|[x, y]| [x * sx, y * sy]),
            })
            .collect()
    }
}

/// Antialiased SIMD resize of an RGB8 picture.
fn resize_rgb(src: &DynamicImage, dw: u32, dh: u32) -> RgbImage {
    use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
    if src.dimensions() == (dw, dh) {
        return src.to_rgb8();
    }
    let mut dst = DynamicImage::new_rgb8(dw, dh);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    match Resizer::new().resize(src, &mut dst, &options) {
        Ok(()) => dst.to_rgb8(),
        Err(_) => image::imageops::resize(
            &src.to_rgb8(),
            dw,
            dh,
            image::imageops::FilterType::Triangle,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_mediapipe() {
        let short = ssd_anchors(128, 128, &[(8, 2), (16, 6)]);
        assert_eq!(short.len(), 896);
        assert_eq!(short[0], [4.0, 4.0]);
        assert_eq!(short[1], short[0]);
        assert_eq!(short[2], [12.0, 4.0]);
        // The stride-16 grid starts after 16x16x2 anchors, six per cell.
        assert_eq!(short[512], [8.0, 8.0]);
        assert_eq!(short[517], short[512]);
        assert_eq!(short[518], [24.0, 8.0]);
        let full = ssd_anchors(192, 192, &[(4, 1)]);
        assert_eq!(full.len(), 2304);
        assert_eq!(full[49], [6.0, 6.0]);
        // Any size: the grid follows the feature map.
        assert_eq!(ssd_anchors(64, 192, &[(4, 1)]).len(), 16 * 48);
    }

    fn det(x: f32, y: f32, s: f32, score: f32) -> BlazeDetection {
        BlazeDetection {
            xmin: x,
            ymin: y,
            xmax: x + s,
            ymax: y + s,
            score,
            keypoints: [[x, y]; 6],
        }
    }

    #[test]
    fn weighted_nms_merges_overlaps_by_score() {
        let out = weighted_nms(
            vec![
                det(0.0, 0.0, 1.0, 0.5),
                det(0.2, 0.0, 1.0, 1.5),
                det(5.0, 5.0, 1.0, 0.9),
            ],
            0.3,
        );
        assert_eq!(out.len(), 2);
        // Best first, its score kept, the box averaged with weights 1.5 and 0.5.
        assert_eq!(out[0].score, 1.5);
        assert!((out[0].xmin - 0.15).abs() < 1e-6, "{:?}", out[0]);
        assert!((out[0].keypoints[3][0] - 0.15).abs() < 1e-6);
        assert_eq!(out[1], det(5.0, 5.0, 1.0, 0.9));
        // Under the overlap threshold nothing merges.
        assert_eq!(
            weighted_nms(vec![det(0.0, 0.0, 1.0, 0.5), det(0.9, 0.0, 1.0, 0.6)], 0.3).len(),
            2
        );
    }

    #[test]
    fn pyramid_reaches_the_smallest_face_and_the_whole_photo() {
        let d = BlazeDetector::new(BlazeSettings::default()).unwrap();
        for (w, h) in [(1920u32, 1080u32), (4000, 3000), (512, 512), (300, 2000)] {
            let scales = d.scales(w, h);
            // 48 px, growing with the side beyond 2,048 px.
            let smallest = 48.0 * (w.max(h) as f32 / 2048.0).max(1.0);
            assert!(
                (d.smallest_findable_face(w, h) - smallest).abs() < 1e-3,
                "{w}x{h}: {}",
                d.smallest_findable_face(w, h)
            );
            // The last level holds the whole photo in the network's square.
            let last = *scales.last().unwrap();
            assert!(
                w.max(h) as f32 * last <= 128.0 + 1e-3,
                "{w}x{h}: {scales:?}"
            );
            for pair in scales.windows(2) {
                assert!(
                    pair[1] < pair[0] && pair[0] / pair[1] <= 5.0 + 1e-3,
                    "{scales:?}"
                );
            }
        }
        // A photo smaller than the network's square is looked at once, unscaled.
        assert_eq!(d.scales(100, 80), vec![1.0]);
    }
}
