//! A model file with `flip_tta` answers with the mean of the image's and its mirror's
//! probabilities (for every image, or with `flip_tta_below` only for the images the first
//! pass is unsure of), and `ModelFile::reencode` keeps the weights while changing the metadata.

use emolens_core::EmotionClassifier;
use emolens_model::{BurnClassifier, ModelFile, BUNDLED_MODEL};

#[test]
fn flip_tta_is_the_mean_over_the_mirror() {
    let _kernels = crate::common::kernels_fixed();
    let bytes = BUNDLED_MODEL.expect("the bundled model (models/default.emolens) is embedded");
    let file = ModelFile::decode(bytes, "bundled").unwrap();
    let mut meta = file.meta.clone();
    meta.flip_tta = false;
    let plain_bytes = file.reencode(&meta).unwrap();
    meta.flip_tta = true;
    meta.flip_tta_below = None;
    let tta_bytes = file.reencode(&meta).unwrap();
    let device = emolens_model::inference_device();
    let plain = BurnClassifier::from_bytes(&plain_bytes, "plain", &device).unwrap();
    let tta = BurnClassifier::from_bytes(&tta_bytes, "tta", &device).unwrap();
    assert!(tta.meta().flip_tta && !plain.meta().flip_tta);

    let (c, h, w) = (
        meta.input.channels(),
        meta.input.height as usize,
        meta.input.width as usize,
    );
    // Two images with a left-right asymmetry (a gradient and a bright left half).
    let mut x = Vec::new();
    for img in 0..2 {
        for _ in 0..c {
            for _r in 0..h {
                for col in 0..w {
                    x.push(if img == 0 {
                        col as f32 / w as f32
                    } else if col < w / 2 {
                        0.9
                    } else {
                        0.1
                    });
                }
            }
        }
    }
    let mirrored: Vec<f32> = x.chunks(w).flat_map(|r| r.iter().rev().copied()).collect();
    assert_gate(&file, &x, &mirrored);
    let p = plain.predict(&x, 2).unwrap();
    let pm = plain.predict(&mirrored, 2).unwrap();
    let t = tta.predict(&x, 2).unwrap();
    let mut differs = false;
    for i in 0..2 {
        for k in 0..meta.classes.len() {
            let mean = (p[i][k] + pm[i][k]) / 2.0;
            assert!((t[i][k] - mean).abs() < 1e-5, "image {i} class {k}");
            differs |= (p[i][k] - pm[i][k]).abs() > 1e-4;
        }
        assert!((t[i].iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
    assert!(differs, "the test images should look different mirrored");

    // Changing what the weights are is refused.
    let mut bad = file.meta.clone();
    bad.classes.swap(0, 1);
    assert!(file.reencode(&bad).is_err());
}

/// The gate: with `flip_tta_below`, an image whose own top probability is below it answers with
/// the mean over the mirror, the others with their own probabilities; 0 mirrors nothing, 1
/// everything.
fn assert_gate(file: &ModelFile, x: &[f32], mirrored: &[f32]) {
    let device = emolens_model::inference_device();
    let with = |below: Option<f32>, tta: bool| {
        let mut meta = file.meta.clone();
        meta.flip_tta = tta;
        meta.flip_tta_below = below;
        let bytes = file.reencode(&meta).unwrap();
        BurnClassifier::from_bytes(&bytes, "gate", &device).unwrap()
    };
    let plain = with(None, false);
    let p = plain.predict(x, 2).unwrap();
    let pm = plain.predict(mirrored, 2).unwrap();
    let top = |v: &[f32]| v.iter().copied().fold(f32::MIN, f32::max);
    let (a, b) = (top(&p[0]), top(&p[1]));
    assert!(
        (a - b).abs() > 0.02,
        "the two images need different confidences: {a} {b}"
    );
    let mean = |i: usize| -> Vec<f32> {
        p[i].iter()
            .zip(&pm[i])
            .map(|(u, v)| (u + v) / 2.0)
            .collect()
    };
    let close = |got: &[f32], want: &[f32]| got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-5);
    let unsure = if a < b { 0 } else { 1 };
    let between = (a + b) / 2.0;
    let gated = with(Some(between), true).predict(x, 2).unwrap();
    assert!(
        close(&gated[unsure], &mean(unsure)),
        "the unsure image is mirrored"
    );
    assert!(
        close(&gated[1 - unsure], &p[1 - unsure]),
        "the confident one is not"
    );
    let none = with(Some(0.0), true).predict(x, 2).unwrap();
    assert!(close(&none[0], &p[0]) && close(&none[1], &p[1]));
    let all = with(Some(1.0), true).predict(x, 2).unwrap();
    assert!(close(&all[0], &mean(0)) && close(&all[1], &mean(1)));
}
