//! Which files are media, and how folders are walked: the one list of extensions and the one
//! sorted folder walk that the CLI (`analyze`, `predict`, `model quantize`), evaluation, the
//! duplicate finder, the dataset scan and the Python package share.
//!
//! Walks are sorted by name at every level (so runs are reproducible), follow symbolic links
//! (a linked class folder is as good as a real one) and skip hidden entries (names starting
//! with `.`: `.DS_Store`, macOS `._photo.jpg` resource forks, `.git`). A folder that cannot be
//! read is one error item naming it; the walk goes on with the rest.

use std::path::{Path, PathBuf};

/// Photo extensions (lower case) taken when walking a folder; named files are sniffed by
/// content instead.
pub const PHOTO_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "gif", "tif", "tiff", "webp"];

/// Video extensions (lower case) taken when walking a folder.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "flv", "wmv", "3gp", "ogv",
];

/// Extensions of sound-only media: routed to the video path so the answer is "audio only",
/// not "not an image"; never picked up by a folder walk.
pub const AUDIO_EXTENSIONS: &[&str] = &["wav", "mp3", "m4a", "aac", "flac", "ogg", "opus", "wma"];

/// What a file name says a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Photo,
    Video,
    Audio,
}

/// The kind of media `path`'s extension names (any case), or `None`.
pub fn media_kind(path: &Path) -> Option<MediaKind> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    let ext = ext.as_str();
    if PHOTO_EXTENSIONS.contains(&ext) {
        Some(MediaKind::Photo)
    } else if VIDEO_EXTENSIONS.contains(&ext) {
        Some(MediaKind::Video)
    } else if AUDIO_EXTENSIONS.contains(&ext) {
        Some(MediaKind::Audio)
    } else {
        None
    }
}

/// True for a photo extension.
pub fn is_photo_name(path: &Path) -> bool {
    media_kind(path) == Some(MediaKind::Photo)
}

/// True for a photo or video extension: what a folder search for media picks up (sound files
/// in a folder are left alone).
pub fn is_media_name(path: &Path) -> bool {
    matches!(media_kind(path), Some(MediaKind::Photo | MediaKind::Video))
}

/// A folder that could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot list the folder", path.display())]
pub struct WalkError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// One entry of a folder listing.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// File name (lossy UTF-8).
    pub name: String,
    pub path: PathBuf,
    /// A folder, or a link to one.
    pub is_dir: bool,
}

impl DirEntry {
    /// Names starting with `.`.
    pub fn is_hidden(&self) -> bool {
        self.name.starts_with('.')
    }
}

/// The entries of `dir`, hidden ones included, sorted by name. Entries that vanish while being
/// listed are left out.
pub fn list_sorted(dir: &Path) -> Result<Vec<DirEntry>, WalkError> {
    let err = |source| WalkError {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let path = entry.path();
        // Follow symlinks: a linked folder is walked like a real one.
        let is_dir = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
        out.push(DirEntry {
            name: entry.file_name().to_string_lossy().into_owned(),
            path,
            is_dir,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Every file under `dir` (recursively, sorted by name at each level, hidden entries skipped)
/// for which `keep` is true. A folder that cannot be listed is an `Err` item in its place.
pub fn walk(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<Result<PathBuf, WalkError>> {
    let mut out = Vec::new();
    walk_into(dir, keep, &mut out, 0);
    out
}

/// Links can make a folder contain itself; no real dataset nests this deep.
const MAX_DEPTH: usize = 64;

fn walk_into(
    dir: &Path,
    keep: &dyn Fn(&Path) -> bool,
    out: &mut Vec<Result<PathBuf, WalkError>>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        out.push(Err(WalkError {
            path: dir.to_path_buf(),
            source: std::io::Error::other(format!(
                "more than {MAX_DEPTH} nested folders (a link loop?)"
            )),
        }));
        return;
    }
    match list_sorted(dir) {
        Ok(entries) => {
            for e in entries.into_iter().filter(|e| !e.is_hidden()) {
                if e.is_dir {
                    walk_into(&e.path, keep, out, depth + 1);
                } else if keep(&e.path) {
                    out.push(Ok(e.path));
                }
            }
        }
        Err(e) => out.push(Err(e)),
    }
}

/// [`walk`], failing on the first folder that cannot be listed.
pub fn walk_all(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>, WalkError> {
    walk(dir, keep).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_sorted_skips_hidden_and_reports_unreadable_folders() {
        let dir = std::env::temp_dir().join(format!("emolens-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("b")).unwrap();
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        for name in [
            "b/2.JPG",
            "a.mp4",
            "notes.txt",
            "c.png",
            "b/1.webm",
            "._c.png",
            ".git/x.png",
            "song.mp3",
        ] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let rel = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.strip_prefix(&dir).unwrap().to_str().unwrap().to_string())
                .collect()
        };
        let media = walk_all(&dir, &is_media_name).unwrap();
        assert_eq!(rel(media), ["a.mp4", "b/1.webm", "b/2.JPG", "c.png"]);
        let photos = walk_all(&dir, &is_photo_name).unwrap();
        assert_eq!(rel(photos), ["b/2.JPG", "c.png"]);
        let all = walk_all(&dir, &|_| true).unwrap();
        assert_eq!(
            rel(all),
            [
                "a.mp4",
                "b/1.webm",
                "b/2.JPG",
                "c.png",
                "notes.txt",
                "song.mp3"
            ]
        );
        assert_eq!(
            media_kind(Path::new("x.Mp3")),
            Some(MediaKind::Audio),
            "extensions match in any case"
        );

        let missing = dir.join("nowhere");
        let items = walk(&missing, &|_| true);
        assert_eq!(items.len(), 1);
        let e = items.into_iter().next().unwrap().unwrap_err();
        assert!(
            e.to_string().ends_with("nowhere: cannot list the folder"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
