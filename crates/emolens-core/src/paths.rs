//! Where the project's shared, never-committed material lives (FER2013, the original design's
//! reference files). Tests and benchmarks find it here.

use std::path::PathBuf;

/// The `shared/` folder beside the checkout: `$EMOLENS_SHARED` if set, else `<repo>/../shared`.
pub fn shared_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("EMOLENS_SHARED") {
        return PathBuf::from(p);
    }
    // crates/emolens-core -> repo root -> its parent.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// `shared/data/fer2013`.
pub fn fer2013_dir() -> PathBuf {
    shared_dir().join("data/fer2013")
}

/// `shared/seed-reference`.
pub fn seed_reference_dir() -> PathBuf {
    shared_dir().join("seed-reference")
}
