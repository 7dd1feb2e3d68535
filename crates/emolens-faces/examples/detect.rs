//! Prints the faces the embedded detector finds in each photo, with timings:
//! `cargo run --release -p emolens-faces --example detect -- PHOTO...`
use emolens_core::{decode_image, DecodeLimits};
use emolens_faces::{DetectorSettings, FaceDetector};

fn main() {
    let detector = FaceDetector::new(DetectorSettings::default()).expect("embedded model");
    for path in std::env::args().skip(1) {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let img = match decode_image(&bytes, &path, &DecodeLimits::default()) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        let gray = img.to_luma8();
        let t = std::time::Instant::now();
        let faces = detector.detect(&gray);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "{path}: {}x{} {} face(s) in {ms:.1} ms",
            gray.width(),
            gray.height(),
            faces.len()
        );
        for f in faces {
            println!(
                "  {:.0},{:.0} {:.0}x{:.0} score {:.2}",
                f.x, f.y, f.width, f.height, f.score
            );
        }
    }
}
