//! Training sources: the datasets one training run draws from, each with its labels and
//! sampling weight, opened into labelled train and validation items.
//!
//! A source is written `NAME=PATH[,labels=folder|ferplus:VOTES][,weight=W][,folder_votes=V]` (or
//! just `PATH`, named after its folder). Two label kinds:
//!
//! - `folder` (default): hard labels from the class folders of a dataset folder or manifest.
//!   Validation is the dataset's own valid split, or a seeded stratified carve of train
//!   ([`crate::carve_valid`]) when it has none. Its `test/` split is never used.
//! - `ferplus:VOTES`: the FER2013 folder with FER+ votes ([`crate::ferplus`]). Train is
//!   FER2013 `train/` with the FER+ seven-emotion vote distribution as a soft target (the folder
//!   label as a one-hot where FER+ has no row or no votes for the seven; rows whose plurality
//!   is not-a-face are dropped). `folder_votes=V` counts the FER2013 folder label as `V` more
//!   votes before the distribution is taken (0, the default: FER+ alone; 1: the original
//!   labeller as an eleventh annotator), which leans the target toward FER2013's label exactly
//!   where the ten annotators were split. Validation is FER+ PublicTest (`test/PublicTest_*`) with the
//!   FER+ majority as the label, rows without a unique seven-emotion majority left out. PrivateTest
//!   files never enter training or validation.

use crate::error::DataError;
use crate::ferplus::{FerPlusVotes, Usage};
use crate::problem::Problem;
use crate::scan::{scan_dataset, ScanOptions, Split};
use crate::training::{open_for_training, relative_key, Sample};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where a source's labels come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LabelKind {
    /// Hard labels from the class folders (or the manifest).
    Folder,
    /// FER+ vote distributions from this `votes.csv` (the source must be the FER2013 folder).
    Ferplus { votes: PathBuf },
}

impl LabelKind {
    pub fn name(&self) -> &'static str {
        match self {
            LabelKind::Folder => "folder",
            LabelKind::Ferplus { .. } => "ferplus",
        }
    }
}

/// One source of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSpec {
    /// Short name (letters, digits, `_`, `-`), used in history keys (`val_accuracy_NAME`).
    pub name: String,
    /// Dataset folder (`<root>/<split>/<class>/`) or manifest.
    pub path: PathBuf,
    pub labels: LabelKind,
    /// Sampling weight: each epoch draws `round(weight * train images)` of this source's
    /// training images (weight 1: each once; 0.5: a fresh random half each epoch; 2: each twice).
    pub weight: f64,
    /// FER+ labels only: extra votes given to the FER2013 folder label of each training image
    /// (0: FER+ votes alone).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub folder_votes: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// How `--source` is written, for error messages and `--help`.
pub const SOURCE_SYNTAX: &str =
    "NAME=PATH[,labels=folder|ferplus:VOTES_CSV][,weight=W][,folder_votes=V] (or just PATH)";

impl SourceSpec {
    /// A folder source with hard labels and weight 1 (what `--data DIR` is).
    pub fn folder(name: &str, path: &Path) -> SourceSpec {
        SourceSpec {
            name: name.to_string(),
            path: path.to_path_buf(),
            labels: LabelKind::Folder,
            weight: 1.0,
            folder_votes: 0.0,
        }
    }

    /// Checks the name and weight.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "source name `{}` must be letters, digits, `_` or `-`",
                self.name
            ));
        }
        if !self.weight.is_finite() || self.weight <= 0.0 {
            return Err(format!(
                "source {}: weight must be a positive number, got {}",
                self.name, self.weight
            ));
        }
        if !self.folder_votes.is_finite() || self.folder_votes < 0.0 {
            return Err(format!(
                "source {}: folder_votes must be a number >= 0, got {}",
                self.name, self.folder_votes
            ));
        }
        if self.folder_votes > 0.0 && self.labels == LabelKind::Folder {
            return Err(format!(
                "source {}: folder_votes needs labels=ferplus:VOTES_CSV (folder labels are one-hot already)",
                self.name
            ));
        }
        Ok(())
    }
}

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(',');
        let first = parts.next().unwrap_or("").trim();
        if first.is_empty() {
            return Err(format!("empty source; write {SOURCE_SYNTAX}"));
        }
        let (name, path) = match first.split_once('=') {
            Some((n, p)) => (n.trim().to_string(), PathBuf::from(p.trim())),
            None => {
                let p = PathBuf::from(first);
                let n = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (n, p)
            }
        };
        let mut spec = SourceSpec {
            name,
            path,
            labels: LabelKind::Folder,
            weight: 1.0,
            folder_votes: 0.0,
        };
        for part in parts {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                format!("source `{s}`: `{part}` is not KEY=VALUE; write {SOURCE_SYNTAX}")
            })?;
            match k.trim() {
                "labels" => {
                    let v = v.trim();
                    spec.labels = if v == "folder" {
                        LabelKind::Folder
                    } else if let Some(votes) = v.strip_prefix("ferplus:") {
                        LabelKind::Ferplus {
                            votes: PathBuf::from(votes),
                        }
                    } else {
                        return Err(format!(
                            "source `{s}`: labels `{v}` is unknown; use folder or ferplus:VOTES_CSV"
                        ));
                    }
                }
                "weight" => {
                    spec.weight = v.trim().parse().map_err(|_| {
                        format!("source `{s}`: weight `{v}` is not a number")
                    })?
                }
                "folder_votes" => {
                    spec.folder_votes = v.trim().parse().map_err(|_| {
                        format!("source `{s}`: folder_votes `{v}` is not a number")
                    })?
                }
                other => {
                    return Err(format!(
                        "source `{s}`: `{other}` is not a source setting (labels, weight, folder_votes); write {SOURCE_SYNTAX}"
                    ))
                }
            }
        }
        spec.validate().map_err(|e| format!("source `{s}`: {e}"))?;
        Ok(spec)
    }
}

/// One labelled image of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceItem {
    /// Path relative to the source's root (its dataset key).
    pub key: String,
    /// The image; `sample.class` is the hard label (for soft targets: the target's first
    /// largest class, which training accuracy is measured against).
    pub sample: Sample,
    /// A soft target over the classes (sums to 1); `None` means the one-hot of `sample.class`.
    pub target: Option<Vec<f32>>,
}

/// Where a source's validation items come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidKind {
    /// The dataset's own valid split.
    DatasetSplit,
    /// Carved from train (seeded, stratified).
    Carved,
    /// FER+ PublicTest with FER+ majority labels.
    FerplusPublicTest,
    /// None (no valid split and `valid_fraction` 0).
    None,
}

/// A source opened for training.
#[derive(Debug, Clone)]
pub struct SourceSplits {
    pub spec: SourceSpec,
    /// The seven emotions in canonical order, then any extra classes (manifests).
    pub classes: Vec<String>,
    pub train: Vec<SourceItem>,
    pub valid: Vec<SourceItem>,
    pub valid_kind: ValidKind,
    /// How the training labels were obtained: kind to number of items (before any cap).
    pub label_origin: BTreeMap<String, usize>,
    /// Files left out and why: reason to number of files.
    pub excluded: BTreeMap<String, usize>,
    /// Folders and files that could not be used.
    pub problems: Vec<Problem>,
    /// SHA-256 of the votes file (FER+ sources).
    pub votes_sha256: Option<String>,
}

impl SourceSplits {
    /// Keeps the first `max_train` training and `max_valid` validation items of each class (by
    /// `sample.class`, in the source's order), for quick runs and tests.
    pub fn limit_per_class(&mut self, max_train: Option<usize>, max_valid: Option<usize>) {
        fn cap(items: &mut Vec<SourceItem>, max: Option<usize>) {
            let Some(max) = max else { return };
            let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
            items.retain(|it| {
                let n = seen.entry(it.sample.class).or_insert(0);
                *n += 1;
                *n <= max
            });
        }
        cap(&mut self.train, max_train);
        cap(&mut self.valid, max_valid);
    }
}

fn keyed(key: String, sample: Sample) -> SourceItem {
    SourceItem {
        key,
        sample,
        target: None,
    }
}

/// Opens one source: its training items (with soft targets where the labels give them) and its
/// validation items (hard labels), as the module documentation describes.
pub fn open_source(
    spec: &SourceSpec,
    valid_fraction: f32,
    seed: u64,
) -> Result<SourceSplits, DataError> {
    spec.validate().map_err(DataError::Invalid)?;
    match &spec.labels {
        LabelKind::Folder => open_folder(spec, valid_fraction, seed),
        LabelKind::Ferplus { votes } => open_ferplus(spec, votes),
    }
}

fn open_folder(
    spec: &SourceSpec,
    valid_fraction: f32,
    seed: u64,
) -> Result<SourceSplits, DataError> {
    let splits = open_for_training(&spec.path, valid_fraction, seed)?;
    let root = if spec.path.is_file() {
        crate::manifest::Manifest::read(&spec.path)?.root
    } else {
        spec.path.clone()
    };
    let canon = std::fs::canonicalize(&root).unwrap_or_else(|_| root.clone());
    let items = |v: &[Sample]| -> Vec<SourceItem> {
        v.iter()
            .map(|s| keyed(relative_key(&s.path, &root, &canon), s.clone()))
            .collect()
    };
    let valid_kind = if splits.valid_carved {
        ValidKind::Carved
    } else if splits.valid.is_empty() {
        ValidKind::None
    } else {
        ValidKind::DatasetSplit
    };
    let mut excluded = BTreeMap::new();
    if !splits.test.is_empty() {
        excluded.insert("test_split_not_used".into(), splits.test.len());
    }
    let train = items(&splits.train);
    let label_origin = BTreeMap::from([("folder".to_string(), train.len())]);
    Ok(SourceSplits {
        spec: spec.clone(),
        classes: splits.classes,
        train,
        valid: items(&splits.valid),
        valid_kind,
        label_origin,
        excluded,
        problems: splits.problems,
        votes_sha256: None,
    })
}

fn bump(m: &mut BTreeMap<String, usize>, k: &str) {
    *m.entry(k.to_string()).or_insert(0) += 1;
}

fn first_max(t: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in t.iter().enumerate() {
        if x > t[best] {
            best = i;
        }
    }
    best
}

/// The training target of a FER+ row: its seven-emotion vote distribution, or with
/// `folder_votes > 0` the distribution of the votes plus `folder_votes` votes for the folder
/// label `folder_class`.
fn with_folder_votes(
    dist: &[f32; 7],
    votes: Option<[u32; 7]>,
    folder_class: usize,
    folder_votes: f64,
) -> Vec<f32> {
    match votes {
        Some(v) if folder_votes > 0.0 && folder_class < 7 => {
            let mut t: Vec<f64> = v.iter().map(|&c| c as f64).collect();
            t[folder_class] += folder_votes;
            let sum: f64 = t.iter().sum();
            t.iter().map(|&c| (c / sum) as f32).collect()
        }
        _ => dist.to_vec(),
    }
}

fn open_ferplus(spec: &SourceSpec, votes_path: &Path) -> Result<SourceSplits, DataError> {
    let votes = FerPlusVotes::load(votes_path)?;
    let scan = scan_dataset(&spec.path, &ScanOptions::default())?;
    let mut train = Vec::new();
    let mut valid = Vec::new();
    let mut excluded = BTreeMap::new();
    let mut label_origin = BTreeMap::new();
    let mut matched = 0usize;
    for f in &scan.files {
        let row = votes.get(&f.rel);
        matched += row.is_some() as usize;
        let sample = Sample {
            path: f.path.clone(),
            class: f.class,
            sha256: None,
            augment: None,
        };
        let name = f.rel.rsplit('/').next().unwrap_or("");
        // PrivateTest is FER+'s test split: it never enters a run, whatever else the row says.
        if name.starts_with("PrivateTest_") || row.is_some_and(|r| r.usage == Usage::PrivateTest) {
            bump(&mut excluded, "private_test");
            continue;
        }
        match f.split {
            Split::Train => {
                let Some(row) = row.filter(|r| r.votes.is_some()) else {
                    bump(&mut label_origin, "folder_label_no_ferplus_votes");
                    train.push(keyed(f.rel.clone(), sample));
                    continue;
                };
                if row.usage != Usage::Training {
                    bump(&mut excluded, "train_file_with_test_usage");
                    continue;
                }
                if row.not_a_face() {
                    bump(&mut excluded, "ferplus_not_a_face");
                    continue;
                }
                match row.distribution() {
                    Some(d) => {
                        bump(&mut label_origin, "ferplus_votes");
                        let t =
                            with_folder_votes(&d, row.seven_votes(), f.class, spec.folder_votes);
                        let class = first_max(&t);
                        train.push(SourceItem {
                            key: f.rel.clone(),
                            sample: Sample { class, ..sample },
                            target: Some(t),
                        });
                    }
                    None => {
                        bump(&mut label_origin, "folder_label_no_seven_class_votes");
                        train.push(keyed(f.rel.clone(), sample));
                    }
                }
            }
            Split::Valid | Split::Test => {
                let public = name.starts_with("PublicTest_")
                    && row.is_none_or(|r| r.usage == Usage::PublicTest);
                if !public {
                    bump(&mut excluded, "test_file_not_public_test");
                    continue;
                }
                match row.map(|r| (r.votes.is_some(), r.majority())) {
                    None | Some((false, _)) => bump(&mut excluded, "public_test_no_ferplus_votes"),
                    Some((true, None)) => {
                        bump(&mut excluded, "public_test_no_seven_class_majority")
                    }
                    Some((true, Some(m))) => {
                        valid.push(keyed(f.rel.clone(), Sample { class: m, ..sample }))
                    }
                }
            }
        }
    }
    if matched == 0 {
        return Err(DataError::Invalid(format!(
            "source {}: no file of {} is listed in {}; labels=ferplus needs the FER2013 folder the votes were made for",
            spec.name,
            spec.path.display(),
            votes_path.display()
        )));
    }
    if train.is_empty() {
        return Err(DataError::NoTrainingData {
            path: spec.path.clone(),
            detail: "no train/ images left after applying the FER+ votes".into(),
        });
    }
    Ok(SourceSplits {
        spec: spec.clone(),
        classes: scan.classes,
        train,
        valid,
        valid_kind: ValidKind::FerplusPublicTest,
        label_origin,
        excluded,
        problems: scan.problems,
        votes_sha256: Some(votes.fingerprint()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_source_specs() {
        let s: SourceSpec = "fer=../d/fer2013,labels=ferplus:../d/ferplus/votes.csv,weight=1"
            .parse()
            .unwrap();
        assert_eq!(s.name, "fer");
        assert_eq!(s.path, PathBuf::from("../d/fer2013"));
        assert_eq!(
            s.labels,
            LabelKind::Ferplus {
                votes: "../d/ferplus/votes.csv".into()
            }
        );
        let s: SourceSpec = "../d/affectnet7,weight=0.5".parse().unwrap();
        assert_eq!((s.name.as_str(), s.weight), ("affectnet7", 0.5));
        assert_eq!(s.labels, LabelKind::Folder);
        for bad in [
            "",
            "a=x,weight=0",
            "a=x,weight=abc",
            "a=x,labels=vote",
            "a=x,colour=1",
            "a b=x",
            "a=x,weight",
            "a=x,folder_votes=1",
            "a=x,labels=ferplus:v.csv,folder_votes=-1",
            "a=x,labels=ferplus:v.csv,folder_votes=x",
        ] {
            assert!(bad.parse::<SourceSpec>().is_err(), "{bad} accepted");
        }
        let s: SourceSpec = "f=x,labels=ferplus:v.csv,folder_votes=2".parse().unwrap();
        assert_eq!(s.folder_votes, 2.0);
    }

    #[test]
    fn folder_votes_add_to_the_ferplus_votes() {
        // 4 angry, 3 sad, 3 neutral; the FER2013 label says sad (5).
        let votes = [4, 0, 0, 0, 3, 3, 0];
        let dist = [0.4, 0.0, 0.0, 0.0, 0.3, 0.3, 0.0];
        assert_eq!(with_folder_votes(&dist, Some(votes), 5, 0.0), dist.to_vec());
        let t = with_folder_votes(&dist, Some(votes), 5, 2.0);
        let want = [4.0 / 12.0, 0.0, 0.0, 0.0, 3.0 / 12.0, 5.0 / 12.0, 0.0];
        for (a, b) in t.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{t:?}");
        }
        assert_eq!(
            first_max(&t),
            5,
            "the split vote now leans to the folder label"
        );
    }
}
