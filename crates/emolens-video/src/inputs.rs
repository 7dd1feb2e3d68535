//! The files `emolens analyze PHOTO|VIDEO|DIR...` reads, for the CLI and the Python package
//! alike: a file named is taken as it is (its format is sniffed from the content later); a
//! folder is searched recursively, in sorted order, for photo and video extensions.

use crate::VIDEO_EXTENSIONS;
use emolens_faces::PHOTO_EXTENSIONS;
use std::path::{Path, PathBuf};

/// Why the inputs could not be listed. Each names the path and what to check.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{}: no such photo, video or folder", path.display())]
    Missing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading folder {}", path.display())]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no photos or videos found in {inputs:?} (looked for files ending in {}, {})",
        PHOTO_EXTENSIONS.join(", "),
        VIDEO_EXTENSIONS.join(", ")
    )]
    NothingFound { inputs: Vec<PathBuf> },
}

/// The files to analyse, one list per input, in the order given: the file named, or every
/// photo and video file under the folder named (sorted, recursive). Fails on a missing input or
/// an unreadable folder, and when all inputs together hold nothing to analyse.
pub fn collect_inputs(inputs: &[PathBuf]) -> Result<Vec<Vec<PathBuf>>, InputError> {
    let mut all = Vec::with_capacity(inputs.len());
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|source| InputError::Missing {
            path: input.clone(),
            source,
        })?;
        let mut files = Vec::new();
        if meta.is_dir() {
            walk(input, &mut files)?;
        } else {
            files.push(input.clone());
        }
        all.push(files);
    }
    if all.iter().all(|f| f.is_empty()) {
        return Err(InputError::NothingFound {
            inputs: inputs.to_vec(),
        });
    }
    Ok(all)
}

/// True for a file name a folder search picks up: a photo or video extension, in any case
/// (sound files in a folder are left alone; named explicitly, they are answered "audio only").
pub use emolens_core::files::is_media_name;

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let found =
        emolens_core::files::walk_all(dir, &is_media_name).map_err(|e| InputError::ReadDir {
            path: e.path,
            source: e.source,
        })?;
    files.extend(found);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_searched_in_order_and_files_taken_as_named() {
        let dir = std::env::temp_dir().join(format!("emolens-inputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("b")).unwrap();
        for name in ["b/2.JPG", "a.mp4", "notes.txt", "c.png", "b/1.webm"] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let named = dir.join("notes.txt");
        let got = collect_inputs(&[dir.clone(), named.clone()]).unwrap();
        let rel: Vec<_> = got[0]
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(rel, ["a.mp4", "b/1.webm", "b/2.JPG", "c.png"]);
        assert_eq!(got[1], [named]);

        let missing = dir.join("nowhere.jpg");
        let e = collect_inputs(std::slice::from_ref(&missing)).unwrap_err();
        assert!(matches!(e, InputError::Missing { .. }));
        assert!(e
            .to_string()
            .contains("nowhere.jpg: no such photo, video or folder"));

        std::fs::create_dir_all(dir.join("empty")).unwrap();
        let e = collect_inputs(&[dir.join("empty")]).unwrap_err();
        assert!(
            e.to_string().starts_with("no photos or videos found in"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
