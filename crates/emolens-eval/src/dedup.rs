//! Finding test files that duplicate a training file byte for byte (FER2013 has 568).

use crate::error::EvalError;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::Path;

/// SHA-256 (hex) of every file under `dir`, recursively (hidden files skipped). Unreadable
/// files are logged and left out: they cannot be duplicates of anything we evaluate.
pub fn hash_tree(dir: &Path) -> Result<HashSet<String>, EvalError> {
    if !dir.is_dir() {
        return Err(EvalError::io(
            dir,
            "not a folder; --exclude-train-duplicates needs the training images' folder",
        ));
    }
    let files = emolens_core::files::walk_all(dir, &|p| p.is_file())
        .map_err(|e| EvalError::io(&e.path, format!("cannot list folder: {}", e.source)))?;
    Ok(files
        .par_iter()
        .filter_map(|p| match std::fs::read(p) {
            Ok(bytes) => Some(hex::encode(Sha256::digest(&bytes))),
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "cannot read training file; not used for duplicate search");
                None
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_nested_files() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a/b")).unwrap();
        std::fs::write(t.path().join("a/b/x.jpg"), b"abc").unwrap();
        std::fs::write(t.path().join("y.jpg"), b"abc").unwrap();
        std::fs::write(t.path().join("z.jpg"), b"abd").unwrap();
        let h = hash_tree(t.path()).unwrap();
        assert_eq!(h.len(), 2);
        assert!(h.contains("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        assert!(hash_tree(&t.path().join("missing")).is_err());
    }
}
