//! `emolens data balance`: every train class brought to the same size, as the original's
//! balanced-1 (10,000 per class) and balanced-2 (30,000 per class) datasets were.
//!
//! Classes under the target are filled with augmented copies of their own images (sources taken
//! in a seeded shuffled cycle, augmentation params drawn from a seeded `ChaCha8Rng`); classes
//! over it are trimmed, smallest files first as the original did (it moved the smallest files
//! out), or at random. Valid and test are left as they are. The result is a manifest whose
//! augmented entries carry their params, so the loader regenerates the exact pixels, or a folder
//! of written images (originals copied byte for byte, augmented copies as PNG).

use crate::augment::{apply_augment, AugmentConfig};
use crate::error::DataError;
use crate::manifest::{DropReason, DroppedEntry, Manifest, ManifestEntry, ManifestKind};
use crate::problem::{Problem, ProblemKind};
use crate::progress;
use crate::scan::Split;
use crate::training::{open_for_training_with, relative_key, OpenOptions, Sample};
use emolens_core::fingerprint::sha256_hex;
use emolens_core::{
    decode_image, ColourMode, DecodeLimits, InputSpec, Normalisation, Preprocessor,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

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
    let mut m = Manifest::new(ManifestKind::Balance, &root, splits.classes.clone());
    let canon = m.root.clone();

    // Hash every file once (recorded, and checked again when the loader reads it).
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
    m.problems = splits.problems.clone();

    struct Item {
        split: Split,
        class: usize,
        key: String,
        sha: String,
        bytes: u64,
    }
    let mut items = Vec::new();
    for ((split, s), h) in all.iter().zip(hashed) {
        match h {
            Ok((sha, bytes)) => items.push(Item {
                split: *split,
                class: s.class,
                key: relative_key(&s.path, &root, &canon),
                sha,
                bytes,
            }),
            Err(p) => m.problems.push(p),
        }
    }

    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut summary = BTreeMap::new();
    for (class_idx, class) in splits.classes.iter().enumerate() {
        let mut members: Vec<&Item> = items
            .iter()
            .filter(|i| i.split == Split::Train && i.class == class_idx)
            .collect();
        members.sort_by(|a, b| a.key.cmp(&b.key));
        let n = members.len();
        let entry = |i: &Item, aug| ManifestEntry {
            split: Split::Train,
            class: class.clone(),
            path: i.key.clone(),
            sha256: Some(i.sha.clone()),
            bytes: Some(i.bytes),
            augment: aug,
        };
        let (mut trimmed, mut added) = (0usize, 0usize);
        if n > opts.target {
            let mut order = members.clone();
            match opts.trim {
                // Stable sort on (bytes, path): ties broken by path, so the choice is reproducible.
                TrimPolicy::Smallest => {
                    order.sort_by(|a, b| (a.bytes, &a.key).cmp(&(b.bytes, &b.key)))
                }
                TrimPolicy::Random => order.shuffle(&mut rng),
            }
            let cut = n - opts.target;
            let gone: HashSet<&str> = order[..cut].iter().map(|i| i.key.as_str()).collect();
            for i in &members {
                if gone.contains(i.key.as_str()) {
                    m.dropped.push(DroppedEntry {
                        split: Split::Train,
                        class: class.clone(),
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
                    m.entries.push(entry(i, None));
                }
            }
            trimmed = cut;
        } else {
            for i in &members {
                m.entries.push(entry(i, None));
            }
            if n == 0 {
                if class_idx < 7 {
                    tracing::warn!(class = %class, "no train images to fill this class from; it stays empty");
                }
            } else if n < opts.target {
                let mut order = members.clone();
                order.shuffle(&mut rng);
                for j in 0..opts.target - n {
                    let params = opts.augment.sample(&mut rng);
                    m.entries.push(entry(order[j % n], Some(params)));
                }
                added = opts.target - n;
            }
        }
        if n > 0 || class_idx < 7 {
            summary.insert(class.clone(), serde_json::json!({"before": n, "trimmed": trimmed, "augmented": added, "after": n - trimmed + added}));
        }
    }
    for i in items.iter().filter(|i| i.split != Split::Train) {
        m.entries.push(ManifestEntry {
            split: i.split,
            class: splits.classes[i.class].clone(),
            path: i.key.clone(),
            sha256: Some(i.sha.clone()),
            bytes: Some(i.bytes),
            augment: None,
        });
    }
    m.settings = serde_json::to_value(opts).unwrap_or_default();
    m.settings["valid_carved"] = serde_json::json!(splits.valid_carved);
    m.summary = serde_json::json!({
        "train": summary,
        "valid": m.entries.iter().filter(|e| e.split == Split::Valid).count(),
        "test": m.entries.iter().filter(|e| e.split == Split::Test).count(),
    });
    Ok(m)
}

/// Writes a balance manifest out as an image folder `<out>/<split>/<class>/...` (originals copied
/// byte for byte; augmented copies as PNG at the source's own size and colour mode) plus
/// `<out>/manifest.json` (the balance manifest, for the record). `out` must not exist or be
/// empty. Returns the files that could not be written or read.
pub fn write_folder(
    m: &Manifest,
    out: &Path,
    show_progress: bool,
) -> Result<Vec<Problem>, DataError> {
    let io = |p: &Path, e: std::io::Error| DataError::Io {
        path: p.to_path_buf(),
        detail: e.to_string(),
    };
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| io(out, e))?
            .next()
            .is_some()
    {
        return Err(DataError::Invalid(format!(
            "{}: output folder is not empty; choose a new folder (nothing is ever overwritten)",
            out.display()
        )));
    }
    // Plan unique output names first (sequentially, so they are deterministic).
    let mut used: HashSet<PathBuf> = HashSet::new();
    let mut counters: BTreeMap<(Split, String), usize> = BTreeMap::new();
    let mut plan: Vec<(&ManifestEntry, PathBuf)> = Vec::with_capacity(m.entries.len());
    for e in &m.entries {
        let dir = out.join(e.split.name()).join(&e.class);
        let file = Path::new(&e.path);
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let mut target = match e.augment {
            Some(_) => {
                let c = counters.entry((e.split, e.class.clone())).or_default();
                *c += 1;
                dir.join(format!("{stem}__aug{:06}.png", *c))
            }
            None => dir.join(file.file_name().unwrap_or_default()),
        };
        let mut k = 1;
        while used.contains(&target) {
            k += 1;
            target = dir.join(format!(
                "{stem}__{k}.{}",
                file.extension()
                    .map(|x| x.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
        }
        used.insert(target.clone());
        plan.push((e, target));
    }
    let dirs: HashSet<PathBuf> = plan
        .iter()
        .filter_map(|(_, p)| p.parent().map(Path::to_path_buf))
        .collect();
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
    }
    let bar = progress::bar(plan.len(), "writing", show_progress);
    let problems: Vec<Problem> = plan
        .par_iter()
        .filter_map(|(e, target)| {
            let r = write_one(m, e, target);
            bar.inc(1);
            r.err()
        })
        .collect();
    bar.finish_and_clear();
    m.write(&out.join("manifest.json"))?;
    Ok(problems)
}

fn write_one(m: &Manifest, e: &ManifestEntry, target: &Path) -> Result<(), Problem> {
    let src = m.resolve(&e.path);
    let bytes = std::fs::read(&src).map_err(|err| {
        Problem::new(
            &src,
            ProblemKind::UnreadableFile,
            format!("cannot read file ({err})"),
        )
    })?;
    let write_err = |err: String| {
        Problem::new(
            target,
            ProblemKind::UnreadableFile,
            format!("cannot write ({err})"),
        )
    };
    let Some(params) = e.augment else {
        return std::fs::write(target, &bytes).map_err(|err| write_err(err.to_string()));
    };
    let img = decode_image(&bytes, &src.display().to_string(), &DecodeLimits::default())
        .map_err(|err| Problem::from_core(&src, err))?;
    let colour = if img.color().has_color() {
        ColourMode::Rgb
    } else {
        ColourMode::Grayscale
    };
    let (w, h) = (img.width(), img.height());
    // The one preprocessing path, at the source's own size, gives planar pixels to augment.
    let pre = Preprocessor::new(InputSpec {
        height: h,
        width: w,
        colour_mode: colour,
        normalisation: Normalisation::Unit,
    });
    let px = pre.to_pixels(&img, None);
    let mut aug = vec![0u8; px.len()];
    let c = colour.channels();
    apply_augment(&params, &px, c, h as usize, w as usize, &mut aug);
    let plane = (w * h) as usize;
    let result = match colour {
        ColourMode::Grayscale => {
            image::GrayImage::from_raw(w, h, aug).map(image::DynamicImage::ImageLuma8)
        }
        ColourMode::Rgb => {
            let mut inter = vec![0u8; aug.len()];
            for i in 0..plane {
                for ch in 0..3 {
                    inter[i * 3 + ch] = aug[ch * plane + i];
                }
            }
            image::RgbImage::from_raw(w, h, inter).map(image::DynamicImage::ImageRgb8)
        }
    };
    let out = result.ok_or_else(|| write_err("pixel buffer size mismatch".into()))?;
    out.save_with_format(target, image::ImageFormat::Png)
        .map_err(|err| write_err(err.to_string()))
}
