//! Copies of photos with each face's box and label drawn, for people to check results by eye.
//! The label font is embedded (DejaVu Sans Mono Bold, Bitstream Vera licence, see
//! `assets/DEJAVU-LICENSE.txt`), so no system font is needed.

use crate::{FaceBox, FaceResult, FacesError, PhotoResult};
use ab_glyph::{FontRef, PxScale};
use emolens_core::{decode_image, DecodeLimits};
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut, draw_text_mut, text_size};
use imageproc::rect::Rect;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono-Bold.ttf");

const CONFIDENT: Rgb<u8> = Rgb([40, 200, 80]);
const UNSURE: Rgb<u8> = Rgb([240, 170, 20]);
const TOO_SMALL: Rgb<u8> = Rgb([220, 50, 50]);

/// Draws `result`'s faces on the photo in `bytes` (decoded exactly as the analysis did, EXIF
/// orientation included, so boxes line up).
pub fn annotate_bytes(
    bytes: &[u8],
    source_name: &str,
    result: &PhotoResult,
    limits: &DecodeLimits,
) -> Result<RgbImage, FacesError> {
    let img = decode_image(bytes, source_name, limits)
        .map_err(|e| FacesError::from_core(e, source_name))?;
    let mut rgb = img.to_rgb8();
    drop(img);
    annotate(&mut rgb, result);
    Ok(rgb)
}

/// Draws boxes (green: confident, amber: uncertain, red: too small) and labels in place.
pub fn annotate(rgb: &mut RgbImage, result: &PhotoResult) {
    for f in &result.faces {
        let label = match &f.predicted_emotion {
            Some(e) if !f.uncertain => format!("{e} {:.0}%", f.confidence * 100.0),
            Some(e) => format!("? {e} {:.0}%", f.confidence * 100.0),
            None => "too small".to_string(),
        };
        draw_labelled_box(rgb, &f.bbox, face_colour(f), &label);
    }
}

/// The box colour of a face: green when confident, amber when uncertain, red when too small.
pub fn face_colour(f: &FaceResult) -> Rgb<u8> {
    if !f.classified {
        TOO_SMALL
    } else if f.uncertain {
        UNSURE
    } else {
        CONFIDENT
    }
}

/// Draws one box and its label (above the box when there is room, else inside its top edge),
/// with line width and text size following the picture's size.
pub fn draw_labelled_box(rgb: &mut RgbImage, bbox: &FaceBox, colour: Rgb<u8>, label: &str) {
    let font = FontRef::try_from_slice(FONT).expect("embedded font parses");
    let (w, h) = rgb.dimensions();
    // Line width and text size follow the photo size so labels stay readable on 4000 px photos.
    let thickness = (w.max(h) / 400).clamp(1, 8) as i32;
    let text_px = (w.max(h) as f32 / 45.0).clamp(12.0, 64.0);
    let scale = PxScale::from(text_px);
    let x = bbox.x.round() as i32;
    let y = bbox.y.round() as i32;
    let bw = bbox.width.round().max(1.0) as u32;
    let bh = bbox.height.round().max(1.0) as u32;
    for t in 0..thickness {
        let Some(tw) = bw.checked_sub(2 * t as u32).filter(|v| *v > 0) else {
            break;
        };
        let Some(th) = bh.checked_sub(2 * t as u32).filter(|v| *v > 0) else {
            break;
        };
        draw_hollow_rect_mut(rgb, Rect::at(x + t, y + t).of_size(tw, th), colour);
    }
    let (tw, th) = text_size(scale, &font, label);
    let pad = 2;
    let ly = if y - th as i32 - 2 * pad >= 0 {
        y - th as i32 - 2 * pad
    } else {
        y
    };
    draw_filled_rect_mut(
        rgb,
        Rect::at(x, ly).of_size(tw + 2 * pad as u32, th + 2 * pad as u32),
        colour,
    );
    draw_text_mut(rgb, Rgb([0, 0, 0]), x + pad, ly + pad, scale, &font, label);
}

/// Draws `result` on the photo in `bytes` and writes it to `out` (format from the extension).
pub fn save_annotated(
    bytes: &[u8],
    result: &PhotoResult,
    limits: &DecodeLimits,
    out: &std::path::Path,
) -> Result<(), FacesError> {
    let rgb = annotate_bytes(bytes, &result.source, result, limits)?;
    rgb.save(out).map_err(|e| FacesError::Io {
        path: out.to_path_buf(),
        detail: format!("cannot write the annotated copy of {}: {e}", result.source),
    })
}
