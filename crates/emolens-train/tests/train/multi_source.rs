//! A run on two real sources at once (FER2013 with FER+ soft labels, affectnet7 at weight 0.5):
//! the files it writes describe both sources, validation is FER+ PublicTest plus affectnet7's
//! carve, no PrivateTest file enters it, and it resumes exactly. (burn's random generator is
//! process-wide: the test holds `one_training_at_a_time`, so no other test trains beside it.)

use crate::common::{quiet, tiny_multi_source_config};
use emolens_train::{train, RunOptions};
use serde_json::Value;

fn read(p: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn two_sources_with_soft_labels_train_record_and_resume() {
    let _one_run = crate::common::one_training_at_a_time();
    let cfg = tiny_multi_source_config(2);
    let a = tempfile::tempdir().unwrap();
    let full = train(&cfg, a.path(), &quiet()).unwrap();
    assert!(full.finished);
    let h = &full.history;
    assert_eq!(h.epochs(), 2);
    assert!(h.loss.iter().all(|l| l.is_finite()));

    // Per-source validation, and the overall value is their size-weighted mean.
    let ds = read(&a.path().join("dataset.json"));
    let srcs = ds["sources"].as_array().unwrap();
    assert_eq!(srcs.len(), 2);
    let (fer, aff) = (&srcs[0], &srcs[1]);
    assert_eq!(fer["name"], "fer2013");
    assert_eq!(fer["labels"]["kind"], "ferplus");
    assert_eq!(fer["validation"], "ferplus_public_test");
    assert_eq!(fer["votes_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(aff["name"], "affectnet");
    assert_eq!(aff["validation"], "carved");
    assert_eq!(aff["weight"], 0.5);
    assert_eq!(fer["train_images"], 210);
    assert_eq!(aff["train_images"], 210);
    // Weight 0.5: half of affectnet's training images each epoch.
    assert_eq!(aff["images_per_epoch"], 105);
    assert_eq!(ds["images_per_epoch"], 315);
    for s in srcs {
        assert_eq!(s["valid_images"], 70, "{}", s["name"]);
        assert_eq!(s["train_fingerprint"].as_str().unwrap().len(), 64);
        assert_eq!(s["train_per_class"]["fear"], 30);
    }
    let (nf, na) = (70.0, 70.0);
    for e in 0..2 {
        let vf = h.per_source["val_accuracy_fer2013"][e];
        let va = h.per_source["val_accuracy_affectnet"][e];
        let want = (vf * nf + va * na) / (nf + na);
        assert!((h.val_accuracy[e] - want).abs() < 1e-12);
    }
    let hist = read(&a.path().join("history.json"));
    assert_eq!(hist["val_accuracy_fer2013"].as_array().unwrap().len(), 2);
    assert_eq!(hist["val_loss_affectnet"].as_array().unwrap().len(), 2);

    // Training and validation files: FER2013 train/ and PublicTest, affectnet7 train/ only.
    let files = read(&a.path().join("files.json"));
    let list = |s: &str, k: &str| -> Vec<String> {
        files[s][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(list("fer2013", "train").len(), 210);
    assert!(list("fer2013", "train")
        .iter()
        .all(|f| f.starts_with("train/")));
    let fv = list("fer2013", "valid");
    assert_eq!(fv.len(), 70);
    assert!(fv
        .iter()
        .all(|f| f.rsplit('/').next().unwrap().starts_with("PublicTest_")));
    for k in ["train", "valid"] {
        assert!(list("affectnet", k).iter().all(|f| f.starts_with("train/")));
    }
    let text = std::fs::read_to_string(a.path().join("files.json")).unwrap()
        + &std::fs::read_to_string(a.path().join("dataset.json")).unwrap();
    assert!(!text.contains("PrivateTest_"));

    // The model file names its sources.
    let c = emolens_model::load_classifier(Some(&a.path().join("best.emolens"))).unwrap();
    assert_eq!(
        c.meta().training["data_sources"],
        serde_json::json!(["fer2013", "affectnet"])
    );

    // Stopped after one epoch and resumed: the same history.
    let b = tempfile::tempdir().unwrap();
    let first = train(
        &cfg,
        b.path(),
        &RunOptions {
            stop_after_epochs: Some(1),
            ..quiet()
        },
    )
    .unwrap();
    assert!(!first.finished);
    let resumed = train(&cfg, b.path(), &quiet()).unwrap();
    assert_eq!(
        resumed.history.without_timing(),
        full.history.without_timing()
    );
}
