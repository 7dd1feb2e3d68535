//! What a run folder records about its data: `dataset.json` (every source with its path,
//! weight, labels, validation, counts per split and class, exclusions and fingerprints) and
//! `files.json` (the relative paths of every training and validation file, per source).

use emolens_core::fingerprint::sha256_hex;
use emolens_data::{ImageCache, SourceSplits, ValidKind};
use serde_json::Value;

use super::data::RunData;
use super::order::draws_per_epoch;
use crate::config::TrainConfig;

/// Images per class, as a JSON object in class order.
fn per_class(classes: &[String], labels: impl Iterator<Item = u32>) -> Value {
    let mut counts = vec![0usize; classes.len()];
    for l in labels {
        counts[l as usize] += 1;
    }
    Value::Object(
        classes
            .iter()
            .zip(counts)
            .map(|(c, n)| (c.clone(), n.into()))
            .collect(),
    )
}

impl RunData {
    /// The train items (per source) of the decoded training images.
    fn train_keys<'a>(&self, sources: &'a [SourceSplits]) -> Vec<&'a str> {
        let all: Vec<&str> = sources
            .iter()
            .flat_map(|s| s.train.iter().map(|it| it.key.as_str()))
            .collect();
        self.item_of.iter().map(|&k| all[k]).collect()
    }

    /// `dataset.json`: every source with its path, weight, labels, validation, counts per split
    /// and class, exclusions and fingerprints.
    pub(super) fn dataset_json(
        &self,
        cfg: &TrainConfig,
        sources: &[SourceSplits],
        classes: &[String],
    ) -> Value {
        let src_json: Vec<Value> = sources
            .iter()
            .enumerate()
            .map(|(s, src)| self.source_json(s, src, classes))
            .collect();
        let mut j = serde_json::json!({
            "classes": classes,
            "train_images": self.train.len(),
            "valid_images": self.valid.iter().map(ImageCache::len).sum::<usize>(),
            "images_per_epoch": self.images_per_epoch,
            "valid_fraction": cfg.valid_fraction,
            "max_train_per_class": cfg.max_train_per_class,
            "max_valid_per_class": cfg.max_valid_per_class,
            "counts": "train_images, valid_images and the per-class counts are of the images used (after the caps); label_origin and excluded count every file of a source (before the caps)",
            "sampling": "each epoch draws round(weight * train images) from every source: each image weight times (whole part), the rest a seeded random subset, all shuffled",
            "validation": "val_accuracy and val_loss (which pick best.emolens) are over the union of every source's validation set; history.json has val_accuracy_<source> per source when there are several",
            "data_fingerprint": self.fingerprint,
            "train_fingerprint": self.train.fingerprint(),
            "skipped_files": self.skipped,
            "sources": src_json,
        });
        if let Some(o) = j.as_object_mut() {
            if cfg.sources.is_empty() {
                // The keys of single-dataset runs, as they always were.
                o.insert("source".into(), serde_json::json!(cfg.data));
                o.insert(
                    "valid_carved".into(),
                    serde_json::json!(sources[0].valid_kind == ValidKind::Carved),
                );
                o.insert(
                    "carved_valid_files".into(),
                    src_json[0]["carved_valid_files"].clone(),
                );
                o.insert(
                    "valid_fingerprint".into(),
                    serde_json::json!(self.valid[0].fingerprint()),
                );
            } else {
                let all: String = self.valid.iter().map(|c| c.fingerprint() + "\n").collect();
                o.insert(
                    "valid_fingerprint".into(),
                    serde_json::json!(sha256_hex(all.as_bytes())),
                );
            }
        }
        j
    }

    /// Source `s`'s entry of `dataset.json`.
    fn source_json(&self, s: usize, src: &SourceSplits, classes: &[String]) -> Value {
        let idx = &self.by_source[s];
        let v = &self.valid[s];
        let carved: Vec<&str> = if src.valid_kind == ValidKind::Carved {
            let mut k: Vec<&str> = src.valid.iter().map(|it| it.key.as_str()).collect();
            k.sort();
            k
        } else {
            Vec::new()
        };
        serde_json::json!({
            "name": src.spec.name,
            "path": src.spec.path,
            "weight": src.spec.weight,
            "labels": src.spec.labels,
            "votes_sha256": src.votes_sha256,
            "validation": src.valid_kind,
            "train_images": idx.len(),
            "valid_images": v.len(),
            "images_per_epoch": draws_per_epoch(idx.len(), src.spec.weight),
            "train_per_class": per_class(classes, idx.iter().map(|&i| self.train.labels[i])),
            "train_target_mass": self.target_mass(idx, classes),
            "valid_per_class": per_class(classes, v.labels.iter().copied()),
            "label_origin": src.label_origin,
            "excluded": src.excluded,
            "carved_valid_files": carved,
            "train_fingerprint": self.train.fingerprint_of(idx.iter().copied()),
            "valid_fingerprint": v.fingerprint(),
        })
    }

    /// The target mass of the training images `idx` per class, rounded to 3 decimals.
    fn target_mass(&self, idx: &[usize], classes: &[String]) -> serde_json::Map<String, Value> {
        let mut mass = vec![0f64; classes.len()];
        for &i in idx {
            for (c, &t) in self.targets.row(i).iter().enumerate() {
                mass[c] += t as f64;
            }
        }
        classes
            .iter()
            .zip(mass)
            .map(|(c, m)| (c.clone(), serde_json::json!((m * 1000.0).round() / 1000.0)))
            .collect()
    }

    /// `files.json`: per source, the relative paths of its training and validation files.
    pub(super) fn files_json(&self, sources: &[SourceSplits]) -> Value {
        let keys = self.train_keys(sources);
        let mut out = serde_json::Map::new();
        for (s, src) in sources.iter().enumerate() {
            let mut train: Vec<&str> = self.by_source[s].iter().map(|&i| keys[i]).collect();
            train.sort();
            let mut valid: Vec<&str> = self.valid[s]
                .sample_index
                .iter()
                .map(|&k| src.valid[k].key.as_str())
                .collect();
            valid.sort();
            out.insert(
                src.spec.name.clone(),
                serde_json::json!({"root": src.spec.path, "train": train, "valid": valid}),
            );
        }
        Value::Object(out)
    }
}
