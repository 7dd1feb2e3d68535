//! FER+ votes and training sources on the real shared data (`shared/data/fer2013`,
//! `shared/data/ferplus/votes.csv`, `shared/data/affectnet7`): the reader agrees with the
//! votes file's SOURCE.md, and a FER+ source trains on train/ with soft targets, validates on
//! PublicTest only and never touches PrivateTest.

use emolens_data::ferplus::VOTE_COLUMNS;
use emolens_data::{open_source, FerPlusVotes, LabelKind, SourceSpec, Usage, ValidKind};
use emolens_test_support::fer2013;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn votes_path() -> PathBuf {
    emolens_test_support::shared("data/ferplus/votes.csv")
}

fn ferplus_source() -> SourceSpec {
    SourceSpec {
        name: "fer2013".into(),
        path: fer2013(),
        labels: LabelKind::Ferplus {
            votes: votes_path(),
        },
        weight: 1.0,
        folder_votes: 0.0,
    }
}

#[test]
fn votes_agree_with_source_md() {
    let v = FerPlusVotes::load(&votes_path()).unwrap();
    assert_eq!(v.len(), 35_887);
    assert_eq!(v.fingerprint().len(), 64);
    assert_eq!(v.rows().filter(|r| r.votes.is_none()).count(), 175);

    // The first data line: 2,1,2,0,4,0,0,0,1,0 (neutral, happiness, surprise, sadness, anger, ...).
    let r = v.get("test/angry/PrivateTest_10131363.jpg").unwrap();
    assert_eq!(r.usage, Usage::PrivateTest);
    assert_eq!(r.votes, Some([2, 1, 2, 0, 4, 0, 0, 0, 1, 0]));
    // Canonical order: angry, disgust, fear, happy, neutral, sad, surprise.
    assert_eq!(r.seven_votes(), Some([4, 0, 0, 1, 2, 0, 2]));
    assert_eq!(r.majority(), Some(0));
    let d = r.distribution().unwrap();
    assert!((d[0] - 4.0 / 9.0).abs() < 1e-6 && (d[4] - 2.0 / 9.0).abs() < 1e-6);
    // Fourth line: 7 neutral, 1 sad, 1 angry, 1 unknown.
    let r = v.get("test/angry/PrivateTest_1054527.jpg").unwrap();
    assert_eq!(r.majority(), Some(4));

    // SOURCE.md's train counts are the first-largest column of each row.
    let mut first_max: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unique: BTreeMap<usize, usize> = BTreeMap::new();
    for r in v.rows().filter(|r| r.usage == Usage::Training) {
        if let Some(votes) = r.votes {
            let m = *votes.iter().max().unwrap();
            let col = votes.iter().position(|&x| x == m).unwrap();
            *first_max.entry(VOTE_COLUMNS[col]).or_default() += 1;
        }
        if let Some(c) = r.majority() {
            *unique.entry(c).or_default() += 1;
        }
    }
    let want = [
        ("neutral", 10_308),
        ("happiness", 7_528),
        ("surprise", 3_562),
        ("sadness", 3_515),
        ("anger", 2_467),
        ("fear", 652),
        ("disgust", 191),
        ("contempt", 165),
        ("unknown", 170),
        ("NF", 2),
    ];
    for (k, n) in want {
        assert_eq!(first_max.get(k), Some(&n), "{k}");
    }
    // The unique seven-emotion majorities (ties and the other three columns left out).
    let unique: Vec<usize> = (0..7)
        .map(|c| unique.get(&c).copied().unwrap_or(0))
        .collect();
    assert_eq!(unique, [2_399, 175, 648, 7_410, 9_364, 3_403, 3_378]);

    // Every row names a real file whose folder and name agree with its usage.
    for r in v.rows() {
        assert!(fer2013().join(&r.file).is_file(), "{} missing", r.file);
        let name = r.file.rsplit('/').next().unwrap();
        match r.usage {
            Usage::Training => assert!(r.file.starts_with("train/")),
            Usage::PublicTest => assert!(name.starts_with("PublicTest_")),
            Usage::PrivateTest => assert!(name.starts_with("PrivateTest_")),
        }
    }
}

#[test]
fn a_ferplus_source_trains_on_train_and_validates_on_public_test() {
    let s = open_source(&ferplus_source(), 0.1, 42).unwrap();
    assert_eq!(s.valid_kind, ValidKind::FerplusPublicTest);
    assert_eq!(s.votes_sha256.as_ref().unwrap().len(), 64);
    // 28,709 train files less the 3 whose plurality is not-a-face.
    assert_eq!(s.train.len(), 28_706);
    assert_eq!(s.excluded["ferplus_not_a_face"], 3);
    assert_eq!(s.excluded["private_test"], 3_589);
    assert_eq!(s.label_origin["ferplus_votes"], 28_555);
    assert_eq!(s.label_origin["folder_label_no_ferplus_votes"], 149);
    assert_eq!(s.label_origin["folder_label_no_seven_class_votes"], 2);
    // PublicTest rows with a unique seven-emotion majority.
    assert_eq!(s.valid.len(), 3_372);
    for it in &s.train {
        assert!(it.key.starts_with("train/"), "{}", it.key);
        if let Some(t) = &it.target {
            assert!((t.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            let max = t.iter().cloned().fold(0.0, f32::max);
            assert_eq!(
                t[it.sample.class], max,
                "the hard label is the target's largest"
            );
        }
    }
    // Soft targets really are soft for most rows.
    assert!(
        s.train
            .iter()
            .filter(|it| it
                .target
                .as_ref()
                .is_some_and(|t| t.iter().all(|&x| x < 1.0)))
            .count()
            > 10_000
    );
    let votes = FerPlusVotes::load(&votes_path()).unwrap();
    for it in &s.valid {
        let name = it.key.rsplit('/').next().unwrap();
        assert!(name.starts_with("PublicTest_"), "{}", it.key);
        assert_eq!(
            Some(it.sample.class),
            votes.get(&it.key).unwrap().majority()
        );
    }
    assert!(s
        .train
        .iter()
        .chain(&s.valid)
        .all(|it| !it.key.contains("PrivateTest")));
}

#[test]
fn a_folder_source_carves_validation_and_leaves_test_out() {
    let spec: SourceSpec = format!(
        "affectnet={},weight=0.5",
        emolens_test_support::shared("data/affectnet7").display()
    )
    .parse()
    .unwrap();
    let mut s = open_source(&spec, 0.1, 42).unwrap();
    assert_eq!(s.valid_kind, ValidKind::Carved);
    // 30,179 train files (the per-class counts of SOURCE.md; its total row says 29,699).
    assert_eq!(s.train.len() + s.valid.len(), 30_179);
    assert_eq!(s.excluded["test_split_not_used"], 3_149);
    assert!(s
        .train
        .iter()
        .chain(&s.valid)
        .all(|it| it.key.starts_with("train/") && it.target.is_none()));
    s.limit_per_class(Some(5), Some(2));
    assert_eq!((s.train.len(), s.valid.len()), (35, 14));
}

#[test]
fn a_ferplus_source_on_another_folder_is_refused() {
    let mut spec = ferplus_source();
    spec.path = emolens_test_support::shared("data/affectnet7");
    let e = open_source(&spec, 0.1, 42).unwrap_err().to_string();
    assert!(e.contains("labels=ferplus"), "{e}");
}
