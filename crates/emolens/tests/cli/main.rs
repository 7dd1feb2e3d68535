//! The `emolens` command-line program's tests, in one binary (one compile and link instead of
//! one per file): each module runs the built program (`CARGO_BIN_EXE_emolens`) on real data.

mod analyze;
mod bundled;
mod data;
mod eval;
mod fuzz_corpus;
mod jobs;
mod limits;
mod model;
mod onnx;
mod service;
mod video;
