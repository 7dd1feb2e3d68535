//! Writing a balance manifest out as an image folder: unique output names planned first
//! (deterministically), then originals copied byte for byte and augmented copies regenerated
//! and saved as PNG, in parallel.

use crate::augment::{apply_augment, AugmentParams};
use crate::error::DataError;
use crate::manifest::{Manifest, ManifestEntry};
use crate::problem::{Problem, ProblemKind};
use crate::progress;
use crate::scan::Split;
use emolens_core::{
    decode_image, ColourMode, DecodeLimits, InputSpec, Normalisation, Preprocessor,
};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

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
    let plan = plan_names(m, out);
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

/// The output path of every entry of `m` under `out`: `<split>/<class>/<file name>` for an
/// original, `<stem>__augNNNNNN.png` for an augmented copy (numbered per split and class), with
/// `<stem>__<k>.<ext>` for a name already taken.
fn plan_names<'m>(m: &'m Manifest, out: &Path) -> Vec<(&'m ManifestEntry, PathBuf)> {
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
    plan
}

/// Writes entry `e` of `m` to `target`: the original's bytes, or its augmented copy as PNG.
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
    let result = augmented_image(&img, &params);
    let out = result.ok_or_else(|| write_err("pixel buffer size mismatch".into()))?;
    out.save_with_format(target, image::ImageFormat::Png)
        .map_err(|err| write_err(err.to_string()))
}

/// `img` augmented with `params`, at its own size and colour mode; `None` if the pixel buffer
/// does not fit the image.
fn augmented_image(
    img: &image::DynamicImage,
    params: &AugmentParams,
) -> Option<image::DynamicImage> {
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
    let px = pre.to_pixels(img, None);
    let mut aug = vec![0u8; px.len()];
    let c = colour.channels();
    apply_augment(params, &px, c, h as usize, w as usize, &mut aug);
    let plane = (w * h) as usize;
    match colour {
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
    }
}
