//! Shared by the modules of this test binary: a tiny real training configuration on FER2013.

use emolens_core::{ColourMode, Normalisation};
use emolens_data::AugmentConfig;
use emolens_train::{ClassWeights, OptimizerConfig, RunOptions, Schedule, TrainConfig};

pub fn tiny_config(epochs: usize) -> TrainConfig {
    emolens_test_support::shared("data/fer2013/train");
    let data = emolens_test_support::fer2013();
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
        sources: Vec::new(),
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
        mixup: 0.0,
        early_stopping: None,
        valid_fraction: 0.1,
        max_train_per_class: Some(60),
        max_valid_per_class: Some(20),
        tag: "augment".into(),
        init_from: None,
        distill: None,
    }
}

/// [`tiny_config`] on two sources: FER2013 with FER+ soft labels, and affectnet7 (96x96
/// colour, converted to 48x48 grayscale by the run's preprocessing) at weight 0.5.
#[allow(dead_code)]
pub fn tiny_multi_source_config(epochs: usize) -> TrainConfig {
    let votes = emolens_test_support::shared("data/ferplus/votes.csv");
    emolens_test_support::shared("data/affectnet7/train");
    let affectnet = emolens_test_support::shared("data/affectnet7");
    let mut cfg = tiny_config(epochs);
    cfg.sources = vec![
        format!(
            "fer2013={},labels=ferplus:{}",
            cfg.data.display(),
            votes.display()
        )
        .parse()
        .unwrap(),
        format!("affectnet={},weight=0.5", affectnet.display())
            .parse()
            .unwrap(),
    ];
    cfg.data = Default::default();
    cfg.max_train_per_class = Some(30);
    cfg.max_valid_per_class = Some(10);
    cfg
}

pub fn quiet() -> RunOptions {
    RunOptions {
        progress: false,
        ..RunOptions::default()
    }
}

/// Training draws its initial weights and dropout masks from burn's device RNG, which is
/// process-wide: two runs on parallel test threads (or a run beside a test that builds a
/// network) would interleave their draws and neither would be reproducible. Every test here
/// that trains or builds a network holds this lock.
pub fn one_training_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static RUNS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    RUNS.lock().unwrap_or_else(|e| e.into_inner())
}
