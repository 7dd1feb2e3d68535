//! Manifests: JSON records of a dataset selection (what `data clean`, `data balance` and
//! `data split` write). A manifest lists every kept file (relative to the dataset root, with its
//! split, class, SHA-256 and, for balanced sets, the augmentation that regenerates its pixels)
//! and every dropped file with the reason. Originals are never touched.

use crate::augment::AugmentParams;
use crate::error::DataError;
use crate::problem::Problem;
use crate::scan::Split;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `format` field every emolens manifest carries.
pub const MANIFEST_FORMAT: &str = "emolens-data-manifest";
/// The manifest format version this crate writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// Which command wrote a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManifestKind {
    Clean,
    Balance,
    Split,
}

/// One kept file (or, with `augment`, one augmented copy of a file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub split: Split,
    pub class: String,
    /// Path relative to the manifest's root, `/`-separated.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// For an augmented copy: the params that regenerate its pixels from the source file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<AugmentParams>,
}

/// Why a file was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Not a usable image (unreadable, empty, not an image, corrupt).
    Undecodable,
    /// Below the byte-size threshold.
    TooSmall,
    /// Every pixel has the same value.
    Blank,
    /// In a duplicate group whose copies carry different labels: all copies dropped.
    ConflictingLabels,
    /// Byte-identical to a file in a held-out split (a leak across splits).
    Leak,
    /// A redundant copy within its split (one copy of each group is kept).
    Duplicate,
    /// Trimmed to bring a class down to the balance target.
    Trimmed,
}

impl DropReason {
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Undecodable => "undecodable",
            DropReason::TooSmall => "too_small",
            DropReason::Blank => "blank",
            DropReason::ConflictingLabels => "conflicting_labels",
            DropReason::Leak => "leak",
            DropReason::Duplicate => "duplicate",
            DropReason::Trimmed => "trimmed",
        }
    }
}

/// One dropped file and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedEntry {
    pub split: Split,
    pub class: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    pub reason: DropReason,
    /// Human detail, e.g. which kept file it duplicates.
    pub detail: String,
}

/// A dataset manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    pub version: u32,
    pub kind: ManifestKind,
    /// The dataset root the entry paths are relative to (absolute when written by emolens; a
    /// relative root is taken relative to the manifest file's folder).
    pub root: PathBuf,
    /// Class names; entries name one of these.
    pub classes: Vec<String>,
    /// The settings the manifest was made with (thresholds, policies, seed...).
    #[serde(default)]
    pub settings: serde_json::Value,
    pub entries: Vec<ManifestEntry>,
    #[serde(default)]
    pub dropped: Vec<DroppedEntry>,
    /// Files and folders that could not be used.
    #[serde(default)]
    pub problems: Vec<Problem>,
    /// Counts, for people reading the file.
    #[serde(default)]
    pub summary: serde_json::Value,
}

impl Manifest {
    /// An empty manifest of `kind` over `root`.
    pub fn new(kind: ManifestKind, root: &Path, classes: Vec<String>) -> Self {
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        Manifest {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            kind,
            root,
            classes,
            settings: serde_json::Value::Null,
            entries: Vec::new(),
            dropped: Vec::new(),
            problems: Vec::new(),
            summary: serde_json::Value::Null,
        }
    }

    /// Reads and checks a manifest; a relative root is resolved against the manifest's folder.
    pub fn read(path: &Path) -> Result<Manifest, DataError> {
        let err = |detail: String| DataError::Manifest {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| DataError::Io {
            path: path.to_path_buf(),
            detail: format!("cannot read manifest ({e})"),
        })?;
        let mut m: Manifest = serde_json::from_str(&text).map_err(|e| {
            err(format!(
                "{e}; expected the JSON that `emolens data clean/balance/split` writes"
            ))
        })?;
        if m.format != MANIFEST_FORMAT {
            return Err(err(format!(
                "format is '{}', expected '{MANIFEST_FORMAT}'",
                m.format
            )));
        }
        if m.version != MANIFEST_VERSION {
            return Err(err(format!(
                "version {} is not supported (this emolens reads version {MANIFEST_VERSION})",
                m.version
            )));
        }
        for e in &m.entries {
            if !m.classes.contains(&e.class) {
                return Err(err(format!(
                    "entry {} has class '{}', which is not in the manifest's classes {:?}",
                    e.path, e.class, m.classes
                )));
            }
        }
        if m.root.is_relative() {
            let base = path.parent().unwrap_or(Path::new("."));
            m.root = base.join(&m.root);
        }
        Ok(m)
    }

    /// Writes the manifest as pretty JSON (to a temporary file first, then renamed, so a crash
    /// never leaves half a manifest).
    pub fn write(&self, path: &Path) -> Result<(), DataError> {
        let io = |e: std::io::Error| DataError::Io {
            path: path.to_path_buf(),
            detail: format!("cannot write manifest ({e})"),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let json = serde_json::to_vec_pretty(self).map_err(|e| DataError::Io {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Full path of an entry's file.
    pub fn resolve(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}
