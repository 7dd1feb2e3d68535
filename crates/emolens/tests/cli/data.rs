//! `emolens data ...` end to end: the real binary on the real FER2013 copy and on small subsets
//! copied into a scratch folder.

use std::path::{Path, PathBuf};
use std::process::Output;

fn fer() -> PathBuf {
    emolens_test_support::shared("data/fer2013/train");
    emolens_test_support::shared("data/fer2013/test");
    emolens_test_support::fer2013()
}

/// Runs emolens with `args`; it must succeed.
fn emolens(args: &[&str]) -> Output {
    emolens_test_support::success(emolens_test_support::emolens!().args(args))
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn scratch(name: &str) -> PathBuf {
    emolens_test_support::scratch(&format!("cli-data-{name}"))
}

/// Copies the first `n` files of each listed FER2013 class into `root/<split>/<class>`.
fn subset(root: &Path, split: &str, classes: &[(&str, usize)]) {
    for (class, n) in classes {
        let src = fer().join(split).join(class);
        let files = emolens_test_support::sorted_entries(&src);
        let dst = root.join(split).join(class);
        std::fs::create_dir_all(&dst).unwrap();
        for f in files.iter().take(*n) {
            std::fs::copy(f, dst.join(f.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn stats_json_on_fer2013_matches_source_md() {
    let v = json(&emolens(&[
        "data",
        "stats",
        fer().to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(v["files"], 35_887);
    let splits = v["splits"].as_array().unwrap();
    assert_eq!(splits[0]["split"], "train");
    assert_eq!(splits[0]["files"], 28_709);
    assert_eq!(splits[1]["files"], 7_178);
    assert_eq!(splits[0]["per_class"]["disgust"], 436);
    let d = &v["duplicates"];
    assert_eq!(d["groups"], 1_516);
    assert_eq!(d["files"], 3_369);
    assert_eq!(d["redundant"], 1_853);
    assert_eq!(d["within_split"]["train"], 936);
    assert_eq!(d["within_split"]["test"], 49);
    assert_eq!(d["across_splits"], 531);
    assert_eq!(d["conflicting_label_groups"], 57);
    assert_eq!(d["leaks"]["test"]["files_with_train_copy"], 568);
    assert_eq!(d["leaks"]["test"]["with_different_train_label"], 28);
    assert_eq!(v["blank"].as_array().unwrap().len(), 13);
}

#[test]
fn clean_split_balance_on_a_subset() {
    let dir = scratch("pipeline");
    let data = dir.join("data");
    subset(
        &data,
        "train",
        &[("happy", 40), ("sad", 25), ("disgust", 12)],
    );
    subset(&data, "test", &[("happy", 5), ("sad", 5)]);
    // A byte-identical copy of a test image planted in train (a leak), and a duplicate in train.
    let test_img = std::fs::read_dir(data.join("test/happy"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&test_img, data.join("train/happy/leak_copy.jpg")).unwrap();
    let train_img = std::fs::read_dir(data.join("train/sad"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&train_img, data.join("train/sad/dup_copy.jpg")).unwrap();
    std::fs::write(
        data.join("train/sad/broken.jpg"),
        b"\xff\xd8\xff not really",
    )
    .unwrap();

    // Human report names the broken file.
    let out = emolens(&["data", "stats", data.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("broken.jpg"), "{text}");

    // clean
    let clean = dir.join("clean.json");
    emolens(&[
        "data",
        "clean",
        data.to_str().unwrap(),
        "--out",
        clean.to_str().unwrap(),
        "--min-bytes",
        "0",
    ]);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&clean).unwrap()).unwrap();
    let reason_of = |name: &str| {
        m["dropped"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["path"].as_str().unwrap().ends_with(name))
            .map(|d| d["reason"].clone())
    };
    assert_eq!(reason_of("leak_copy.jpg"), Some("leak".into()));
    assert_eq!(reason_of("broken.jpg"), Some("undecodable".into()));
    assert!(m["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["reason"] == "duplicate"));
    let kept = m["entries"].as_array().unwrap();
    assert_eq!(
        kept.iter().filter(|e| e["split"] == "test").count(),
        10,
        "test intact"
    );

    // split: reproducible from the seed.
    let s1 = dir.join("split1.json");
    let s2 = dir.join("split2.json");
    emolens(&[
        "data",
        "split",
        clean.to_str().unwrap(),
        "--out",
        s1.to_str().unwrap(),
        "--valid-fraction",
        "0.2",
        "--seed",
        "5",
    ]);
    emolens(&[
        "data",
        "split",
        clean.to_str().unwrap(),
        "--out",
        s2.to_str().unwrap(),
        "--valid-fraction",
        "0.2",
        "--seed",
        "5",
    ]);
    let a: serde_json::Value = serde_json::from_slice(&std::fs::read(&s1).unwrap()).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&std::fs::read(&s2).unwrap()).unwrap();
    assert_eq!(a["entries"], b["entries"]);
    let valid = a["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["split"] == "valid")
        .count();
    assert!(valid > 0);

    // balance to 30 per class as a manifest and as a folder; the folder's augmented PNGs equal
    // what the manifest regenerates (FER images are 48x48 grayscale, the model input).
    let bal = dir.join("balance.json");
    let out_dir = dir.join("balanced");
    let out = emolens(&[
        "data",
        "balance",
        s1.to_str().unwrap(),
        "--target",
        "30",
        "--seed",
        "3",
        "--out",
        bal.to_str().unwrap(),
        "--out-dir",
        out_dir.to_str().unwrap(),
    ]);
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout[out.stdout.iter().position(|&c| c == b'{').unwrap()..])
            .unwrap();
    for c in ["happy", "sad", "disgust"] {
        assert_eq!(summary["train"][c]["after"], 30, "{summary}");
    }
    let bm: serde_json::Value = serde_json::from_slice(&std::fs::read(&bal).unwrap()).unwrap();
    let trimmed = bm["dropped"].as_array().unwrap();
    assert!(!trimmed.is_empty() && trimmed.iter().all(|d| d["reason"] == "trimmed"));
    let pngs: Vec<_> = std::fs::read_dir(out_dir.join("train/disgust"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    assert_eq!(
        std::fs::read_dir(out_dir.join("train/disgust"))
            .unwrap()
            .count(),
        30
    );
    let originals = bm["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["split"] == "train" && e["class"] == "disgust" && e.get("augment").is_none())
        .count();
    assert!(originals > 0 && originals < 12);
    assert_eq!(
        pngs.len(),
        30 - originals,
        "originals copied, the rest augmented PNGs"
    );

    // The manifest loads through the training API and regenerates the same pixels as the PNGs.
    let splits = emolens_data::open_for_training(&bal, 0.0, 0).unwrap();
    let pre = emolens_core::Preprocessor::new(emolens_core::InputSpec::fer(
        emolens_core::ColourMode::Grayscale,
    ));
    let (cache, problems) = emolens_data::load_cache(&splits.train, &pre, false);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(cache.len(), 90);
    let folder = emolens_data::open_for_training(&out_dir, 0.0, 0).unwrap();
    let (fcache, _) = emolens_data::load_cache(&folder.train, &pre, false);
    let mut a: Vec<&[u8]> = (0..cache.len()).map(|i| cache.image(i)).collect();
    let mut b: Vec<&[u8]> = (0..fcache.len()).map(|i| fcache.image(i)).collect();
    a.sort();
    b.sort();
    assert_eq!(
        a, b,
        "folder output and manifest regeneration give the same pixels"
    );
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let out = emolens_test_support::emolens!()
        .args(["data", "stats", "/no/such/dataset"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/dataset"), "{err}");
}
