//! `emolens data balance`: every train class brought to the same size, as the original's
//! balanced-1 (10,000 per class) and balanced-2 (30,000 per class) datasets were.
//!
//! Classes under the target are filled with augmented copies of their own images (sources taken
//! in a seeded shuffled cycle, augmentation params drawn from a seeded `ChaCha8Rng`); classes
//! over it are trimmed, smallest files first as the original did (it moved the smallest files
//! out), or at random. Valid and test are left as they are. The result is a manifest whose
//! augmented entries carry their params, so the loader regenerates the exact pixels, or a folder
//! of written images (originals copied byte for byte, augmented copies as PNG; `folder.rs`).

use crate::augment::{AugmentConfig, AugmentParams};
use crate::error::DataError;
use crate::manifest::{DropReason, DroppedEntry, Manifest, ManifestEntry, ManifestKind};
use crate::problem::{Problem, ProblemKind};
use crate::progress;
use crate::scan::Split;
use crate::training::{open_for_training_with, relative_key, LabelledSplits, OpenOptions, Sample};
use emolens_core::fingerprint::sha256_hex;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

mod folder;

pub use folder::write_folder;

/// Which files go when a class is over the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TrimPolicy {
    /// Smallest files first (the original's choice: small JPEGs are mostly flat, low-detail faces).
    #[default]
    Smallest,
    /// Seeded random choice.
    Random,
}

impl std::str::FromStr for TrimPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "smallest" => Ok(TrimPolicy::Smallest),
            "random" => Ok(TrimPolicy::Random),
            o => Err(format!("unknown trim policy '{o}': use smallest or random")),
        }
    }
}

/// Balance settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BalanceOptions {
    /// Images per train class afterwards.
    pub target: usize,
    pub trim: TrimPolicy,
    pub augment: AugmentConfig,
    pub seed: u64,
    /// Carved from train first when the source has no valid split (so no augmented copy of a
    /// validation image lands in train).
    pub valid_fraction: f32,
    pub extra_classes: bool,
}

impl BalanceOptions {
    /// The original's recipes: `balanced-1` (10,000 per class) and `balanced-2` (30,000), with
    /// its balancing generator ([`AugmentConfig::original_balance_preset`]) and smallest-first
    /// trimming.
    pub fn recipe(name: &str, seed: u64, valid_fraction: f32) -> Option<BalanceOptions> {
        let target = match name.to_ascii_lowercase().as_str() {
            "balanced-1" | "balanced" | "balanced1" => 10_000,
            "balanced-2" | "balanced2" => 30_000,
            _ => return None,
        };
        Some(BalanceOptions {
            target,
            trim: TrimPolicy::Smallest,
            augment: AugmentConfig::original_balance_preset(),
            seed,
            valid_fraction,
            extra_classes: false,
        })
    }
}

/// Builds the balance manifest of `source` (a dataset folder or a clean/split manifest).
pub fn balance(
    source: &Path,
    opts: &BalanceOptions,
    show_progress: bool,
) -> Result<Manifest, DataError> {
    let (splits, root) = open_unbalanced(source, opts)?;
    let mut m = Manifest::new(ManifestKind::Balance, &root, splits.classes.clone());
    m.problems = splits.problems.clone();
    let items = hash_files(&splits, &root, &mut m, show_progress);

    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut summary = BTreeMap::new();
    for (class_idx, class) in splits.classes.iter().enumerate() {
        let mut members: Vec<&Item> = items
            .iter()
            .filter(|i| i.split == Split::Train && i.class == class_idx)
            .collect();
        members.sort_by(|a, b| a.key.cmp(&b.key));
        let n = members.len();
        let (trimmed, added) = if n > opts.target {
            (trim_class(&mut m, class, &members, opts, &mut rng), 0)
        } else {
            (
                0,
                fill_class(&mut m, class, class_idx, &members, opts, &mut rng),
            )
        };
        if n > 0 || class_idx < 7 {
            summary.insert(class.clone(), serde_json::json!({"before": n, "trimmed": trimmed, "augmented": added, "after": n - trimmed + added}));
        }
    }
    // Valid and test are left as they are.
    for i in items.iter().filter(|i| i.split != Split::Train) {
        m.entries.push(i.entry(&splits.classes[i.class], None));
    }
    record_settings(&mut m, opts, &splits, summary);
    Ok(m)
}

/// Opens `source` for balancing: checks the options, splits the data (carving valid from train
/// when there is none) and refuses a set that is balanced already. Returns the splits and the
/// manifest root.
fn open_unbalanced(
    source: &Path,
    opts: &BalanceOptions,
) -> Result<(LabelledSplits, PathBuf), DataError> {
    if opts.target == 0 {
        return Err(DataError::Invalid(
            "balance target must be at least 1".into(),
        ));
    }
    opts.augment.validate().map_err(DataError::Invalid)?;
    let splits = open_for_training_with(
        source,
        opts.valid_fraction,
        opts.seed,
        &OpenOptions {
            extra_classes: opts.extra_classes,
        },
    )?;
    if splits.train.iter().any(|s| s.augment.is_some()) {
        return Err(DataError::Invalid(format!(
            "{} is already a balanced set (it holds augmented entries); balance a dataset folder or a clean manifest",
            source.display()
        )));
    }
    let root = if source.is_file() {
        Manifest::read(source)?.root
    } else {
        source.to_path_buf()
    };
    Ok((splits, root))
}

/// A file of the source, hashed.
struct Item {
    split: Split,
    class: usize,
    key: String,
    sha: String,
    bytes: u64,
}

impl Item {
    /// The file's manifest entry in class `class`, an augmented copy when `augment` is given.
    fn entry(&self, class: &str, augment: Option<AugmentParams>) -> ManifestEntry {
        ManifestEntry {
            split: self.split,
            class: class.to_string(),
            path: self.key.clone(),
            sha256: Some(self.sha.clone()),
            bytes: Some(self.bytes),
            augment,
        }
    }
}

/// Hashes every file once (recorded, and checked again when the loader reads it); a file that
/// cannot be read goes to the manifest's problems.
fn hash_files(
    splits: &LabelledSplits,
    root: &Path,
    m: &mut Manifest,
    show_progress: bool,
) -> Vec<Item> {
    let canon = m.root.clone();
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
                        format!("cannot read file ({e}); left out"),
                    )
                });
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    let mut items = Vec::new();
    for ((split, s), h) in all.iter().zip(hashed) {
        match h {
            Ok((sha, bytes)) => items.push(Item {
                split: *split,
                class: s.class,
                key: relative_key(&s.path, root, &canon),
                sha,
                bytes,
            }),
            Err(p) => m.problems.push(p),
        }
    }
    items
}

/// A class over the target: keeps `opts.target` of its train files (`members`, sorted by key),
/// the others go to the manifest's dropped list (smallest first or at random). Returns how
/// many went.
fn trim_class(
    m: &mut Manifest,
    class: &str,
    members: &[&Item],
    opts: &BalanceOptions,
    rng: &mut ChaCha8Rng,
) -> usize {
    let mut order = members.to_vec();
    match opts.trim {
        // Stable sort on (bytes, path): ties broken by path, so the choice is reproducible.
        TrimPolicy::Smallest => order.sort_by(|a, b| (a.bytes, &a.key).cmp(&(b.bytes, &b.key))),
        TrimPolicy::Random => order.shuffle(rng),
    }
    let cut = members.len() - opts.target;
    let gone: HashSet<&str> = order[..cut].iter().map(|i| i.key.as_str()).collect();
    for i in members {
        if gone.contains(i.key.as_str()) {
            m.dropped.push(DroppedEntry {
                split: Split::Train,
                class: class.to_string(),
                path: i.key.clone(),
                sha256: Some(i.sha.clone()),
                bytes: Some(i.bytes),
                reason: DropReason::Trimmed,
                detail: format!(
                    "class over the target of {} ({:?} first)",
                    opts.target, opts.trim
                ),
            });
        } else {
            m.entries.push(i.entry(class, None));
        }
    }
    cut
}

/// A class at or under the target: keeps every train file (`members`, sorted by key) and adds
/// augmented copies up to the target, their sources taken in a seeded shuffled cycle. Returns
/// how many copies were added.
fn fill_class(
    m: &mut Manifest,
    class: &str,
    class_idx: usize,
    members: &[&Item],
    opts: &BalanceOptions,
    rng: &mut ChaCha8Rng,
) -> usize {
    for i in members {
        m.entries.push(i.entry(class, None));
    }
    let n = members.len();
    if n == 0 {
        if class_idx < 7 {
            tracing::warn!(class = %class, "no train images to fill this class from; it stays empty");
        }
        return 0;
    }
    if n == opts.target {
        return 0;
    }
    let mut order = members.to_vec();
    order.shuffle(rng);
    for j in 0..opts.target - n {
        let params = opts.augment.sample(rng);
        m.entries.push(order[j % n].entry(class, Some(params)));
    }
    opts.target - n
}

/// Records the settings (with whether valid was carved) and the per-split summary.
fn record_settings(
    m: &mut Manifest,
    opts: &BalanceOptions,
    splits: &LabelledSplits,
    summary: BTreeMap<String, serde_json::Value>,
) {
    m.settings = serde_json::to_value(opts).unwrap_or_default();
    m.settings["valid_carved"] = serde_json::json!(splits.valid_carved);
    m.summary = serde_json::json!({
        "train": summary,
        "valid": m.entries.iter().filter(|e| e.split == Split::Valid).count(),
        "test": m.entries.iter().filter(|e| e.split == Split::Test).count(),
    });
}
