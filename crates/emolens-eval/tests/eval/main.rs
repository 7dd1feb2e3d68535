//! emolens-eval's integration tests, in one binary (one compile and link instead of one per
//! file): metrics against scikit-learn's, report files, and the original design's training
//! histories.

mod experiments_reference;
mod report_files;
mod sklearn_parity;
