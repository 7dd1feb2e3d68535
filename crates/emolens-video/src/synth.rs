//! Synthetic reaction videos for tests and benchmarks: real face crops (FER2013's, read at run
//! time from the shared data folder, never shipped) enlarged and pasted on a plain background,
//! frame after frame. Nothing here is used by the analysis itself.

use emolens_core::paths;
use image::{imageops::FilterType, GrayImage, Rgb, RgbImage};
use std::path::PathBuf;

/// The first `n` images (sorted by name) of one FER2013 split and class, e.g. ("test", "happy").
pub fn fer_faces(split: &str, class: &str, n: usize) -> Result<Vec<(PathBuf, GrayImage)>, String> {
    let dir = paths::fer2013_dir().join(split).join(class);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| {
            format!(
                "{}: {e}; set EMOLENS_SHARED to the folder holding data/fer2013",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files
        .into_iter()
        .take(n)
        .map(|p| {
            let img = image::open(&p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .to_luma8();
            Ok((p, img))
        })
        .collect()
}

/// A face pasted at (`x`, `y`), enlarged to `side` pixels.
pub struct Placement<'a> {
    pub face: &'a GrayImage,
    pub x: u32,
    pub y: u32,
    pub side: u32,
}

/// A `width` x `height` frame: a soft vertical gradient with the faces pasted on it.
pub fn compose(width: u32, height: u32, faces: &[Placement<'_>]) -> RgbImage {
    let mut img = RgbImage::from_fn(width, height, |_, y| {
        let v = 150 + (60 * y / height.max(1)) as u8;
        Rgb([v, v.saturating_sub(10), v.saturating_sub(25)])
    });
    for p in faces {
        let big = image::imageops::resize(p.face, p.side, p.side, FilterType::CatmullRom);
        for (dx, dy, px) in big.enumerate_pixels() {
            let (x, y) = (p.x + dx, p.y + dy);
            if x < width && y < height {
                img.put_pixel(x, y, Rgb([px[0], px[0], px[0]]));
            }
        }
    }
    img
}
