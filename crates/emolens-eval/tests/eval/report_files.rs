//! The report writers on real metrics (the scikit-learn fixture's predictions): every file is
//! written, the JSON reads back, the HTML is self-contained.

use emolens_eval::metrics::evaluate;
use emolens_eval::report::{write_eval_report, EvalDocument, EvalSection};

#[test]
fn eval_report_files_are_complete() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sklearn_metrics.json"
    ))
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let classes: Vec<String> = serde_json::from_value(doc["classes"].clone()).unwrap();
    let case = &doc["cases"][0];
    let labels: Vec<usize> = serde_json::from_value(case["labels"].clone()).unwrap();
    let probs: Vec<Vec<f32>> = serde_json::from_value(case["probs"].clone()).unwrap();
    let report = evaluate(&labels, &probs, &classes).unwrap();
    let files: Vec<String> = (0..labels.len()).map(|i| format!("img_{i}.png")).collect();
    let eval_doc = EvalDocument {
        emolens_version: "test".into(),
        model_name: "fixture".into(),
        model_source: "fixture".into(),
        data_dir: "fixture".into(),
        labels: Default::default(),
        class_map: classes.iter().map(|c| (c.clone(), c.clone())).collect(),
        flip_tta: false,
        flip_tta_below: None,
        runtime: "test".into(),
        seconds: 1.0,
        images_per_second: 900.0,
        failures: vec![],
        sections: vec![EvalSection {
            key: "all".into(),
            title: "all files".into(),
            report,
            files,
            excluded: vec![],
        }],
    };
    let tmp = tempfile::tempdir().unwrap();
    // Every other image "cannot be read any more": the sheet still renders.
    let load = |f: &str| -> Option<image::DynamicImage> {
        let i: u32 = f
            .trim_start_matches("img_")
            .trim_end_matches(".png")
            .parse()
            .ok()?;
        (i % 2 == 0).then(|| {
            image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(48, 48, |x, y| {
                image::Luma([((x * 5 + y * 3 + i) % 256) as u8])
            }))
        })
    };
    let written = write_eval_report(&eval_doc, tmp.path(), &load).unwrap();
    for f in [
        "report.json",
        "report.md",
        "report.html",
        "plots/confusion_matrix.png",
        "plots/confusion_matrix.svg",
        "plots/roc_curves.png",
        "plots/roc_curves.svg",
        "plots/reliability.png",
        "plots/reliability.svg",
        "plots/per_class.png",
        "plots/per_class.svg",
        "plots/contact_sheet_wrong.png",
    ] {
        let p = tmp.path().join(f);
        assert!(written.contains(&p), "{f} not listed");
        assert!(std::fs::metadata(&p).unwrap().len() > 200, "{f} too small");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("report.json")).unwrap())
            .unwrap();
    let r = &json["sections"][0]["report"];
    assert_eq!(r["per_class"][1]["support"], 0);
    assert!(r["roc"]["per_class"][1]["auc"].is_null());
    assert!(r["confidently_wrong"][0][0]["file"]
        .as_str()
        .unwrap()
        .starts_with("img_"));
    let html = std::fs::read_to_string(tmp.path().join("report.html")).unwrap();
    assert_eq!(html.matches("data:image/png;base64,").count(), 5);
    assert!(
        !html.contains("src=\"plots/"),
        "HTML must not link external files"
    );
    let md = std::fs::read_to_string(tmp.path().join("report.md")).unwrap();
    assert!(md.contains("| disgust | 0.0000 | 0.0000 | 0.0000 | 0 |"));
}
