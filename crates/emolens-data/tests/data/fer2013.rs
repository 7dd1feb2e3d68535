//! The data layer on the real FER2013 copy in `shared/data/fer2013`: the stats must agree with
//! that folder's SOURCE.md, and clean/split/cache must behave on it.

use emolens_core::{ColourMode, InputSpec, Preprocessor};
use emolens_data::clean::{clean, CleanOptions};
use emolens_data::scan::{scan_dataset, ScanOptions, Split};
use emolens_data::stats::{analyse, compute};
use emolens_data::{load_cache, open_for_training, DropReason};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn fer() -> PathBuf {
    emolens_test_support::shared("data/fer2013/train");
    emolens_test_support::shared("data/fer2013/test");
    emolens_test_support::fer2013()
}

/// One pass over all 35,887 files checks every figure SOURCE.md states, then cleans.
#[test]
fn stats_and_clean_agree_with_source_md() {
    let dir = fer();
    let scan = scan_dataset(&dir, &ScanOptions::default()).unwrap();
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    let t = std::time::Instant::now();
    let analyses = analyse(&scan, false);
    let st = compute(&scan, &analyses);
    eprintln!(
        "analysed {} files in {:.1} s",
        st.files,
        t.elapsed().as_secs_f64()
    );

    assert_eq!(st.files, 35_887);
    assert_eq!(st.decoded, 35_887);
    assert!(st.undecodable.is_empty());
    let by: BTreeMap<&str, _> = st.splits.iter().map(|s| (s.split.as_str(), s)).collect();
    let (train, test) = (by["train"], by["test"]);
    assert_eq!((train.files, test.files), (28_709, 7_178));
    let expect_train = [3_995, 436, 4_097, 7_215, 4_965, 4_830, 3_171];
    let expect_test = [958, 111, 1_024, 1_774, 1_233, 1_247, 831];
    for (i, c) in st.classes.iter().enumerate() {
        assert_eq!(train.per_class[c], expect_train[i], "train {c}");
        assert_eq!(test.per_class[c], expect_test[i], "test {c}");
    }
    // Every file: grayscale JPEG, 48x48, 359..=2,483 bytes, 56,510,189 bytes in all.
    for s in [train, test] {
        assert_eq!(s.grayscale_stored, s.files);
        assert_eq!(s.grayscale_content, s.files);
        assert_eq!(s.sizes.get("48x48"), Some(&s.files));
        assert_eq!(s.formats.get("jpg"), Some(&s.files));
        assert_eq!(s.extension_mismatch, 0);
    }
    assert_eq!(train.bytes.total + test.bytes.total, 56_510_189);
    assert_eq!(train.bytes.min.min(test.bytes.min), 359);
    assert_eq!(train.bytes.max.max(test.bytes.max), 2_483);

    // 13 blank images: 12 in train, the test one named in SOURCE.md, the grey train one.
    assert_eq!(st.blank.len(), 13, "{:?}", st.blank);
    assert_eq!((train.blank, test.blank), (12, 1));
    assert!(st
        .blank
        .contains(&"test/angry/PublicTest_5543497.jpg".to_string()));
    assert!(st
        .blank
        .contains(&"train/neutral/Training_3542668.jpg".to_string()));
    // SOURCE.md's one near-blank file (Pillow: std 4.1).
    assert_eq!(st.near_blank.len(), 1, "{:?}", st.near_blank);
    assert_eq!(st.near_blank[0].0, "test/happy/PublicTest_21832858.jpg");

    let d = &st.duplicates;
    assert_eq!((d.groups, d.files, d.redundant), (1_516, 3_369, 1_853));
    assert_eq!(d.distinct_files, 34_034);
    assert_eq!(d.within_split.get("train"), Some(&936));
    assert_eq!(d.within_split.get("test"), Some(&49));
    assert_eq!(d.across_splits, 531);
    assert_eq!(d.conflicting_label_groups, 57);
    let leak = &d.leaks["test"];
    assert_eq!(leak.files_with_train_copy, 568);
    assert_eq!(leak.with_different_train_label, 28);
    let expect_leak = [
        ("surprise", 232),
        ("fear", 94),
        ("angry", 66),
        ("happy", 57),
        ("sad", 44),
        ("neutral", 44),
        ("disgust", 31),
    ];
    for (c, n) in expect_leak {
        assert_eq!(leak.by_class[c], n, "leaks of {c}");
    }

    // Clean with the defaults: test intact; no train file left that is tiny, blank, a
    // duplicate, or byte-identical to a test file.
    let m = clean(&scan, &analyses, &CleanOptions::default()).unwrap();
    assert_eq!(m.entries.len() + m.dropped.len(), 35_887);
    let kept_test = m.entries.iter().filter(|e| e.split == Split::Test).count();
    assert_eq!(kept_test, 7_178, "test must stay intact");
    let test_hashes: std::collections::HashSet<_> = m
        .entries
        .iter()
        .filter(|e| e.split == Split::Test)
        .map(|e| e.sha256.clone())
        .collect();
    let mut train_hashes = std::collections::HashSet::new();
    for e in m.entries.iter().filter(|e| e.split == Split::Train) {
        assert!(e.bytes.unwrap() >= 675, "{}", e.path);
        assert!(!test_hashes.contains(&e.sha256), "leak kept: {}", e.path);
        assert!(
            train_hashes.insert(e.sha256.clone()),
            "duplicate kept: {}",
            e.path
        );
    }
    let count = |r: DropReason| m.dropped.iter().filter(|d| d.reason == r).count();
    // Every train copy of a test image goes (as a leak, or earlier as a conflict/size/blank).
    let train_copies_of_test: usize = scan
        .files
        .iter()
        .zip(&analyses)
        .filter(|(f, a)| f.split == Split::Train && test_hashes.contains(&a.sha256))
        .count();
    assert!(count(DropReason::Leak) > 0 && count(DropReason::Leak) <= train_copies_of_test);
    assert!(count(DropReason::Blank) <= 12 && count(DropReason::ConflictingLabels) > 0);
    assert!(m
        .dropped
        .iter()
        .all(|d| d.split == Split::Train && !d.detail.is_empty()));
    eprintln!(
        "clean: kept {} dropped {} {}",
        m.entries.len(),
        m.dropped.len(),
        m.summary
    );
}

/// Carve + cache on the real train split: stratified, reproducible, disjoint, fast.
#[test]
fn carve_and_cache_on_real_train() {
    let dir = fer();
    let a = open_for_training(&dir, 0.1, 7).unwrap();
    let b = open_for_training(&dir, 0.1, 7).unwrap();
    let c = open_for_training(&dir, 0.1, 8).unwrap();
    assert!(a.valid_carved);
    assert_eq!(a.carved_valid_keys, b.carved_valid_keys);
    assert_ne!(a.carved_valid_keys, c.carved_valid_keys);
    assert_eq!(a.train.len() + a.valid.len(), 28_709);
    assert_eq!(a.test.len(), 7_178);
    // Stratified: each class's share of valid is round(10 %) of its train count.
    let expect = [3_995, 436, 4_097, 7_215, 4_965, 4_830, 3_171];
    for (k, n) in expect.iter().enumerate() {
        let v = a.valid.iter().filter(|s| s.class == k).count();
        assert_eq!(v, (*n as f64 * 0.1).round() as usize, "class {k}");
    }
    let train_paths: std::collections::HashSet<_> = a.train.iter().map(|s| &s.path).collect();
    assert!(a.valid.iter().all(|s| !train_paths.contains(&s.path)));

    // Decode the carved valid split (2,871 files) into the cache; all load, none skipped.
    let pre = Preprocessor::new(InputSpec::fer(ColourMode::Grayscale));
    let (cache, problems) = load_cache(&a.valid, &pre, false);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(cache.len(), a.valid.len());
    assert_eq!(cache.pixels.len(), cache.len() * 48 * 48);
    let (again, _) = load_cache(&b.valid, &pre, false);
    assert_eq!(cache.fingerprint(), again.fingerprint());
}
