//! Per-frame time of BlazeFace on one core: the network alone at its trained size, then the
//! whole-photo detector (pyramid) on the photos given, or on the astronaut photo scaled to
//! 640x480, 1280x720, 1280x960, 1920x1080 and 4000x3000.
//!
//! `cargo run --release -p emolens-faces --example blazeface_time [-- PHOTO...]`

use emolens_faces::blazeface::{BlazeDetector, BlazeModel, BlazeNet, BlazeSettings};
use emolens_faces::{DetectorSettings, FaceDetector};
use image::DynamicImage;
use std::time::Instant;

fn median_ms(mut f: impl FnMut(), rounds: usize) -> f64 {
    f();
    let mut t: Vec<f64> = (0..rounds)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    for model in [BlazeModel::ShortRange, BlazeModel::FullRange] {
        let net = BlazeNet::new(model).expect("embedded network");
        let n = net.input_size();
        let input = vec![0.1f32; n * n * 3];
        let ms = median_ms(
            || {
                std::hint::black_box(net.raw(&input, n, n));
            },
            30,
        );
        println!("{model:?} network alone, {n}x{n}: {ms:.2} ms (median of 30)");
    }
    let astronaut = image::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../assets/photos/astronaut.png"
    ))
    .expect("astronaut photo");
    let photos: Vec<(String, DynamicImage)> = if args.is_empty() {
        [
            (640, 480),
            (1280, 720),
            (1280, 960),
            (1920, 1080),
            (4000, 3000),
        ]
        .iter()
        .map(|&(w, h)| {
            (
                format!("astronaut {w}x{h}"),
                DynamicImage::ImageRgb8(image::imageops::resize(
                    &astronaut.to_rgb8(),
                    w,
                    h,
                    image::imageops::FilterType::Triangle,
                )),
            )
        })
        .collect()
    } else {
        args.iter()
            .map(|p| (p.clone(), image::open(p).expect("photo")))
            .collect()
    };
    let seeta = FaceDetector::new(DetectorSettings::default()).expect("embedded cascade");
    for model in [BlazeModel::ShortRange, BlazeModel::FullRange] {
        let d = BlazeDetector::new(BlazeSettings {
            model,
            ..BlazeSettings::default()
        })
        .expect("detector");
        for (name, img) in &photos {
            let mut faces = 0;
            let ms = median_ms(|| faces = d.detect_image(img).len(), 5);
            println!(
                "{model:?} detector, {name}: {ms:.1} ms, {faces} face(s), scales {:?}",
                d.scales(img.width(), img.height())
            );
        }
    }
    for (name, img) in &photos {
        let mut faces = 0;
        let ms = median_ms(|| faces = seeta.detect_image(img).len(), 5);
        println!("SeetaFace detector, {name}: {ms:.1} ms, {faces} face(s)");
    }
}
