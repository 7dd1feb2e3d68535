//! Detector settings against speed and recall, on photos with known face boxes (the
//! benchmark's `truth.json` from `bench/analyze/make_photos.py`):
//! `cargo run --release -p emolens-faces --example detector_sweep -- TRUTH_JSON`
//!
//! For each setting: recall and precision per photo size, and the cascade's CPU milliseconds
//! per photo (process CPU time, so other work on a shared machine disturbs it less than wall
//! time would). A detection counts when its centre lies in a true box and its side is within
//! a factor 2 of the true side (the rule of `bench/analyze/run.py`).
use emolens_core::{decode_image, DecodeLimits};
use emolens_faces::{Detection, DetectorSettings, FaceDetector};
use std::collections::BTreeMap;

fn cpu_ms() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 * 1e3 + tv.tv_usec as f64 / 1e3;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn matches(found: &[Detection], truth: &[[f32; 4]]) -> usize {
    let mut used = vec![false; truth.len()];
    let mut tp = 0;
    for d in found {
        let (cx, cy) = (d.x + d.width / 2.0, d.y + d.height / 2.0);
        for (i, t) in truth.iter().enumerate() {
            let ratio = d.width / t[2];
            if !used[i]
                && (t[0]..=t[0] + t[2]).contains(&cx)
                && (t[1]..=t[1] + t[3]).contains(&cy)
                && (0.5..=2.0).contains(&ratio)
            {
                used[i] = true;
                tp += 1;
                break;
            }
        }
    }
    tp
}

fn num<T: std::str::FromStr>(v: &str, arg: &str) -> T {
    v.parse()
        .unwrap_or_else(|_| panic!("{arg}: {v} is not a number"))
}

fn main() {
    let truth_path = std::env::args()
        .nth(1)
        .expect("usage: detector_sweep TRUTH_JSON");
    let truth: BTreeMap<String, Vec<[f32; 4]>> =
        serde_json::from_slice(&std::fs::read(&truth_path).expect("readable truth file"))
            .expect("truth.json maps photo paths to [x, y, w, h] boxes");
    let photos: Vec<(String, image::DynamicImage, &Vec<[f32; 4]>)> = truth
        .iter()
        .map(|(path, boxes)| {
            let bytes = std::fs::read(path).expect("readable photo");
            let img = decode_image(&bytes, path, &DecodeLimits::default()).expect("decodable");
            let size = format!("{}x{}", img.width(), img.height());
            (size, img, boxes)
        })
        .collect();
    // Settings to try: PYRAMID:STEP:MAX_SIDE:MIN_FACE_PX arguments, or a default grid.
    let mut grid: Vec<(f32, u32, u32, u32)> = std::env::args()
        .skip(2)
        .map(|a| {
            let v: Vec<&str> = a.split(':').collect();
            assert!(
                v.len() == 4,
                "{a}: expected PYRAMID:STEP:MAX_SIDE:MIN_FACE_PX, e.g. 0.8:4:2048:48"
            );
            (num(v[0], &a), num(v[1], &a), num(v[2], &a), num(v[3], &a))
        })
        .collect();
    if grid.is_empty() {
        grid = vec![
            (0.80, 4, 2048, 48),
            (0.75, 4, 2048, 48),
            (0.70, 4, 2048, 48),
            (0.80, 5, 2048, 48),
            (0.75, 5, 2048, 48),
            (0.70, 5, 2048, 48),
            (0.80, 4, 1600, 48),
            (0.80, 4, 2048, 56),
        ];
    }
    println!("pyramid step max_side min_face  size        recall precision cpu_ms/photo");
    for (pyramid_scale, window_step, max_side, min_face_px) in grid {
        let detector = FaceDetector::new(DetectorSettings {
            pyramid_scale,
            window_step,
            max_side,
            min_face_px,
            ..DetectorSettings::default()
        })
        .expect("valid settings");
        // size -> (true faces, found, true positives, cpu ms, photos)
        let mut per_size: BTreeMap<&str, (usize, usize, usize, f64, usize)> = BTreeMap::new();
        for (size, img, boxes) in &photos {
            let copy = detector.detection_image(img);
            let t = cpu_ms();
            let found = detector.detect_in_copy(&copy, img.width(), img.height());
            let ms = cpu_ms() - t;
            let e = per_size.entry(size).or_default();
            e.0 += boxes.len();
            e.1 += found.len();
            e.2 += matches(&found, boxes);
            e.3 += ms;
            e.4 += 1;
        }
        for (size, (n, found, tp, ms, photos)) in per_size {
            println!(
                "{pyramid_scale:>7.2} {window_step:>4} {max_side:>8} {min_face_px:>8}  {size:<10} {:>6.3} {:>9.3} {:>12.0}",
                tp as f64 / n as f64,
                tp as f64 / found.max(1) as f64,
                ms / photos as f64
            );
        }
    }
}
