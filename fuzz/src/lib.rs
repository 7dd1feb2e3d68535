//! emolens's fuzz targets as a library, for the AFL binaries in `src/bin`.

#[path = "targets.rs"]
pub mod targets;

#[cfg(feature = "model")]
#[path = "model_targets.rs"]
pub mod model_targets;
