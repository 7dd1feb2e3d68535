//! The `train`, `sweep`, `arch` and `predict` commands, run as a user runs them, on small real
//! subsets of FER2013.

use emolens_test_support::{emolens, repo_root as repo, success as succeed};
use std::path::Path;

fn fer() -> std::path::PathBuf {
    emolens_test_support::shared("data/fer2013/train");
    emolens_test_support::fer2013()
}

#[test]
fn arch_summary_gives_keras_counts_for_the_original_files() {
    let f = emolens_test_support::seed_reference().join("architectures/model_2_best.json");
    let out = succeed(
        emolens!()
            .args(["arch", "summary", "--colour-mode", "rgb", "--json"])
            .arg(&f),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["params"], 14_261_319);
    assert_eq!(v["format"], "original");
    let out = emolens!()
        .args(["arch", "summary"])
        .arg(repo().join("architectures/vgg_xs.json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("parameters: "));
}

#[test]
fn bad_flags_and_files_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"name":"x","layers":[{"type":"conv2d","filters":4,"kernel":3},{"type":"dense","units":7}]}"#).unwrap();
    let out = emolens!()
        .args(["train", "--data"])
        .arg(fer())
        .arg("--arch")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("layer 1 (dense)"), "{err}");

    let arch = repo().join("architectures/vgg_xs.json");
    for (flag, value, expect) in [
        // Typed flags: clap names the value and lists the possible ones.
        (
            "--optimizer",
            "adagrad",
            "invalid value 'adagrad' for '--optimizer",
        ),
        (
            "--schedule",
            "zigzag",
            "invalid value 'zigzag' for '--schedule",
        ),
        ("--colour-mode", "cmyk", "unknown colour mode"),
        ("--augment", "feral", "--augment `feral` is unknown"),
        ("--batch-size", "0", "--batch-size must be at least 1"),
    ] {
        let out = emolens!()
            .args(["train", "--data"])
            .arg(fer())
            .arg("--arch")
            .arg(&arch)
            .arg("--runs-dir")
            .arg(dir.path())
            .args([flag, value])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} {value} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{flag} {value}: {err}");
    }
    let out = emolens!()
        .args(["train", "--arch"])
        .arg(&arch)
        .arg("--data")
        .arg(dir.path().join("nowhere"))
        .arg("--runs-dir")
        .arg(dir.path().join("runs"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        !dir.path().join("runs").exists(),
        "a failed start leaves no run folder"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"));
}

/// The two-run grid of the sweep test (sgd and adam, one epoch on 20 images a class).
fn sweep_micro(arch: &Path, runs: &Path) -> std::process::Output {
    emolens!()
        .args([
            "sweep",
            "--optimizers",
            "sgd,adam",
            "--colour-modes",
            "grayscale",
        ])
        .args(["--batch-sizes", "32", "--epochs", "1", "--quiet"])
        .args(["--max-train-per-class", "20", "--max-valid-per-class", "5"])
        .arg("--archs")
        .arg(arch)
        .arg("--data")
        .arg(fer())
        .arg("--runs-dir")
        .arg(runs)
        .output()
        .unwrap()
}

#[test]
fn sweep_trains_the_grid_keeps_the_best_and_predict_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let arch = dir.path().join("micro.json");
    std::fs::write(
        &arch,
        r#"{"name":"micro","layers":[
            {"type":"conv2d","filters":8,"kernel":3,"stride":2,"padding":"same"},
            {"type":"batch_norm"},{"type":"activation","function":"relu"},
            {"type":"global_avg_pool"},{"type":"dense","units":7}]}"#,
    )
    .unwrap();
    let runs = dir.path().join("runs");
    let out = sweep_micro(&arch, &runs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("micro_sgd_grayscale_32_augment")
            && stdout.contains("micro_adam_grayscale_32_augment"),
        "{stdout}"
    );
    let best = runs.join("best_model/model.emolens");
    assert!(best.is_file());
    // A second sweep finds both runs done and trains nothing.
    let again = sweep_micro(&arch, &runs);
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .matches("done (earlier)")
            .count()
            == 2
    );

    // predict: a real face crop, a folder, and a broken file in one batch.
    let crops = dir.path().join("crops");
    std::fs::create_dir_all(&crops).unwrap();
    let happy = std::fs::read_dir(fer().join("test/happy"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&happy, crops.join("a.jpg")).unwrap();
    std::fs::write(crops.join("broken.jpg"), b"not an image").unwrap();
    let out = emolens!()
        .arg("predict")
        .arg("--json")
        .arg("--model")
        .arg(&best)
        .arg(&crops)
        .arg(&happy)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "one bad file gives exit code 2, the rest is classified"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let ok: Vec<_> = results.iter().filter(|r| r["status"] == "ok").collect();
    assert_eq!(ok.len(), 2);
    let probs = ok[0]["probabilities"].as_object().unwrap();
    assert_eq!(probs.len(), 7);
    assert!((probs.values().map(|p| p.as_f64().unwrap()).sum::<f64>() - 1.0).abs() < 1e-4);
    let bad = results.iter().find(|r| r["status"] == "error").unwrap();
    assert!(bad["error"].as_str().unwrap().contains("broken.jpg"));
}

/// `emolens model info FILE` as JSON; its stderr must say how this machine runs the model.
fn model_info(file: &Path) -> serde_json::Value {
    let out = succeed(emolens!().args(["model", "info"]).arg(file));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("runtime on this machine: onednn plan (")
            || err.contains("runtime on this machine: flex layers"),
        "{err}"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `emolens model quantize` and `model tune-tta` on a small real subset: the int8 calibration
/// and the flip-TTA gate land in the written file, `predict` runs it, and bad input gets a clear
/// error instead of a model.
#[test]
fn quantize_and_tune_tta_write_a_model_predict_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for class in [
        "angry", "happy", "neutral", "sad", "surprise", "fear", "disgust",
    ] {
        let dst = data.join("train").join(class);
        std::fs::create_dir_all(&dst).unwrap();
        let files = emolens_test_support::sorted_entries(fer().join("train").join(class));
        for f in files.iter().take(5) {
            std::fs::copy(f, dst.join(f.file_name().unwrap())).unwrap();
        }
    }
    // An unreadable image is skipped with a warning, not fatal.
    std::fs::write(data.join("train/happy/broken.jpg"), b"not a jpeg").unwrap();

    let quantized = tmp.path().join("q.emolens");
    let mut quantize = emolens!();
    quantize
        .args(["model", "quantize", "--images", "20", "--data"])
        .arg(data.join("train"))
        .arg("--out")
        .arg(&quantized);
    // The spawned program inherits this process's build and environment: ask the library.
    if emolens_model::onednn::cpu_kernels() != "onednn" {
        // Calibration runs the network on oneDNN: without it, a refusal that says why.
        let out = quantize.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("oneDNN is not available"),
            "{err}"
        );
        assert!(!quantized.exists());
        eprintln!("SKIPPED int8 calibration, tune-tta and int8 predict: no oneDNN here ({err})");
        return;
    }
    succeed(&mut quantize);
    let meta = model_info(&quantized);
    let cal = &meta["int8"];
    let images = cal["images"].as_u64().unwrap();
    assert!((19..=20).contains(&images), "{cal}");
    assert_eq!(cal["input"], serde_json::json!([0.0, 1.0]));
    let steps = cal["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    for r in steps {
        let (lo, hi) = (r[0].as_f64().unwrap(), r[1].as_f64().unwrap());
        assert!(lo <= hi && hi > 0.0, "{r}");
    }

    let gated = tmp.path().join("g.emolens");
    let out = succeed(
        emolens!()
            .args(["model", "tune-tta"])
            .arg(&quantized)
            .arg("--data")
            .arg(&data)
            .args(["--valid-fraction", "0.4", "--out"])
            .arg(&gated),
    );
    let table = String::from_utf8_lossy(&out.stdout);
    // 2 of 5 per class, 2 of 6 for happy; the broken file is skipped if it was carved.
    assert!(
        table.contains("validation images: 14") || table.contains("validation images: 13"),
        "{table}"
    );
    assert_eq!(table.matches("<- chosen").count(), 1, "{table}");
    let meta = model_info(&gated);
    assert_eq!(meta["flip_tta"], true);
    assert!(meta["int8"].is_object(), "the calibration is kept");

    let out = emolens!()
        .env("EMOLENS_PRECISION", "int8")
        .args(["predict", "--json", "--model"])
        .arg(&gated)
        .arg(data.join("train/happy"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    assert_eq!(results.iter().filter(|r| r["status"] == "ok").count(), 5);

    // No images, and a gate outside [0, 1]: refused, naming the input.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = emolens!()
        .args(["model", "quantize", "--data"])
        .arg(&empty)
        .arg("--out")
        .arg(tmp.path().join("x.emolens"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no images"), "{err}");
    assert!(!tmp.path().join("x.emolens").exists());
    // The gate can be set by hand, and removed (`none`: mirror every face).
    for (gate, want) in [
        ("0.7", serde_json::json!(0.7)),
        ("none", serde_json::Value::Null),
    ] {
        let set = tmp.path().join("s.emolens");
        succeed(
            emolens!()
                .args(["model", "set", "--flip-tta-below", gate, "--out"])
                .arg(&set)
                .arg(&gated),
        );
        let meta = model_info(&set);
        let got = &meta["flip_tta_below"];
        match want.as_f64() {
            Some(w) => assert!((got.as_f64().unwrap() - w).abs() < 1e-6, "{got}"),
            None => assert!(got.is_null(), "{got}"),
        }
    }
    let out = emolens!()
        .args(["model", "set", "--flip-tta-below", "2", "--out"])
        .arg(tmp.path().join("y.emolens"))
        .arg(&gated)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("between 0 and 1"),
        "{err}"
    );
}
