//! `experiments` on the original design's 96 `_augment_` Keras histories reproduces its
//! published figures, and writes its report files.

use emolens_eval::experiments::{analyse, filter_by_mode, load_runs, write_experiments_report};
use std::path::PathBuf;

fn history_dir() -> PathBuf {
    emolens_test_support::shared("seed-reference/history")
}

#[test]
fn reproduces_the_originals_published_figures() {
    let (runs, skipped) = load_runs(&[history_dir()]);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(runs.len(), 98);
    let runs = filter_by_mode(runs, "augment");
    assert_eq!(runs.len(), 96);
    let report = analyse(&runs, Vec::new()).unwrap();
    assert_eq!(report.best.name, "model_2_best_sgd_rgb_128_augment");
    let parts = report.best.parts.as_ref().unwrap();
    assert_eq!(
        (
            parts.model.as_str(),
            parts.optimizer.as_str(),
            parts.colour_mode.as_str(),
            parts.batch_size
        ),
        ("model_2_best", "sgd", "rgb", 128)
    );
    assert_eq!(
        format!("{}", report.best.best_val_accuracy),
        "0.5928241014480591"
    );
    assert_eq!(
        format!("{}", report.best_val_accuracy_stats.mean),
        "0.5652485278745493"
    );
    assert_eq!(report.top10.len(), 10);
    assert_eq!(report.worst5.len(), 5);
    assert_eq!(report.top10[0], report.best.name);
    // Every original name parses, model names with underscores included.
    assert!(runs.iter().all(|r| r.parts.is_some()));
    assert!(runs
        .iter()
        .any(|r| r.parts.as_ref().unwrap().model == "model_4_best_nodroupout_nobatchn"));
}

#[test]
fn writes_report_files_and_skips_bad_inputs_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let hist = history_dir();
    // A few real histories, one emolens-style run folder, one malformed file, one missing path.
    let inputs_dir = tmp.path().join("in");
    std::fs::create_dir_all(&inputs_dir).unwrap();
    let names = [
        "model_2_best_sgd_rgb_128_augment_history.json",
        "model_1_concept_adam_grayscale_32_augment_history.json",
        "model_3_best_nodropout_rmsprop_rgb_64_augment_history.json",
    ];
    for n in names {
        std::fs::copy(hist.join(n), inputs_dir.join(n)).unwrap();
    }
    let run = tmp.path().join("runs/my_run");
    std::fs::create_dir_all(&run).unwrap();
    let mut h: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            hist.join("model_4_best_nodroupout_nobatchn_adam_rgb_64_augment_history.json"),
        )
        .unwrap(),
    )
    .unwrap();
    h["lr"] = serde_json::json!(vec![0.001; 50]);
    h["epoch_seconds"] = serde_json::json!(vec![12.5; 50]);
    std::fs::write(run.join("history.json"), h.to_string()).unwrap();
    std::fs::write(
        run.join("config.json"),
        r#"{"architecture":"model_4_best_nodroupout_nobatchn","optimizer":"Adam","colour_mode":"rgb","batch_size":64}"#,
    )
    .unwrap();
    std::fs::write(inputs_dir.join("broken_history.json"), "{\"loss\": [0.1,").unwrap();
    let missing = tmp.path().join("nope");

    let (runs, skipped) = load_runs(&[inputs_dir.clone(), run.clone(), missing.clone()]);
    assert_eq!(runs.len(), 4);
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped
        .iter()
        .any(|s| s.path.ends_with("broken_history.json") && s.reason.contains("JSON")));
    assert!(skipped
        .iter()
        .any(|s| s.path == missing.display().to_string()));
    let mine = runs.iter().find(|r| r.name == "my_run").unwrap();
    assert_eq!(mine.parts.as_ref().unwrap().optimizer, "adam");
    assert!(mine.metrics.contains_key("epoch_seconds"));

    let report = analyse(&runs, skipped).unwrap();
    assert_eq!(report.best.name, "model_2_best_sgd_rgb_128_augment");
    let out = tmp.path().join("report");
    let written = write_experiments_report(&report, &runs, &out).unwrap();
    for f in [
        "experiments.json",
        "experiments.md",
        "experiments.html",
        "plots/best_val_accuracy_histogram.png",
        "plots/best_val_accuracy_histogram.svg",
        "plots/val_accuracy_heatmap.png",
        "plots/box_by_optimizer.svg",
        "plots/compare_batch_size_by_colour_mode.png",
        "plots/best_run_accuracy.png",
        "plots/best_run_loss.svg",
    ] {
        let p = out.join(f);
        assert!(written.contains(&p), "{f} not reported as written");
        assert!(std::fs::metadata(&p).unwrap().len() > 100, "{f} is empty");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("experiments.json")).unwrap())
            .unwrap();
    assert_eq!(json["n_runs"], 4);
    assert_eq!(json["skipped"].as_array().unwrap().len(), 2);
    let html = std::fs::read_to_string(out.join("experiments.html")).unwrap();
    assert!(html.contains("data:image/png;base64,"));
    assert!(html.contains("broken_history.json"));
}

#[test]
fn no_usable_history_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.json"), "[]").unwrap();
    let (runs, skipped) = load_runs(&[tmp.path().to_path_buf()]);
    let err = analyse(&runs, skipped).unwrap_err().to_string();
    assert!(
        err.contains("no usable training history") && err.contains("a.json"),
        "{err}"
    );
}
