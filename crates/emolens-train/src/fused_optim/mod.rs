//! Fused, in-place optimiser steps.
//!
//! burn's optimisers update a parameter as a chain of element-wise tensor operations, each one
//! a pass over memory and most of them allocating a fresh tensor; over a model's ~15 M
//! parameters that is a fifth of a training step. The optimisers here compute burn's update
//! with the same formulas in the same operation order (so the same `f32` results), in one pass
//! over the parameter, its gradient and its state, writing in place into buffers nobody else
//! holds. They keep burn's state record layout, so `ModuleOptimizer::into_bytes`/`from_bytes`
//! files (the trainer's `optimizer.bin`) are interchangeable with burn's in both directions.
//!
//! Only Flex `f32` contiguous tensors of matching sizes take the fused path; anything else
//! (another backend or dtype, a strided view) goes to burn's own optimiser, so behaviour never
//! changes. Wrap one in a `ModuleOptimizer` with `ModuleOptimizer::from`.
//!
//! Split as burn splits its optimisers: one file per optimiser (`sgd.rs`, `adam.rs`,
//! `adamw.rs`, `rmsprop.rs`), what Adam and AdamW share in `adaptive.rs`, and the Flex buffers
//! and parallel loops every one of them uses in `flex.rs`.

mod adam;
mod adamw;
mod adaptive;
mod flex;
mod rmsprop;
mod sgd;

pub use adam::FusedAdam;
pub use adamw::FusedAdamW;
pub use rmsprop::{FusedRmsProp, FusedRmsPropState};
pub use sgd::{FusedSgd, FusedSgdState};
