//! Real training on a small real subset of FER2013: the loss goes down, and a run stopped part
//! way and resumed gives exactly the history of an uninterrupted run.

use crate::common::{quiet, tiny_config};
use emolens_train::{train, RunOptions};

#[test]
fn loss_goes_down_and_files_are_written() {
    let _one_run = crate::common::one_training_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(4);
    let out = train(&cfg, &dir.path().join(cfg.run_name()), &quiet()).unwrap();
    assert!(out.finished);
    let h = &out.history;
    assert_eq!(h.epochs(), 4);
    assert!(
        h.loss[3] < h.loss[0],
        "training loss should fall: {:?}",
        h.loss
    );
    let run = dir.path().join("tiny_adam_grayscale_32_augment");
    for f in [
        "config.json",
        "history.json",
        "dataset.json",
        "best.emolens",
        "final.emolens",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    // The history is Keras-shaped.
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("history.json")).unwrap()).unwrap();
    assert_eq!(v["val_accuracy"].as_array().unwrap().len(), 4);
    // The best model loads and predicts with its own class list.
    let c = emolens_model::load_classifier(Some(&run.join("best.emolens"))).unwrap();
    assert_eq!(c.meta().classes.len(), 7);
    let p = c.predict(&vec![0.5; 48 * 48 * 2], 2).unwrap();
    assert_eq!(p.len(), 2);
    assert!((p[0].iter().sum::<f32>() - 1.0).abs() < 1e-4);
}

#[test]
fn a_changed_config_is_refused_on_resume() {
    let _one_run = crate::common::one_training_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(1);
    train(
        &cfg,
        dir.path(),
        &RunOptions {
            stop_after_epochs: Some(0),
            ..quiet()
        },
    )
    .unwrap();
    let mut other = cfg.clone();
    other.learning_rate = 0.5;
    let e = train(&other, dir.path(), &quiet()).unwrap_err().to_string();
    assert!(e.contains("different configuration"), "{e}");
}
