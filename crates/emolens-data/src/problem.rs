//! Per-file and per-folder trouble found while reading a dataset. A problem is reported and
//! counted; the run goes on.

use emolens_core::CoreError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// What kind of trouble a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A folder could not be listed (permissions, I/O error).
    UnreadableFolder,
    /// A file could not be read.
    UnreadableFile,
    /// A zero-byte file.
    EmptyFile,
    /// The bytes match no supported image format.
    NotAnImage,
    /// A recognised format that failed to decode (truncated, corrupt).
    Undecodable,
    /// Over the decode limits.
    TooLarge,
    /// A class folder whose name maps onto none of the seven emotions (skipped unless asked for).
    UnknownClass,
    /// A class folder with no files.
    EmptyClass,
    /// A folder at the dataset root that is not a split name.
    UnknownSplit,
    /// Something other than a file inside a class folder (e.g. a nested folder).
    NotAFile,
    /// A file listed in a manifest is missing.
    Missing,
    /// A file's content differs from the hash its manifest recorded.
    Changed,
}

impl ProblemKind {
    /// True for kinds that mean "this file is not a usable image".
    pub fn is_bad_image(self) -> bool {
        matches!(
            self,
            ProblemKind::UnreadableFile
                | ProblemKind::EmptyFile
                | ProblemKind::NotAnImage
                | ProblemKind::Undecodable
                | ProblemKind::TooLarge
                | ProblemKind::Missing
                | ProblemKind::Changed
        )
    }
}

/// One problem: the file or folder, its kind, and a message that names the path, the reason and
/// (where useful) what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub path: PathBuf,
    pub kind: ProblemKind,
    pub message: String,
}

impl Problem {
    /// A problem whose message is `"<path>: <reason>"`.
    pub fn new(path: &Path, kind: ProblemKind, reason: impl fmt::Display) -> Self {
        Problem {
            path: path.to_path_buf(),
            kind,
            message: format!("{}: {reason}", path.display()),
        }
    }

    /// Maps a decode error from the core preprocessing path (whose message already names the
    /// file) onto a problem.
    pub fn from_core(path: &Path, err: CoreError) -> Self {
        let kind = match &err {
            CoreError::EmptyImage { .. } => ProblemKind::EmptyFile,
            CoreError::UnknownFormat { .. } => ProblemKind::NotAnImage,
            CoreError::TooLarge { .. } => ProblemKind::TooLarge,
            CoreError::Io { .. } => ProblemKind::UnreadableFile,
            _ => ProblemKind::Undecodable,
        };
        Problem {
            path: path.to_path_buf(),
            kind,
            message: err.to_string(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// True for a JPEG whose end-of-image marker (`FF D9`) is missing from its last 64 bytes: a
/// truncated file. Decoders often fill the missing part silently, so the data layer checks this
/// itself rather than train on half-grey faces.
pub fn jpeg_truncated(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return false;
    }
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    !tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// The problem for a truncated JPEG.
pub fn truncated_jpeg_problem(path: &Path) -> Problem {
    Problem::new(
        path,
        ProblemKind::Undecodable,
        "truncated JPEG (no end-of-image marker); the file is incomplete, copy or download it again",
    )
}
