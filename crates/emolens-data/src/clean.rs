//! `emolens data clean`: choose which files to train on, and record why every other file was
//! dropped. Writes a manifest; never deletes or changes the originals.
//!
//! Policy, applied to the *cleaned* splits (train and valid; test too with `clean_test`):
//! 1. unusable files (unreadable, empty, not an image, corrupt) are dropped in every split;
//! 2. files under `min_bytes` are dropped (the original dropped train images under 675 bytes:
//!    on FER2013 these are mostly blank or near-blank crops);
//! 3. blank (constant) images are dropped;
//! 4. duplicate groups (identical bytes) whose copies carry different labels: every copy in a
//!    cleaned split is dropped (the label cannot be trusted);
//! 5. cross-split leaks, by [`LeakPolicy`]: by default the copy in the most held-out split is
//!    kept (test over valid over train) and the others dropped, so test stays intact as the
//!    benchmark set and train loses its copy;
//! 6. the remaining duplicates within a split: the first copy (by path) is kept, the rest dropped.
//!
//! The test split is kept intact by default (only unusable files leave it), so results stay
//! comparable with published FER2013 test figures.

use crate::error::DataError;
use crate::manifest::{DropReason, DroppedEntry, Manifest, ManifestEntry, ManifestKind};
use crate::scan::{DatasetScan, Split};
use crate::stats::{duplicate_groups, FileAnalysis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What to do with byte-identical files in different splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LeakPolicy {
    /// Keep the held-out copy (test over valid), drop the train (or valid) copy. Default.
    #[default]
    DropTrain,
    /// Keep the train copy, drop the held-out copies (changes the benchmark set).
    DropHeldout,
    /// Leave leaks in place (report only).
    Keep,
}

impl std::str::FromStr for LeakPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "drop-train" => Ok(LeakPolicy::DropTrain),
            "drop-heldout" | "drop-held-out" | "drop-test" => Ok(LeakPolicy::DropHeldout),
            "keep" => Ok(LeakPolicy::Keep),
            o => Err(format!(
                "unknown leak policy '{o}': use drop-train, drop-heldout or keep"
            )),
        }
    }
}

/// Cleaning settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CleanOptions {
    /// Drop files smaller than this many bytes (0 = off). The original used 675 on train.
    pub min_bytes: u64,
    pub drop_blank: bool,
    pub drop_duplicates: bool,
    pub drop_conflicting: bool,
    pub leak_policy: LeakPolicy,
    /// Also clean the test split (size, blank, duplicates, conflicts). Off: test stays intact.
    pub clean_test: bool,
}

impl Default for CleanOptions {
    fn default() -> Self {
        CleanOptions {
            min_bytes: 675,
            drop_blank: true,
            drop_duplicates: true,
            drop_conflicting: true,
            leak_policy: LeakPolicy::DropTrain,
            clean_test: false,
        }
    }
}

/// Builds the clean manifest of a scanned and analysed dataset.
pub fn clean(
    scan: &DatasetScan,
    analyses: &[FileAnalysis],
    opts: &CleanOptions,
) -> Result<Manifest, DataError> {
    if analyses.len() != scan.files.len() {
        return Err(DataError::Invalid(
            "analyses do not match the scanned files".into(),
        ));
    }
    let cleaned = |s: Split| s != Split::Test || opts.clean_test;
    let n = scan.files.len();
    let mut drop: Vec<Option<(DropReason, String)>> = vec![None; n];

    for (i, (f, a)) in scan.files.iter().zip(analyses).enumerate() {
        match &a.image {
            Err(p) => drop[i] = Some((DropReason::Undecodable, p.message.clone())),
            Ok(info) if cleaned(f.split) => {
                if a.bytes < opts.min_bytes {
                    drop[i] = Some((
                        DropReason::TooSmall,
                        format!(
                            "{} bytes, under the {}-byte threshold",
                            a.bytes, opts.min_bytes
                        ),
                    ));
                } else if opts.drop_blank && info.blank {
                    drop[i] = Some((DropReason::Blank, "every pixel has the same value".into()));
                }
            }
            Ok(_) => {}
        }
    }

    for (_, members) in duplicate_groups(scan, analyses) {
        let members: Vec<usize> = members
            .into_iter()
            .filter(|&i| analyses[i].image.is_ok())
            .collect();
        if members.len() < 2 {
            continue;
        }
        let describe = |i: usize| {
            format!(
                "{} ({})",
                scan.files[i].rel, scan.classes[scan.files[i].class]
            )
        };
        let labels: BTreeSet<usize> = members.iter().map(|&i| scan.files[i].class).collect();
        if opts.drop_conflicting && labels.len() > 1 {
            let all: Vec<String> = members.iter().map(|&i| describe(i)).collect();
            for &i in &members {
                if drop[i].is_none() && cleaned(scan.files[i].split) {
                    drop[i] = Some((
                        DropReason::ConflictingLabels,
                        format!(
                            "identical copies carry different labels: {}",
                            all.join(", ")
                        ),
                    ));
                }
            }
        }
        let splits: BTreeSet<Split> = members.iter().map(|&i| scan.files[i].split).collect();
        if splits.len() > 1 && opts.leak_policy != LeakPolicy::Keep {
            let keep_split = match opts.leak_policy {
                LeakPolicy::DropTrain => *splits.iter().next_back().unwrap_or(&Split::Test),
                _ => *splits.iter().next().unwrap_or(&Split::Train),
            };
            let keeper = members
                .iter()
                .copied()
                .find(|&i| scan.files[i].split == keep_split);
            for &i in &members {
                if drop[i].is_none() && scan.files[i].split != keep_split {
                    drop[i] = Some((
                        DropReason::Leak,
                        format!(
                            "byte-identical to {} in {keep_split} (policy {:?})",
                            keeper.map(describe).unwrap_or_default(),
                            opts.leak_policy
                        ),
                    ));
                }
            }
        }
        if opts.drop_duplicates {
            let mut kept_in: BTreeMap<Split, usize> = BTreeMap::new();
            for &i in &members {
                let s = scan.files[i].split;
                if drop[i].is_some() || !cleaned(s) {
                    continue;
                }
                match kept_in.get(&s) {
                    None => {
                        kept_in.insert(s, i);
                    }
                    Some(&k) => {
                        drop[i] = Some((
                            DropReason::Duplicate,
                            format!("same bytes as {} (kept)", scan.files[k].rel),
                        ))
                    }
                }
            }
        }
    }

    let mut m = Manifest::new(ManifestKind::Clean, &scan.root, scan.classes.clone());
    let mut kept: BTreeMap<String, usize> = BTreeMap::new();
    let mut dropped: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (i, (f, a)) in scan.files.iter().zip(analyses).enumerate() {
        let class = scan.classes[f.class].clone();
        match drop[i].take() {
            None => {
                *kept.entry(f.split.name().into()).or_default() += 1;
                m.entries.push(ManifestEntry {
                    split: f.split,
                    class,
                    path: f.rel.clone(),
                    sha256: a.sha256.clone(),
                    bytes: Some(a.bytes),
                    augment: None,
                })
            }
            Some((reason, detail)) => {
                *dropped
                    .entry(f.split.name().into())
                    .or_default()
                    .entry(reason.name().into())
                    .or_default() += 1;
                m.dropped.push(DroppedEntry {
                    split: f.split,
                    class,
                    path: f.rel.clone(),
                    sha256: a.sha256.clone(),
                    bytes: a.sha256.as_ref().map(|_| a.bytes),
                    reason,
                    detail,
                })
            }
        }
    }
    m.problems = scan.problems.clone();
    m.settings = serde_json::to_value(opts).unwrap_or_default();
    m.summary = serde_json::json!({ "kept": kept, "dropped": dropped });
    Ok(m)
}
