//! Image-folder datasets for emolens.
//!
//! Datasets are laid out `<root>/<split>/<class>/<files>` (MMAFEDB: train/valid/test, FER2013:
//! train/test). This crate scans them ([`scan`]), reports on them ([`stats`]), writes cleaned
//! and balanced manifests ([`clean`], [`balance`]), carves a reproducible validation split
//! ([`training::open_for_training`]), augments images ([`augment`]) and decodes a whole split into
//! one contiguous in-memory u8 buffer for training ([`cache::load_cache`]).
//!
//! A training run can draw from several sources at once, with soft labels ([`sources`]; FER+
//! votes via [`ferplus`]).
//!
//! Every decode goes through `emolens_core`'s one preprocessing path. Bad files never abort a
//! run: each becomes a [`Problem`] naming the file and the reason.

pub mod augment;
pub mod balance;
pub mod cache;
pub mod clean;
pub mod error;
pub mod ferplus;
pub mod manifest;
pub mod problem;
mod progress;
pub mod scan;
pub mod sources;
pub mod stats;
pub mod training;

pub use augment::{apply_augment, AugmentConfig, AugmentParams, Degrade, DegradeConfig, FillMode};
pub use cache::{load_cache, ImageCache};
pub use error::DataError;
pub use ferplus::{FerPlusRow, FerPlusVotes, Usage};
pub use manifest::{DropReason, DroppedEntry, Manifest, ManifestEntry, ManifestKind};
pub use problem::{Problem, ProblemKind};
pub use scan::{scan_dataset, DatasetFile, DatasetScan, ScanOptions, Split};
pub use sources::{
    open_source, LabelKind, SourceItem, SourceSpec, SourceSplits, ValidKind, SOURCE_SYNTAX,
};
pub use training::{
    carve_valid, open_for_training, open_for_training_with, LabelledSplits, OpenOptions, Sample,
};
