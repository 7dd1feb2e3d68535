//! Quality signals of a face crop, measured on the grayscale crop at a fixed size so values
//! compare across face sizes.

use image::{imageops::FilterType, GrayImage};

/// Side the crop is resampled to before measuring sharpness.
pub const QUALITY_SIDE: u32 = 64;

/// Variance of the 4-neighbour Laplacian: low on blurred or flat crops, high on sharp ones.
pub fn laplacian_variance(gray: &GrayImage) -> f32 {
    let (w, h) = gray.dimensions();
    if w < 3 || h < 3 {
        return 0.0;
    }
    let px = |x: u32, y: u32| gray.get_pixel(x, y)[0] as f64;
    let mut sum = 0.0;
    let mut sum_sq = 0.0;
    let mut n = 0.0;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let l = px(x - 1, y) + px(x + 1, y) + px(x, y - 1) + px(x, y + 1) - 4.0 * px(x, y);
            sum += l;
            sum_sq += l * l;
            n += 1.0;
        }
    }
    let mean = sum / n;
    (sum_sq / n - mean * mean).max(0.0) as f32
}

/// Mean and standard deviation of the luma values (0..255).
pub fn brightness_contrast(gray: &GrayImage) -> (f32, f32) {
    let n = gray.as_raw().len().max(1) as f64;
    let sum: f64 = gray.as_raw().iter().map(|&v| v as f64).sum();
    let mean = sum / n;
    let var: f64 = gray
        .as_raw()
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean as f32, var.sqrt() as f32)
}

/// Sharpness of a crop: Laplacian variance after resampling to [`QUALITY_SIDE`].
pub fn sharpness(gray_crop: &GrayImage) -> f32 {
    let resized;
    let img = if gray_crop.dimensions() != (QUALITY_SIDE, QUALITY_SIDE) {
        resized =
            image::imageops::resize(gray_crop, QUALITY_SIDE, QUALITY_SIDE, FilterType::Triangle);
        &resized
    } else {
        gray_crop
    };
    laplacian_variance(img)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    #[test]
    fn flat_is_zero_and_blur_lowers_sharpness() {
        let flat = GrayImage::from_pixel(64, 64, Luma([128]));
        assert_eq!(laplacian_variance(&flat), 0.0);
        let checker = GrayImage::from_fn(64, 64, |x, y| {
            Luma([if (x / 2 + y / 2) % 2 == 0 { 30 } else { 220 }])
        });
        let sharp = sharpness(&checker);
        let blurred = sharpness(&image::imageops::blur(&checker, 3.0));
        assert!(sharp > 1000.0, "{sharp}");
        assert!(blurred < sharp / 10.0, "blurred {blurred} vs sharp {sharp}");
        let (m, s) = brightness_contrast(&flat);
        assert_eq!((m, s), (128.0, 0.0));
    }
}
