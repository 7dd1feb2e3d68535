//! emolens-train's integration tests, in one binary (one compile and link instead of one per
//! file): fused optimisers against burn's, real training runs, exact resume, and multi-source
//! runs with soft labels.

mod common;

mod distill;
mod fused_optim;
mod multi_source;
mod resume;
mod training;
