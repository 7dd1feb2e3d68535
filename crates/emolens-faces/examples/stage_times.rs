//! Times the stages of face detection per photo (decode; the grayscale detection-size copy;
//! the whole detection), medians over 3 repeats: `cargo run --release -p emolens-faces --example stage_times -- PHOTO...`
use emolens_core::{decode_image, DecodeLimits};
use emolens_faces::{DetectorSettings, FaceDetector};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let detector = FaceDetector::new(DetectorSettings::default()).expect("embedded model");
    let repeats = 3;
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).expect("readable photo");
        let (mut dec, mut small, mut det) = (vec![], vec![], vec![]);
        let mut faces = 0;
        for _ in 0..repeats {
            let t = Instant::now();
            let img = decode_image(&bytes, &path, &DecodeLimits::default()).expect("decodable");
            dec.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let _ = detector.detection_image(&img);
            small.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            faces = detector.detect_image(&img).len();
            det.push(t.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "{path}: decode {:.1} ms, detection copy {:.1} ms, detection in all {:.1} ms, {faces} faces",
            median(dec),
            median(small),
            median(det)
        );
    }
}
