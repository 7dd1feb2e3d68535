//! The run's data: every source opened and checked, then decoded into memory once, with the
//! target distribution, source and place in the sampling of each training image, and the data
//! fingerprint the model file records.

use std::time::Instant;

use emolens_core::fingerprint::sha256_hex;
use emolens_core::Preprocessor;
use emolens_data::{load_cache, open_source, ImageCache, Sample, SourceItem, SourceSplits};
use tracing::{info, warn};

use super::batch::TargetTable;
use super::order::draws_per_epoch;
use crate::config::TrainConfig;
use crate::error::TrainError;

/// Opens every source of the run (capped per class as the config says) and checks they share
/// one class list.
pub(super) fn open_sources(cfg: &TrainConfig) -> Result<Vec<SourceSplits>, TrainError> {
    let mut out: Vec<SourceSplits> = Vec::new();
    for spec in cfg.source_list() {
        let mut s = open_source(&spec, cfg.valid_fraction, cfg.seed).map_err(|e| {
            if cfg.sources.is_empty() {
                TrainError::Data(e)
            } else {
                TrainError::Config(format!("--source {}: {e}", spec.name))
            }
        })?;
        s.limit_per_class(cfg.max_train_per_class, cfg.max_valid_per_class);
        if s.train.is_empty() {
            return Err(TrainError::Config(format!(
                "{}: no training images found",
                spec.path.display()
            )));
        }
        if let Some(first) = out.first() {
            if first.classes != s.classes {
                return Err(TrainError::Config(format!(
                    "source {} has the classes {:?} but source {} has {:?}; every source of a run needs the same classes",
                    spec.name, s.classes, first.spec.name, first.classes
                )));
            }
        }
        for p in &s.problems {
            warn!(source = %spec.name, problem = %p, "dataset problem");
        }
        out.push(s);
    }
    Ok(out)
}

/// The decoded data of a run.
pub(super) struct RunData {
    /// Every source's training images.
    pub(super) train: ImageCache,
    /// Target distribution of each training image.
    pub(super) targets: TargetTable,
    /// Source of each training image.
    pub(super) source_of: Vec<usize>,
    /// Each source's training images (indices into `train`).
    pub(super) by_source: Vec<Vec<usize>>,
    /// Each source's validation images.
    pub(super) valid: Vec<ImageCache>,
    /// Training images drawn per epoch, all sources together.
    pub(super) images_per_epoch: usize,
    /// Each training image's index into the concatenation of the sources' train items.
    pub(super) item_of: Vec<usize>,
    /// What the model file records as its data fingerprint.
    pub(super) fingerprint: String,
    pub(super) skipped: Vec<String>,
}

/// Decodes every source's training images into one cache (through the run's one
/// [`Preprocessor`], so every source arrives in the run's colour mode and size) and each
/// source's validation images into its own.
pub(super) fn load_data(
    cfg: &TrainConfig,
    sources: &[SourceSplits],
    pre: &Preprocessor,
    progress: bool,
) -> Result<RunData, TrainError> {
    let classes = sources[0].classes.len();
    let items: Vec<(usize, &SourceItem)> = sources
        .iter()
        .enumerate()
        .flat_map(|(s, src)| src.train.iter().map(move |it| (s, it)))
        .collect();
    let t0 = Instant::now();
    let (train, valid, skipped) = decode(&items, sources, pre, progress);
    let (targets, source_of, by_source) = training_targets(&train, &items, sources, classes)?;
    let images_per_epoch = by_source
        .iter()
        .zip(sources)
        .map(|(idx, s)| draws_per_epoch(idx.len(), s.spec.weight))
        .sum();
    info!(
        train = train.len(),
        valid = valid.iter().map(ImageCache::len).sum::<usize>(),
        images_per_epoch,
        seconds = format!("{:.1}", t0.elapsed().as_secs_f64()),
        "decoded images into memory"
    );
    let fingerprint = data_fingerprint(cfg, sources, &train, &by_source);
    let item_of = train.sample_index.clone();
    Ok(RunData {
        train,
        targets,
        source_of,
        by_source,
        valid,
        images_per_epoch,
        item_of,
        fingerprint,
        skipped,
    })
}

/// Decodes the training `items` into one cache and each source's validation images into its
/// own; the files that could not be decoded are logged and returned.
fn decode(
    items: &[(usize, &SourceItem)],
    sources: &[SourceSplits],
    pre: &Preprocessor,
    progress: bool,
) -> (ImageCache, Vec<ImageCache>, Vec<String>) {
    let samples: Vec<Sample> = items.iter().map(|(_, it)| it.sample.clone()).collect();
    let (train, p1) = load_cache(&samples, pre, progress);
    let mut skipped: Vec<String> = p1.iter().map(|p| p.to_string()).collect();
    let mut valid = Vec::new();
    for src in sources {
        let vs: Vec<Sample> = src.valid.iter().map(|it| it.sample.clone()).collect();
        let (c, p) = load_cache(&vs, pre, progress);
        skipped.extend(p.iter().map(|p| p.to_string()));
        valid.push(c);
    }
    for p in &skipped {
        warn!(problem = %p, "skipped file");
    }
    (train, valid, skipped)
}

/// Each decoded training image's target row (its source's soft target, or the one-hot of its
/// class) and source, and each source's images; refuses a target of the wrong length and a
/// source none of whose training images decoded.
#[allow(clippy::type_complexity)]
fn training_targets(
    train: &ImageCache,
    items: &[(usize, &SourceItem)],
    sources: &[SourceSplits],
    classes: usize,
) -> Result<(TargetTable, Vec<usize>, Vec<Vec<usize>>), TrainError> {
    let mut rows = Vec::with_capacity(train.len() * classes);
    let mut source_of = Vec::with_capacity(train.len());
    let mut by_source = vec![Vec::new(); sources.len()];
    for (j, &k) in train.sample_index.iter().enumerate() {
        let (s, it) = items[k];
        match &it.target {
            Some(t) if t.len() == classes => rows.extend_from_slice(t),
            Some(t) => {
                return Err(TrainError::Config(format!(
                    "source {}: {} has a target of {} values for {classes} classes",
                    sources[s].spec.name,
                    it.key,
                    t.len()
                )))
            }
            None => rows.extend((0..classes).map(|c| (c == it.sample.class) as u8 as f32)),
        }
        source_of.push(s);
        by_source[s].push(j);
    }
    for (s, idx) in by_source.iter().enumerate() {
        if idx.is_empty() {
            return Err(TrainError::Config(format!(
                "source {}: none of its training images could be decoded",
                sources[s].spec.name
            )));
        }
    }
    Ok((TargetTable { classes, rows }, source_of, by_source))
}

/// The data fingerprint of the run: the training cache's for a `--data` run; for `--source`
/// runs, the hash of one line per source (name, its images' fingerprint, votes, weight).
fn data_fingerprint(
    cfg: &TrainConfig,
    sources: &[SourceSplits],
    train: &ImageCache,
    by_source: &[Vec<usize>],
) -> String {
    if cfg.sources.is_empty() {
        return train.fingerprint();
    }
    let lines: String = sources
        .iter()
        .zip(by_source)
        .map(|(s, idx)| {
            format!(
                "{}\t{}\t{}\t{}\n",
                s.spec.name,
                train.fingerprint_of(idx.iter().copied()),
                s.votes_sha256.as_deref().unwrap_or("-"),
                s.spec.weight
            )
        })
        .collect();
    sha256_hex(lines.as_bytes())
}
