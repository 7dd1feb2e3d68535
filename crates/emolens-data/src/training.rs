//! Opening a dataset (folder or manifest) for training: labelled train/valid/test samples, with
//! a seeded, stratified validation split carved from train where the dataset has none.

use crate::augment::AugmentParams;
use crate::error::DataError;
use crate::manifest::{Manifest, ManifestEntry, ManifestKind};
use crate::problem::{Problem, ProblemKind};
use crate::progress;
use crate::scan::{scan_dataset, ScanOptions, Split};
use emolens_core::fingerprint::sha256_hex;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// One labelled image to load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub path: PathBuf,
    /// Index into [`LabelledSplits::classes`].
    pub class: usize,
    /// The file's SHA-256 when known (manifests record it; the loader checks it).
    pub sha256: Option<String>,
    /// Augmentation that regenerates this sample's pixels (balanced manifests).
    pub augment: Option<AugmentParams>,
}

/// A dataset's samples by split.
#[derive(Debug, Clone)]
pub struct LabelledSplits {
    /// The seven emotions in canonical order, then any extra classes.
    pub classes: Vec<String>,
    pub train: Vec<Sample>,
    pub valid: Vec<Sample>,
    pub test: Vec<Sample>,
    /// True when `valid` was carved from train (the dataset had no valid split).
    pub valid_carved: bool,
    /// Folders and files that could not be used (named, with the reason).
    pub problems: Vec<Problem>,
    /// Relative paths (dataset keys) of the carved validation files, sorted; empty unless
    /// `valid_carved`. Recorded so a run can say exactly which files went where.
    pub carved_valid_keys: Vec<String>,
}

/// Options for [`open_for_training_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// Keep class folders beyond the seven emotions (appended as extra classes).
    pub extra_classes: bool,
}

/// Seeded, stratified choice of validation items.
///
/// `items` are `(key, class)`, the key being a stable name such as the path relative to the
/// dataset root. Per class (in class order), the items are sorted by key, shuffled with one
/// `ChaCha8Rng` seeded by `seed`, and the first `round(n * fraction)` go to validation (at least
/// one item of a class stays in train). So the carve depends only on (seed, fraction, the set of
/// keys and classes): not on the input order, the machine, or where the dataset lives.
/// Returns, per input item, whether it goes to validation.
pub fn carve_valid(items: &[(&str, usize)], fraction: f32, seed: u64) -> Vec<bool> {
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, (_, class)) in items.iter().enumerate() {
        by_class.entry(*class).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut valid = vec![false; items.len()];
    for idx in by_class.values_mut() {
        idx.sort_by(|&a, &b| items[a].0.cmp(items[b].0));
        idx.shuffle(&mut rng);
        let n = idx.len();
        let take = ((n as f64 * fraction as f64).round() as usize).min(n.saturating_sub(1));
        for &i in &idx[..take] {
            valid[i] = true;
        }
    }
    valid
}

/// [`open_for_training_with`] with default options (unknown classes skipped).
pub fn open_for_training(
    source: &Path,
    valid_fraction: f32,
    seed: u64,
) -> Result<LabelledSplits, DataError> {
    open_for_training_with(source, valid_fraction, seed, &OpenOptions::default())
}

struct Item {
    key: String,
    split: Split,
    class: usize,
    sample: Sample,
}

/// Opens `source`, a dataset folder (`<root>/<split>/<class>/<files>`) or a manifest written by
/// `emolens data clean/balance/split`.
///
/// When the dataset has no valid split and `valid_fraction > 0`, a seeded stratified
/// `valid_fraction` of train is carved off with [`carve_valid`] (augmented copies never go to
/// validation, and the copies of a file carved into validation are left out of train). The same
/// carve is what `emolens data split` writes to a manifest.
pub fn open_for_training_with(
    source: &Path,
    valid_fraction: f32,
    seed: u64,
    opts: &OpenOptions,
) -> Result<LabelledSplits, DataError> {
    if !(0.0..1.0).contains(&valid_fraction) {
        return Err(DataError::Invalid(format!(
            "valid fraction must be in [0, 1), got {valid_fraction}"
        )));
    }
    let (classes, mut items, mut problems) = if source.is_file() {
        from_manifest(source)?
    } else {
        let scan = scan_dataset(
            source,
            &ScanOptions {
                extra_classes: opts.extra_classes,
            },
        )?;
        let items = scan
            .files
            .into_iter()
            .map(|f| Item {
                key: f.rel,
                split: f.split,
                class: f.class,
                sample: Sample {
                    path: f.path,
                    class: f.class,
                    sha256: None,
                    augment: None,
                },
            })
            .collect::<Vec<_>>();
        (scan.classes, items, scan.problems)
    };
    if items.is_empty() {
        return Err(DataError::NoTrainingData {
            path: source.to_path_buf(),
            detail: "no image files found in any split".into(),
        });
    }

    let has_valid = items.iter().any(|i| i.split == Split::Valid);
    let mut carved_valid_keys = Vec::new();
    let valid_carved = !has_valid && valid_fraction > 0.0;
    if valid_carved {
        let originals: Vec<usize> = (0..items.len())
            .filter(|&i| items[i].split == Split::Train && items[i].sample.augment.is_none())
            .collect();
        let keys: Vec<(&str, usize)> = originals
            .iter()
            .map(|&i| (items[i].key.as_str(), items[i].class))
            .collect();
        let chosen = carve_valid(&keys, valid_fraction, seed);
        let mut carved = HashSet::new();
        for (&i, &v) in originals.iter().zip(&chosen) {
            if v {
                items[i].split = Split::Valid;
                carved.insert(items[i].key.clone());
            }
        }
        // An augmented copy of a validation image in train would leak it; leave such copies out.
        let before = items.len();
        items.retain(|i| !(i.sample.augment.is_some() && carved.contains(&i.key)));
        if items.len() < before {
            tracing::info!(
                dropped = before - items.len(),
                "augmented copies of carved validation images left out of train"
            );
        }
        carved_valid_keys = carved.into_iter().collect();
        carved_valid_keys.sort();
    }

    let mut out = LabelledSplits {
        classes,
        train: Vec::new(),
        valid: Vec::new(),
        test: Vec::new(),
        valid_carved,
        problems: Vec::new(),
        carved_valid_keys,
    };
    for it in items {
        match it.split {
            Split::Train => out.train.push(it.sample),
            Split::Valid => out.valid.push(it.sample),
            Split::Test => out.test.push(it.sample),
        }
    }
    out.problems.append(&mut problems);
    Ok(out)
}

/// Classes, items and problems read from a manifest.
type ManifestItems = (Vec<String>, Vec<Item>, Vec<Problem>);

fn from_manifest(path: &Path) -> Result<ManifestItems, DataError> {
    let m = Manifest::read(path)?;
    let items = m
        .entries
        .iter()
        .map(|e| {
            // Checked by Manifest::read.
            let class = m.classes.iter().position(|c| *c == e.class).unwrap_or(0);
            Item {
                key: e.path.clone(),
                split: e.split,
                class,
                sample: Sample {
                    path: m.resolve(&e.path),
                    class,
                    sha256: e.sha256.clone(),
                    augment: e.augment,
                },
            }
        })
        .collect();
    Ok((m.classes.clone(), items, m.problems.clone()))
}

/// Builds the manifest `emolens data split` writes: every file of `source` with its split
/// (carving valid from train as [`open_for_training_with`] does), class and SHA-256. Files that
/// cannot be read are listed as problems.
pub fn split_manifest(
    source: &Path,
    valid_fraction: f32,
    seed: u64,
    opts: &OpenOptions,
    show_progress: bool,
) -> Result<Manifest, DataError> {
    let splits = open_for_training_with(source, valid_fraction, seed, opts)?;
    let root = if source.is_file() {
        Manifest::read(source)?.root
    } else {
        source.to_path_buf()
    };
    let mut m = Manifest::new(ManifestKind::Split, &root, splits.classes.clone());
    let all: Vec<(Split, &Sample)> = [
        (Split::Train, &splits.train),
        (Split::Valid, &splits.valid),
        (Split::Test, &splits.test),
    ]
    .into_iter()
    .flat_map(|(s, v)| v.iter().map(move |x| (s, x)))
    .collect();
    let bar = progress::bar(all.len(), "hashing", show_progress);
    let hashed: Vec<Result<(String, u64), Problem>> = all
        .par_iter()
        .map(|(_, s)| {
            let r = std::fs::read(&s.path)
                .map(|b| (sha256_hex(&b), b.len() as u64))
                .map_err(|e| {
                    Problem::new(
                        &s.path,
                        ProblemKind::UnreadableFile,
                        format!("cannot read file ({e})"),
                    )
                });
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    let canon_root = m.root.clone();
    for ((split, s), h) in all.iter().zip(hashed) {
        match h {
            Ok((sha, bytes)) => m.entries.push(ManifestEntry {
                split: *split,
                class: splits.classes[s.class].clone(),
                path: relative_key(&s.path, &root, &canon_root),
                sha256: Some(sha),
                bytes: Some(bytes),
                augment: s.augment,
            }),
            Err(p) => m.problems.push(p),
        }
    }
    m.problems.extend(splits.problems.iter().cloned());
    m.settings = serde_json::json!({
        "valid_fraction": valid_fraction,
        "seed": seed,
        "valid_carved": splits.valid_carved,
        "extra_classes": opts.extra_classes,
        "carve": "per class: sort by relative path, shuffle with ChaCha8Rng(seed), first round(n*fraction) to valid",
    });
    m.summary = serde_json::json!({
        "train": splits.train.len(),
        "valid": splits.valid.len(),
        "test": splits.test.len(),
    });
    Ok(m)
}

/// `path` relative to `root` (trying the root as given, then canonicalised), `/`-separated.
pub(crate) fn relative_key(path: &Path, root: &Path, canon_root: &Path) -> String {
    let rel = path
        .strip_prefix(root)
        .or_else(|_| path.strip_prefix(canon_root))
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf());
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
