//! Evaluation and experiment reports.
//!
//! - [`metrics::evaluate`]: accuracy, per-class precision/recall/F1/support, macro/weighted/micro
//!   averages, top-2 accuracy, confusion matrices, one-vs-rest ROC with AUC, calibration (ECE),
//!   baselines and the most confidently wrong samples, checked against scikit-learn.
//! - [`report`]: `report.json`, `report.md`, a self-contained `report.html`, and plots as PNG
//!   and SVG.
//! - [`experiments`]: training histories (Keras History JSON and emolens run folders), the best
//!   run, rankings, statistics and comparison plots.

pub mod dedup;
pub mod error;
pub mod experiments;
pub mod inference;
pub mod mapping;
pub mod metrics;
pub mod plots;
pub mod report;

pub use error::EvalError;
pub use metrics::{evaluate, EvalReport};
