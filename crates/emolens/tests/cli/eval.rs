//! `emolens eval` and `emolens experiments` end to end: the real binary, real FER2013 images, a
//! real model file (the original's model_1_concept architecture, freshly initialised) or, for
//! the label-source tests (FER+ majority votes, folders of class folders), the bundled model.

use emolens_core::{ColourMode, InputSpec, ModelMeta};
use emolens_model::burn::tensor::Device;
use emolens_model::{read_architecture_file, ModelFile, Network};
use emolens_test_support::{fer2013, seed_reference};
use std::path::{Path, PathBuf};

const PER_CLASS: usize = 6;

fn fer_test() -> PathBuf {
    emolens_test_support::shared("data/fer2013/test")
}

/// A grayscale model whose outputs are in the original API's order and names, so the eval has
/// to bind the dataset's folders by emotion, not by position.
fn write_model(dir: &Path) -> PathBuf {
    let arch_file = seed_reference().join("architectures/model_1_concept.json");
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
        let files = emolens_test_support::sorted_entries(src.join(c));
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
    emolens_test_support::output(emolens_test_support::emolens!().args(args))
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
        let files = emolens_test_support::sorted_entries(src.join(from));
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
    let hist = seed_reference().join("history");
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

/// The FER+ votes file of the shared folder.
fn ferplus_votes() -> PathBuf {
    emolens_test_support::shared("data/ferplus/votes.csv")
}

/// Runs `emolens eval` with the bundled model and returns report.json.
fn eval_json(args: &[&str], out: &Path) -> serde_json::Value {
    let mut all = vec!["eval", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = emolens(&all);
    assert!(
        o.status.success(),
        "eval {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

/// The FER+ labels of a few hundred FER2013 test files, with the bundled model: eval takes the
/// majority as the label, keeps only the usage asked for, leaves out the rows without a
/// majority among the seven (saying why), and its neutral-read-as-negative share is the hand
/// count from its confusion matrix.
#[test]
fn eval_with_ferplus_labels_uses_the_majority_of_the_chosen_usage() {
    use emolens_data::ferplus::{FerPlusVotes, Usage};
    let src = fer2013();
    let votes_path = ferplus_votes();
    let text = std::fs::read_to_string(&votes_path).unwrap();
    let votes = FerPlusVotes::load(&votes_path).unwrap();

    // A FER2013-shaped copy: every 12th test row, plus every test row without a majority (no
    // votes, ties, contempt/unknown/NF pluralities), with their lines of votes.csv.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("fer2013");
    let mut lines = vec![text.lines().next().unwrap().to_string()];
    let mut rows = Vec::new();
    for (i, line) in text.lines().skip(1).enumerate() {
        let file = line.split(',').next().unwrap();
        let row = votes.get(file).unwrap();
        if row.usage == Usage::Training || (i % 12 != 0 && row.majority().is_some()) {
            continue;
        }
        let dst = root.join(file);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(src.join(file), &dst).unwrap();
        lines.push(line.to_string());
        rows.push(row.clone());
    }
    let sub_votes = tmp.path().join("votes.csv");
    std::fs::write(&sub_votes, lines.join("\n") + "\n").unwrap();
    let labels = format!("ferplus:{}", sub_votes.display());

    let classes = [
        "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise",
    ];
    for (split, usage, other) in [
        ("test", Usage::PrivateTest, "PublicTest_"),
        ("public-test", Usage::PublicTest, "PrivateTest_"),
    ] {
        let of_usage: Vec<_> = rows.iter().filter(|r| r.usage == usage).collect();
        let labelled: Vec<_> = of_usage.iter().filter(|r| r.majority().is_some()).collect();
        let no_votes = of_usage.iter().filter(|r| r.votes.is_none()).count();
        assert!(
            labelled.len() > 150 && labelled.len() < of_usage.len() && no_votes > 0,
            "the subset should hold labelled and unlabelled {split} rows"
        );
        // Majority counts per canonical class, and the folder counts they differ from.
        let mut want = [0u64; 7];
        let mut folder = [0u64; 7];
        for r in &labelled {
            want[r.majority().unwrap()] += 1;
            let dir = r.file.split('/').nth(1).unwrap();
            folder[classes.iter().position(|c| *c == dir).unwrap()] += 1;
        }
        assert_ne!(want, folder, "FER+ and folder labels should differ here");

        let out = tmp.path().join(format!("r-{split}"));
        let json = eval_json(
            &[
                "--data",
                root.to_str().unwrap(),
                "--labels",
                &labels,
                "--split",
                split,
            ],
            &out,
        );
        let r = &json["sections"][0]["report"];
        assert_eq!(r["n_samples"], labelled.len(), "{split}");
        assert!(json["failures"].as_array().unwrap().is_empty());
        let model_classes: Vec<String> = serde_json::from_value(r["classes"].clone()).unwrap();
        for (c, name) in classes.iter().enumerate() {
            let m = model_classes.iter().position(|x| x == name).unwrap();
            assert_eq!(
                r["per_class"][m]["support"], want[c],
                "{split}: support of {name}"
            );
        }
        // What was left out, and why: the same usage's rows without a majority, nothing of the
        // other usage.
        let l = &json["labels"];
        assert_eq!(l["kind"], "ferplus");
        assert_eq!(l["candidates"], of_usage.len());
        assert_eq!(l["fingerprint"], votes_fingerprint(&sub_votes));
        let left: Vec<serde_json::Value> = serde_json::from_value(l["left_out"].clone()).unwrap();
        let mut left_files: Vec<String> = left
            .iter()
            .flat_map(|g| g["files"].as_array().unwrap().clone())
            .map(|f| f.as_str().unwrap().to_string())
            .collect();
        left_files.sort();
        let mut want_left: Vec<String> = of_usage
            .iter()
            .filter(|r| r.majority().is_none())
            .map(|r| r.file.clone())
            .collect();
        want_left.sort();
        assert_eq!(left_files, want_left, "{split}");
        assert!(left_files.iter().all(|f| !f.contains(other)));
        let dropped = left
            .iter()
            .find(|g| g["reason"].as_str().unwrap().starts_with("no FER+ votes"))
            .unwrap();
        assert_eq!(dropped["count"], no_votes);
        assert!(
            left.iter()
                .map(|g| g["count"].as_u64().unwrap())
                .sum::<u64>()
                > no_votes as u64
        );

        // Neutral read as negative: the hand count from the confusion matrix.
        let cm: Vec<Vec<u64>> = serde_json::from_value(r["confusion"].clone()).unwrap();
        let at = |name: &str| model_classes.iter().position(|x| x == name).unwrap();
        let n = at("neutral");
        let negative: u64 = ["angry", "disgust", "fear", "sad"]
            .iter()
            .map(|c| cm[n][at(c)])
            .sum();
        let support: u64 = cm[n].iter().sum();
        assert_eq!(support, want[4]);
        let nr = &r["neutral"];
        assert_eq!(nr["as_negative"], negative);
        assert_eq!(nr["support"], support);
        let share = nr["as_negative_share"].as_f64().unwrap();
        assert!((share - negative as f64 / support as f64).abs() < 1e-12);
        assert!(
            negative > 0,
            "{split}: the bundled model reads some neutral faces as negative"
        );
        let recall = nr["recall"].as_f64().unwrap();
        assert!((recall - cm[n][n] as f64 / support as f64).abs() < 1e-12);
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(
            md.contains(&format!("{negative} of {support} ("))
                && md.contains(usage.name())
                && md.contains("left out by the labels"),
            "{md}"
        );
    }
}

fn votes_fingerprint(path: &Path) -> String {
    emolens_core::fingerprint::sha256_hex(&std::fs::read(path).unwrap())
}

/// A labelled folder with no split level (`<dir>/<class>/`), as `bench/accuracy/run.sh --extra`
/// passes them; a note beside the class folders is not an image.
#[test]
fn eval_takes_a_folder_of_class_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let flat = tmp.path().join("my_faces");
    let src = fer_test();
    for class in ["happy", "neutral", "sad"] {
        let d = flat.join(class);
        std::fs::create_dir_all(&d).unwrap();
        let files = emolens_test_support::sorted_entries(src.join(class));
        for f in files.iter().take(4) {
            std::fs::copy(f, d.join(f.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(flat.join("SOURCE.md"), "where these came from\n").unwrap();
    let json = eval_json(&["--data", flat.to_str().unwrap()], &tmp.path().join("r"));
    let r = &json["sections"][0]["report"];
    assert_eq!(r["n_samples"], 12);
    assert_eq!(json["labels"]["kind"], "folders");
    assert!(json["failures"].as_array().unwrap().is_empty());
    assert_eq!(r["neutral"]["support"], 4);
}
