//! `emolens eval` and `emolens experiments` end to end: the real binary, a real model file
//! (the original's model_1_concept architecture, freshly initialised), real FER2013 images.

use emolens_core::paths::{fer2013_dir, seed_reference_dir};
use emolens_core::{ColourMode, InputSpec, ModelMeta};
use emolens_model::burn::tensor::Device;
use emolens_model::{read_architecture_file, ModelFile, Network};
use std::path::{Path, PathBuf};
use std::process::Command;

const PER_CLASS: usize = 6;

fn fer_test() -> PathBuf {
    let d = fer2013_dir().join("test");
    assert!(
        d.is_dir(),
        "{} is missing: these tests need FER2013 in the shared folder (set EMOLENS_SHARED)",
        d.display()
    );
    d
}

/// A grayscale model whose outputs are in the original API's order and names, so the eval has
/// to bind the dataset's folders by emotion, not by position.
fn write_model(dir: &Path) -> PathBuf {
    let arch_file = seed_reference_dir().join("architectures/model_1_concept.json");
    assert!(arch_file.is_file(), "{} is missing", arch_file.display());
    let im = read_architecture_file(&arch_file).unwrap();
    let device = Device::flex();
    let net = Network::new(&im.arch, 1, 48, 48, &device).unwrap();
    let meta = ModelMeta {
        flip_tta: false,
        flip_tta_below: None,
        int8: None,
        format_version: ModelMeta::FORMAT_VERSION,
        name: "model_1_concept_untrained".into(),
        classes: [
            "anger",
            "disgust",
            "fear",
            "happiness",
            "sadness",
            "surprise",
            "neutral",
        ]
        .map(String::from)
        .to_vec(),
        input: InputSpec::fer(ColourMode::Grayscale),
        architecture: serde_json::from_str(&im.arch.to_json()).unwrap(),
        training: serde_json::Value::Null,
        data_fingerprint: None,
        metrics: Default::default(),
    };
    let path = dir.join("m.emolens");
    std::fs::write(&path, ModelFile::encode(&meta, net).unwrap()).unwrap();
    path
}

/// `<root>/test/<class>/` with the first PER_CLASS FER2013 test files of each class, and
/// `<root>/train/<class>/` holding a byte copy of two of them (under other names).
fn make_dataset(root: &Path) -> Vec<String> {
    let src = fer_test();
    let mut classes: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    classes.sort();
    for c in &classes {
        let mut files: Vec<PathBuf> = std::fs::read_dir(src.join(c))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        std::fs::create_dir_all(root.join("test").join(c)).unwrap();
        std::fs::create_dir_all(root.join("train").join(c)).unwrap();
        for f in files.iter().take(PER_CLASS) {
            std::fs::copy(f, root.join("test").join(c).join(f.file_name().unwrap())).unwrap();
        }
        if c == "happy" || c == "sad" {
            std::fs::copy(
                &files[0],
                root.join("train").join(c).join("copy_of_test.jpg"),
            )
            .unwrap();
        }
    }
    classes
}

fn emolens(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_emolens"))
        .args(args)
        .env("EMOLENS_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn eval_writes_a_full_report_and_skips_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let data = tmp.path().join("data");
    let classes = make_dataset(&data);
    assert_eq!(classes.len(), 7);
    // A corrupt file: reported by name, the run goes on.
    std::fs::write(data.join("test/happy/broken.jpg"), b"not a jpeg at all").unwrap();
    let out = tmp.path().join("report");
    let o = emolens(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--flip-tta",
        "--exclude-train-duplicates",
        data.join("train").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "eval failed: {}\n{stdout}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("accuracy") && stdout.contains("without train duplicates"),
        "{stdout}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["flip_tta"], true);
    let failures = json["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0]["file"]
        .as_str()
        .unwrap()
        .ends_with("broken.jpg"));
    let full = &json["sections"][0]["report"];
    assert_eq!(full["n_samples"], 7 * PER_CLASS);
    // Classes are the model's, in its output order; each row of the confusion matrix holds the
    // files of the dataset folder bound to that class.
    assert_eq!(full["classes"][6], "neutral");
    let cm: Vec<Vec<u64>> = serde_json::from_value(full["confusion"].clone()).unwrap();
    assert!(cm
        .iter()
        .all(|row| row.iter().sum::<u64>() == PER_CLASS as u64));
    let correct: u64 = (0..7).map(|i| cm[i][i]).sum();
    let acc = full["accuracy"].as_f64().unwrap();
    assert!((acc - correct as f64 / (7 * PER_CLASS) as f64).abs() < 1e-12);
    let map: Vec<(String, String)> = serde_json::from_value(json["class_map"].clone()).unwrap();
    assert!(map.contains(&("sad".to_string(), "sadness".to_string())));
    // Two test files have a byte copy in train.
    let dedup = &json["sections"][1];
    assert_eq!(dedup["excluded"].as_array().unwrap().len(), 2);
    assert_eq!(dedup["report"]["n_samples"], 7 * PER_CLASS - 2);
    for f in [
        "report.md",
        "report.html",
        "plots/confusion_matrix.png",
        "plots/roc_curves.svg",
        "plots/reliability.png",
        "plots/per_class.svg",
        "plots/contact_sheet_wrong.png",
        "plots/dedup_confusion_matrix.png",
        "plots/dedup_contact_sheet_wrong.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
}

#[test]
fn eval_refuses_unmapped_classes_unless_mapped() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path());
    let data = tmp.path().join("data");
    let src = fer_test();
    for (folder, from) in [("happy", "happy"), ("contempt", "neutral")] {
        let d = data.join("test").join(folder);
        std::fs::create_dir_all(&d).unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(src.join(from))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().take(3) {
            std::fs::copy(f, d.join(f.file_name().unwrap())).unwrap();
        }
    }
    let out = tmp.path().join("r");
    let split = data.join("test");
    let base = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        split.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let o = emolens(&base);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("contempt") && err.contains("--class-map"),
        "{err}"
    );
    let mut args = base.to_vec();
    args.extend(["--class-map", "contempt=neutral"]);
    let o = emolens(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let r = &json["sections"][0]["report"];
    assert_eq!(r["n_samples"], 6);
    // Classes without samples are there with zero support.
    assert_eq!(r["per_class"][0]["support"], 0);
    assert_eq!(r["per_class"][6]["support"], 3);
}

#[test]
fn experiments_reproduce_the_original_figures() {
    let hist = seed_reference_dir().join("history");
    assert!(hist.is_dir(), "{} is missing", hist.display());
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no_such_history.json");
    let o = emolens(&[
        "experiments",
        hist.to_str().unwrap(),
        missing.to_str().unwrap(),
        "--mode",
        "augment",
        "--out",
        tmp.path().join("exp").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("runs: 96"), "{stdout}");
    assert!(
        stdout.contains(
            "best run: model_2_best_sgd_rgb_128_augment max val_accuracy 0.5928241014480591"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("mean of the runs' max val_accuracy: 0.5652485278745493"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("no_such_history.json"));
    assert!(tmp.path().join("exp/experiments.html").is_file());
}
