//! The in-memory training cache: every image of a split decoded once, preprocessed to the
//! model's input size and colour mode, and kept as planar u8 in one contiguous buffer, so
//! training never waits on decoding.

use crate::augment::{apply_augment, AugmentParams};
use crate::problem::{Problem, ProblemKind};
use crate::progress;
use crate::training::Sample;
use emolens_core::fingerprint::{dataset_fingerprint, sha256_hex};
use emolens_core::{decode_image, DecodeLimits, Preprocessor};
use rayon::prelude::*;
use std::path::PathBuf;

/// Decoded, preprocessed images of one split.
#[derive(Debug, Clone, Default)]
pub struct ImageCache {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// `len() * channels * height * width` bytes, planar per image, as
    /// [`Preprocessor::to_pixels`] gives them (augmented where the sample says so).
    pub pixels: Vec<u8>,
    /// Class index of each image.
    pub labels: Vec<u32>,
    /// Source file of each image.
    pub paths: Vec<PathBuf>,
    /// SHA-256 of each source file's bytes.
    pub sha256: Vec<String>,
    /// The augmentation baked into each image, if any (balance manifests).
    pub augment: Vec<Option<AugmentParams>>,
    /// Index of each image in the samples it was loaded from (skipped files leave gaps).
    pub sample_index: Vec<usize>,
}

impl ImageCache {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes of one image (`channels * height * width`).
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Planar u8 pixels of image `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Dataset fingerprint: [`dataset_fingerprint`] over `(class index, sha256)` of each image
    /// (for an augmented image the hash is followed by `+` and its params as JSON, so a balanced
    /// set differs from its source). Order-independent; renaming files keeps it.
    pub fn fingerprint(&self) -> String {
        self.fingerprint_of(0..self.len())
    }

    /// [`ImageCache::fingerprint`] over the images `indices` only.
    pub fn fingerprint_of(&self, indices: impl IntoIterator<Item = usize>) -> String {
        let indices: Vec<usize> = indices.into_iter().collect();
        let labels: Vec<String> = indices
            .iter()
            .map(|&i| self.labels[i].to_string())
            .collect();
        let hashes: Vec<String> = indices
            .iter()
            .map(|&i| match &self.augment[i] {
                Some(p) => format!(
                    "{}+{}",
                    self.sha256[i],
                    serde_json::to_string(p).unwrap_or_default()
                ),
                None => self.sha256[i].clone(),
            })
            .collect();
        dataset_fingerprint(
            labels
                .iter()
                .map(String::as_str)
                .zip(hashes.iter().map(String::as_str)),
        )
    }
}

/// Reads, checks, decodes and preprocesses one sample into `slot`; returns its SHA-256.
fn load_one(s: &Sample, pre: &Preprocessor, slot: &mut [u8]) -> Result<String, Problem> {
    let bytes = std::fs::read(&s.path).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            ProblemKind::Missing
        } else {
            ProblemKind::UnreadableFile
        };
        Problem::new(&s.path, kind, format!("cannot read file ({e})"))
    })?;
    let hash = sha256_hex(&bytes);
    if let Some(expected) = &s.sha256 {
        if *expected != hash {
            return Err(Problem::new(
                &s.path,
                ProblemKind::Changed,
                "file content differs from the SHA-256 its manifest recorded; regenerate the manifest",
            ));
        }
    }
    if crate::problem::jpeg_truncated(&bytes) {
        return Err(crate::problem::truncated_jpeg_problem(&s.path));
    }
    let name = s.path.display().to_string();
    let img = decode_image(&bytes, &name, &DecodeLimits::default())
        .map_err(|e| Problem::from_core(&s.path, e))?;
    let px = pre.to_pixels(&img, None);
    match &s.augment {
        Some(p) => {
            let spec = pre.spec();
            apply_augment(
                p,
                &px,
                spec.channels(),
                spec.height as usize,
                spec.width as usize,
                slot,
            )
        }
        None => slot.copy_from_slice(&px),
    }
    Ok(hash)
}

/// Decodes and preprocesses `samples` in parallel (rayon) into one contiguous buffer, with a
/// progress bar (rate and ETA) if `progress`. Bad files are skipped and returned as problems;
/// the load never aborts. The cache keeps the samples' order, minus the skipped ones.
pub fn load_cache(
    samples: &[Sample],
    pre: &Preprocessor,
    progress: bool,
) -> (ImageCache, Vec<Problem>) {
    let spec = pre.spec();
    let (channels, height, width) = (spec.channels(), spec.height as usize, spec.width as usize);
    let len = channels * height * width;
    let mut cache = ImageCache {
        channels,
        height,
        width,
        ..Default::default()
    };
    if samples.is_empty() || len == 0 {
        return (cache, Vec::new());
    }
    let mut pixels = vec![0u8; samples.len() * len];
    let bar = progress::bar(samples.len(), "decoding", progress);
    let started = std::time::Instant::now();
    let results: Vec<Result<String, Problem>> = pixels
        .par_chunks_mut(len)
        .zip(samples.par_iter())
        .map(|(slot, s)| {
            let r = load_one(s, pre, slot);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();

    // Compact: move good images down over the slots of skipped ones.
    let mut problems = Vec::new();
    let mut kept = 0usize;
    for (i, (r, s)) in results.into_iter().zip(samples).enumerate() {
        match r {
            Ok(hash) => {
                if kept != i {
                    pixels.copy_within(i * len..(i + 1) * len, kept * len);
                }
                cache.labels.push(s.class as u32);
                cache.paths.push(s.path.clone());
                cache.sha256.push(hash);
                cache.augment.push(s.augment);
                cache.sample_index.push(i);
                kept += 1;
            }
            Err(p) => {
                tracing::warn!("{p}");
                problems.push(p);
            }
        }
    }
    pixels.truncate(kept * len);
    cache.pixels = pixels;
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        images = kept,
        skipped = problems.len(),
        seconds = format!("{secs:.2}"),
        per_second = format!("{:.0}", samples.len() as f64 / secs.max(1e-9)),
        "decoded into the in-memory cache"
    );
    (cache, problems)
}
