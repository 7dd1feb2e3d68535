//! Measures the sharpness signal (Laplacian variance at 64x64) on FER2013 test crops, the
//! look the classifier was trained on, to choose `min_sharpness`:
//! `cargo run --release -p emolens-faces --example calibrate_sharpness`
use emolens_core::paths;
use emolens_faces::quality::sharpness;

fn main() {
    let root = paths::fer2013_dir().join("test");
    let mut values = Vec::new();
    let mut blurred = Vec::new();
    let mut classes: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .collect();
    classes.sort();
    for class in classes {
        let mut files: Vec<_> = std::fs::read_dir(&class)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().take(200) {
            let g = image::open(f).unwrap().to_luma8();
            values.push(sharpness(&g));
            // The same crop seen through a defocused lens: blurred at 128 px (sigma 2).
            let big = image::imageops::resize(&g, 128, 128, image::imageops::FilterType::Triangle);
            blurred.push(sharpness(&image::imageops::blur(&big, 2.0)));
        }
    }
    for (name, v) in [
        ("fer2013 test crops", &mut values),
        ("same, blurred sigma 2 @128px", &mut blurred),
    ] {
        v.sort_by(f32::total_cmp);
        let q = |p: f32| v[((v.len() - 1) as f32 * p) as usize];
        println!(
            "{name}: n={} p1={:.1} p5={:.1} p10={:.1} median={:.1} p90={:.1}",
            v.len(),
            q(0.01),
            q(0.05),
            q(0.10),
            q(0.5),
            q(0.9)
        );
    }
}
