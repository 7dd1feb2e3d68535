//! int8 calibration from a folder of faces (`emolens model quantize`): pick images evenly over
//! the folder's sorted photos (so every class folder contributes), prepare them through the
//! model's own preprocessing, observe each layer's activation ranges in the compiled plan, and
//! write the ranges into a copy of the model file.

use std::path::{Path, PathBuf};

use burn::module::Module;
use emolens_core::files::{is_photo_name, walk_all};
use emolens_core::Preprocessor;

use crate::{ModelError, ModelFile};

/// What a calibration used.
#[derive(Debug, Clone)]
pub struct CalibrationOutcome {
    /// The model file with its int8 calibration.
    pub bytes: Vec<u8>,
    /// Photos found under the folder.
    pub found: usize,
    /// Photos picked and prepared.
    pub used: usize,
    /// Picked photos that could not be read or decoded (each logged with its path).
    pub skipped: usize,
}

/// `count` paths spread evenly over `files` (sorted by path), so that every class folder
/// contributes; returns them and the step between picks.
pub fn spread_pick(files: &[PathBuf], count: usize) -> (Vec<&PathBuf>, f64) {
    let count = count.min(files.len());
    if count == 0 {
        return (Vec::new(), 1.0);
    }
    let step = (files.len() as f64 / count as f64).max(1.0);
    let picked = (0..count)
        .map(|i| &files[(i as f64 * step) as usize])
        .collect();
    (picked, step)
}

/// Calibrates the model file `bytes` (named `name` in messages) for int8 on `images` photos
/// picked evenly from `folder` (recursively).
pub fn calibrate_folder(
    bytes: &[u8],
    name: &str,
    folder: &Path,
    images: usize,
) -> Result<CalibrationOutcome, ModelError> {
    let io = |detail: String| ModelError::Io {
        path: folder.to_path_buf(),
        detail,
    };
    if images == 0 {
        return Err(io("calibration needs at least 1 image".into()));
    }
    let f = ModelFile::decode(bytes, name)?;
    let files = walk_all(folder, &is_photo_name).map_err(|e| ModelError::Io {
        detail: format!("cannot list the folder: {}", e.source),
        path: e.path,
    })?;
    if files.is_empty() {
        return Err(io(format!(
            "no images ({}) found; give a folder of faces, e.g. a dataset's train split",
            emolens_core::files::PHOTO_EXTENSIONS.join(", ")
        )));
    }
    let (picked, step) = spread_pick(&files, images);
    let pre = Preprocessor::new(f.meta.input.clone());
    let mut x = Vec::with_capacity(picked.len() * f.meta.input.len());
    let (mut used, mut skipped) = (0usize, 0usize);
    for p in &picked {
        let prepared = std::fs::read(p)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|b| {
                pre.prepare_bytes(&b, &p.display().to_string())
                    .map_err(|e| e.to_string())
            });
        match prepared {
            Ok(v) => {
                x.extend(v);
                used += 1;
            }
            Err(e) => {
                tracing::warn!(file = %p.display(), error = %e, "skipped a calibration image");
                skipped += 1;
            }
        }
    }
    if used == 0 {
        return Err(io(format!(
            "none of the {} picked images could be read",
            picked.len()
        )));
    }
    let spec = &f.meta.input;
    let input = [spec.channels(), spec.height as usize, spec.width as usize];
    let net = f.network(&burn::tensor::Device::flex())?;
    let frozen = net
        .valid()
        .to_frozen(input)
        .map_err(|r| ModelError::ModelFile {
            source_name: name.to_string(),
            detail: format!("this network cannot run in 8 bits: {r}"),
        })?;
    let source = format!(
        "{} ({used} of {} images, every {step:.1}th by path{})",
        folder.display(),
        files.len(),
        if skipped > 0 {
            format!(", {skipped} unreadable skipped")
        } else {
            String::new()
        }
    );
    let cal = crate::onednn::calibrate(&frozen, &x, used, &source).map_err(|e| {
        ModelError::ModelFile {
            source_name: name.to_string(),
            detail: format!("calibration failed: {e}"),
        }
    })?;
    let mut meta = f.meta.clone();
    meta.int8 = Some(cal);
    Ok(CalibrationOutcome {
        bytes: f.reencode(&meta)?,
        found: files.len(),
        used,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_spread_over_the_whole_list() {
        let files: Vec<PathBuf> = (0..10).map(|i| PathBuf::from(format!("{i}"))).collect();
        let (picked, step) = spread_pick(&files, 4);
        assert_eq!(step, 2.5);
        let names: Vec<_> = picked.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(names, ["0", "2", "5", "7"]);
        let (all, _) = spread_pick(&files, 50);
        assert_eq!(all.len(), 10, "never more than there are");
        assert!(spread_pick(&[], 3).0.is_empty());
    }
}
