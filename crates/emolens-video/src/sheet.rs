//! The contact sheet of a video (`--annotate`): a grid of evenly spaced sampled frames, each
//! with its time, the viewers' boxes (one colour per viewer), their ids and top emotions, for
//! people to check tracking and results by eye. Only small tiles are kept while the video is
//! analysed, so the sheet costs little memory whatever the video's length.

use crate::analyze::FrameResult;
use crate::decode::VideoInfo;
use emolens_faces::annotate::draw_labelled_box;
use emolens_faces::FaceBox;
use image::{imageops::FilterType, DynamicImage, Rgb, RgbImage};
use plotters::style::Color;

/// Width of one tile, pixels.
const TILE_W: u32 = 320;
/// Tiles per row.
const COLUMNS: u32 = 4;

pub(crate) struct ContactSheet {
    /// Every `stride`-th sampled frame becomes a tile.
    stride: usize,
    max_tiles: usize,
    tile_h: u32,
    tiles: Vec<RgbImage>,
}

impl ContactSheet {
    pub(crate) fn new(info: &VideoInfo, fps: f64, max_tiles: usize) -> Self {
        let expected = info.duration_s.map_or(f64::INFINITY, |d| d * fps).ceil();
        let stride = if expected.is_finite() {
            (expected / max_tiles as f64).ceil().max(1.0) as usize
        } else {
            fps.ceil().max(1.0) as usize
        };
        let tile_h =
            ((TILE_W as f64 * info.height.max(1) as f64 / info.width.max(1) as f64).round() as u32)
                .clamp(16, 4 * TILE_W);
        ContactSheet {
            stride,
            max_tiles,
            tile_h,
            tiles: Vec::new(),
        }
    }

    /// Keeps a tile of this frame when it is one of the evenly spaced ones.
    pub(crate) fn offer(&mut self, image: &DynamicImage, result: &FrameResult) {
        if result.index % self.stride != 0 || self.tiles.len() >= self.max_tiles {
            return;
        }
        let mut tile = image
            .resize_exact(TILE_W, self.tile_h, FilterType::Triangle)
            .to_rgb8();
        let sx = TILE_W as f32 / image.width().max(1) as f32;
        let sy = self.tile_h as f32 / image.height().max(1) as f32;
        for f in &result.faces {
            let b = FaceBox {
                x: f.face.bbox.x * sx,
                y: f.face.bbox.y * sy,
                width: f.face.bbox.width * sx,
                height: f.face.bbox.height * sy,
            };
            let (r, g, bl) = emolens_eval::plots::series_colour(f.viewer as usize - 1).rgb();
            let label = format!("#{} {}", f.viewer, f.face.top_emotion);
            draw_labelled_box(&mut tile, &b, Rgb([r, g, bl]), &label);
        }
        let time = FaceBox {
            x: 2.0,
            y: (self.tile_h as f32 - 2.0).max(0.0),
            width: 1.0,
            height: 1.0,
        };
        draw_labelled_box(
            &mut tile,
            &time,
            Rgb([255, 255, 255]),
            &format!("{:.1} s", result.time_s),
        );
        self.tiles.push(tile);
    }

    /// The grid, 4 tiles per row, 4 px gaps.
    pub(crate) fn finish(self) -> RgbImage {
        let n = self.tiles.len().max(1) as u32;
        let cols = COLUMNS.min(n);
        let rows = n.div_ceil(cols);
        let gap = 4;
        let mut sheet = RgbImage::from_pixel(
            cols * (TILE_W + gap) + gap,
            rows * (self.tile_h + gap) + gap,
            Rgb([32, 32, 32]),
        );
        for (i, tile) in self.tiles.iter().enumerate() {
            let (c, r) = (i as u32 % cols, i as u32 / cols);
            image::imageops::replace(
                &mut sheet,
                tile,
                (gap + c * (TILE_W + gap)) as i64,
                (gap + r * (self.tile_h + gap)) as i64,
            );
        }
        sheet
    }
}
