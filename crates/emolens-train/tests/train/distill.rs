//! Distillation and mixup in a real run: a small student trains on FER2013 with the bundled
//! model as its teacher, the run records the teacher by path and SHA-256, and a teacher that
//! changed since the run began, or that takes another input, is refused with the reason.

use crate::common::{one_training_at_a_time, quiet, tiny_config};
use emolens_core::fingerprint::sha256_hex;
use emolens_train::{train, Distill, RunOptions};
use std::path::{Path, PathBuf};

fn teacher_file(dir: &Path) -> (PathBuf, String) {
    let bytes = emolens_model::BUNDLED_MODEL.expect("the bundled model is embedded");
    let p = dir.join("teacher.emolens");
    std::fs::write(&p, bytes).unwrap();
    (p, sha256_hex(bytes))
}

#[test]
fn a_student_trains_from_a_teacher_and_the_run_records_it() {
    let _one_run = one_training_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (teacher, sha) = teacher_file(dir.path());
    let mut cfg = tiny_config(2);
    cfg.mixup = 0.2;
    cfg.distill = Some(Distill {
        teacher: teacher.clone(),
        sha256: sha.clone(),
        weight: 0.7,
        temperature: 2.0,
    });
    let run = dir.path().join(cfg.run_name());
    // One epoch, then the teacher file changes: the resumed run must refuse it.
    let first = train(
        &cfg,
        &run,
        &RunOptions {
            stop_after_epochs: Some(1),
            ..quiet()
        },
    )
    .unwrap();
    assert!(!first.finished);
    assert!(first.history.loss[0].is_finite());
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(saved["distill"]["sha256"], sha.as_str());
    assert_eq!(saved["distill"]["weight"], 0.7);
    assert_eq!(saved["mixup"], 0.2);

    let mut bytes = std::fs::read(&teacher).unwrap();
    bytes.push(0);
    std::fs::write(&teacher, &bytes).unwrap();
    let err = train(&cfg, &run, &quiet()).unwrap_err().to_string();
    assert!(
        err.contains("--teacher") && err.contains("changed"),
        "{err}"
    );

    // Restored, the run finishes.
    bytes.pop();
    std::fs::write(&teacher, &bytes).unwrap();
    let done = train(&cfg, &run, &quiet()).unwrap();
    assert!(done.finished);
    assert_eq!(done.history.epochs(), 2);
}

#[test]
fn a_teacher_with_another_input_is_refused() {
    let _one_run = one_training_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (teacher, sha256) = teacher_file(dir.path());
    let mut cfg = tiny_config(1);
    cfg.input_size = 40;
    cfg.distill = Some(Distill {
        teacher,
        sha256,
        weight: 0.5,
        temperature: 1.0,
    });
    let err = train(&cfg, &dir.path().join("run"), &quiet())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--teacher") && err.contains("40x40"),
        "the refusal names the teacher and the input: {err}"
    );
}
