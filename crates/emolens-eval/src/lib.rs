//! Evaluation and experiment reports.
//!
//! - [`metrics::evaluate`]: accuracy, per-class precision/recall/F1/support, macro/weighted/micro
//!   averages, top-2 accuracy, confusion matrices, one-vs-rest ROC with AUC, calibration (ECE),
//!   baselines, the most confidently wrong samples and how neutral faces are read (share read as
//!   a negative emotion), checked against scikit-learn.
//! - [`labels`]: true labels from class folders or from the FER+ majority vote.
//! - [`report`]: `report.json`, `report.md`, a self-contained `report.html`, and plots as PNG
//!   and SVG.
//! - [`experiments`]: training histories (Keras History JSON and emolens run folders), the best
//!   run, rankings, statistics and comparison plots.

pub mod dedup;
pub mod error;
pub mod experiments;
pub mod inference;
pub mod labels;
pub mod mapping;
pub mod metrics;
pub mod plots;
pub mod report;
pub mod tta;

pub use error::EvalError;
pub use metrics::{evaluate, EvalReport};
