//! The square crop around a detected face.

use crate::FaceBox;

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
}
