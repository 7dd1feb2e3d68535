//! Training for emolens: configurations, the training loop with exact resume, histories in
//! Keras' format, checkpoints, and sweeps over the original design's grid.

pub mod bench;
pub mod config;
pub mod distill;
pub mod error;
pub mod fused_optim;
pub mod history;
pub mod loss;
pub mod schedule;
pub mod sweep;
pub mod trainer;

pub use config::{ClassWeights, InitFrom, OptimizerConfig, Schedule, TrainConfig};
pub use distill::Distill;
pub use error::TrainError;
pub use history::History;
pub use trainer::{evaluate, train, RunOptions, RunOutcome};
