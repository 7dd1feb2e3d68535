//! Finding the files of an image-folder dataset: `<root>/<split>/<class>/<files>`.
//!
//! Splits and classes are found by folder name. Class folders map onto the seven emotions via
//! [`Emotion::from_label`] (so `anger/`, `happiness/` and `angry/`, `happy/` all work); other
//! classes (e.g. `contempt/`) are reported and skipped unless [`ScanOptions::extra_classes`].
//! Nothing is decoded here; files are decoded by content later, whatever their extension.

use crate::error::DataError;
use crate::problem::{Problem, ProblemKind};
use emolens_core::Emotion;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// A dataset split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Valid,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];

    /// Maps a split folder name (`train`/`training`, `valid`/`validation`/`val`/`dev`,
    /// `test`/`testing`; case ignored) onto a split.
    pub fn from_folder(name: &str) -> Option<Split> {
        match name.trim().to_ascii_lowercase().as_str() {
            "train" | "training" => Some(Split::Train),
            "valid" | "validation" | "val" | "dev" => Some(Split::Valid),
            "test" | "testing" => Some(Split::Test),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to scan.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    /// Keep class folders that map onto none of the seven emotions, as extra classes appended
    /// after the seven (sorted by name). Off by default: they are reported and skipped.
    pub extra_classes: bool,
}

/// One image file of the dataset (not yet decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetFile {
    /// Full path (the root joined with `rel`).
    pub path: PathBuf,
    /// Path relative to the dataset root, `/`-separated (stable across machines; used as the key
    /// for reproducible splits and in manifests).
    pub rel: String,
    pub split: Split,
    /// The class folder's own name, as found on disk.
    pub class_folder: String,
    /// Index into [`DatasetScan::classes`].
    pub class: usize,
}

/// The result of scanning a dataset folder.
#[derive(Debug, Clone)]
pub struct DatasetScan {
    pub root: PathBuf,
    /// The seven emotions in canonical order, then any extra classes.
    pub classes: Vec<String>,
    /// Every candidate image file, ordered by split, class folder name, file name.
    pub files: Vec<DatasetFile>,
    /// Folders and files that could not be used, each with its reason.
    pub problems: Vec<Problem>,
    /// Class folders skipped as unknown: `split/folder` to the number of files in it.
    pub skipped_classes: BTreeMap<String, usize>,
    /// Hidden files (names starting with `.`, e.g. `.DS_Store`) that were ignored.
    pub hidden_ignored: usize,
    /// Splits present (with at least one class folder).
    pub splits: Vec<Split>,
}

impl DatasetScan {
    /// Files of one split.
    pub fn split_files(&self, split: Split) -> impl Iterator<Item = &DatasetFile> {
        self.files.iter().filter(move |f| f.split == split)
    }
}

/// `(name, path, is_dir)` of `dir`'s entries, sorted by name, links followed (the workspace's
/// one folder listing, `emolens_core::files`).
fn sorted_entries(dir: &Path) -> std::io::Result<Vec<(String, PathBuf, bool)>> {
    Ok(emolens_core::files::list_sorted(dir)
        .map_err(|e| e.source)?
        .into_iter()
        .map(|e| (e.name, e.path, e.is_dir))
        .collect())
}

/// Scans `root` laid out `<root>/<split>/<class>/<files>`.
///
/// Fails only when the root itself cannot be read or holds no split folder; everything else
/// (unreadable class folders, unknown or empty classes, stray folders) becomes a [`Problem`].
pub fn scan_dataset(root: &Path, opts: &ScanOptions) -> Result<DatasetScan, DataError> {
    let top = sorted_entries(root).map_err(|e| DataError::DatasetUnreadable {
        path: root.to_path_buf(),
        detail: e.to_string(),
    })?;
    let mut problems = Vec::new();
    let mut split_dirs: Vec<(Split, String, PathBuf)> = Vec::new();
    for (name, path, is_dir) in top {
        if !is_dir || name.starts_with('.') {
            continue; // notes such as SOURCE.md or README beside the splits
        }
        match Split::from_folder(&name) {
            Some(s) => split_dirs.push((s, name, path)),
            None => problems.push(Problem::new(
                &path,
                ProblemKind::UnknownSplit,
                "not a split folder (expected train, valid/validation/val or test); skipped",
            )),
        }
    }
    if split_dirs.is_empty() {
        return Err(DataError::NoSplits {
            path: root.to_path_buf(),
        });
    }
    split_dirs.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));

    // First pass: class folders per split, so extra class names are known before indexing.
    struct ClassDir {
        split: Split,
        split_name: String,
        name: String,
        path: PathBuf,
    }
    let mut class_dirs = Vec::new();
    let mut splits = BTreeSet::new();
    for (split, split_name, path) in &split_dirs {
        let entries = match sorted_entries(path) {
            Ok(e) => e,
            Err(e) => {
                problems.push(Problem::new(
                    path,
                    ProblemKind::UnreadableFolder,
                    format!("cannot list split folder ({e}); check its permissions"),
                ));
                continue;
            }
        };
        for (name, cpath, is_dir) in entries {
            if name.starts_with('.') {
                continue;
            }
            if !is_dir {
                problems.push(Problem::new(
                    &cpath,
                    ProblemKind::NotAFile,
                    "a file directly inside a split folder; images belong in <split>/<class>/; skipped",
                ));
                continue;
            }
            splits.insert(*split);
            class_dirs.push(ClassDir {
                split: *split,
                split_name: split_name.clone(),
                name,
                path: cpath,
            });
        }
    }

    let mut extra: BTreeSet<String> = BTreeSet::new();
    if opts.extra_classes {
        for cd in &class_dirs {
            if Emotion::from_label(&cd.name).is_none() {
                extra.insert(cd.name.trim().to_ascii_lowercase());
            }
        }
    }
    let mut classes: Vec<String> = Emotion::ALL.iter().map(|e| e.name().to_string()).collect();
    classes.extend(extra.iter().cloned());
    let index_of = |folder: &str| -> Option<usize> {
        match Emotion::from_label(folder) {
            Some(e) => Emotion::ALL.iter().position(|x| *x == e),
            None => {
                let l = folder.trim().to_ascii_lowercase();
                classes
                    .iter()
                    .position(|c| *c == l)
                    .filter(|_| opts.extra_classes)
            }
        }
    };

    let mut files = Vec::new();
    let mut skipped_classes = BTreeMap::new();
    let mut hidden_ignored = 0;
    for cd in &class_dirs {
        let entries = match sorted_entries(&cd.path) {
            Ok(e) => e,
            Err(e) => {
                problems.push(Problem::new(
                    &cd.path,
                    ProblemKind::UnreadableFolder,
                    format!("cannot list class folder ({e}); its images are skipped; check its permissions"),
                ));
                continue;
            }
        };
        let mut n_files = 0usize;
        let class = index_of(&cd.name);
        let mut batch = Vec::new();
        for (name, path, is_dir) in entries {
            if name.starts_with('.') {
                hidden_ignored += 1;
                continue;
            }
            if is_dir {
                problems.push(Problem::new(
                    &path,
                    ProblemKind::NotAFile,
                    "a folder inside a class folder; nested folders are not read; skipped",
                ));
                continue;
            }
            n_files += 1;
            if let Some(class) = class {
                batch.push(DatasetFile {
                    rel: format!("{}/{}/{}", cd.split_name, cd.name, name),
                    path,
                    split: cd.split,
                    class_folder: cd.name.clone(),
                    class,
                });
            }
        }
        if class.is_none() {
            skipped_classes.insert(format!("{}/{}", cd.split_name, cd.name), n_files);
            problems.push(Problem::new(
                &cd.path,
                ProblemKind::UnknownClass,
                format!(
                    "class '{}' is not one of the seven emotions (angry, disgust, fear, happy, neutral, sad, surprise, or a synonym); its {n_files} files are skipped; pass --extra-classes to keep it",
                    cd.name
                ),
            ));
        } else if n_files == 0 {
            problems.push(Problem::new(
                &cd.path,
                ProblemKind::EmptyClass,
                "empty class folder (no files)",
            ));
        }
        files.extend(batch);
    }

    Ok(DatasetScan {
        root: root.to_path_buf(),
        classes,
        files,
        problems,
        skipped_classes,
        hidden_ignored,
        splits: splits.into_iter().collect(),
    })
}
