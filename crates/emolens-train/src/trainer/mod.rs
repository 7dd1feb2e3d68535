//! The training loop: data order, augmentation, optimiser steps, validation, history,
//! checkpoints and exact resume, split as burn splits its learner: [`train`] here sets a run up
//! and hands it to the epoch loop (`epoch.rs`), whose train and valid steps (`step.rs`) run on
//! batches (`batch.rs`) drawn in the epoch's order (`order.rs`); the best model and early
//! stopping (`early_stopping.rs`), checkpoints and resume (`checkpoint.rs`), the run folder
//! (`run_folder.rs`, `data_records.rs`), the run's data (`data.rs`) and what is built from the
//! configuration (`setup.rs`) each have their own file.
//!
//! A run draws from one or more sources ([`emolens_data::sources`]): their training images
//! share one in-memory cache, each with a target distribution (soft labels such as FER+ votes,
//! or a one-hot), and each epoch draws `round(weight * images)` from every source (see
//! [`epoch_order`]). Each source keeps its own validation set; the run's `val_accuracy` and
//! `val_loss` (which pick `best.emolens`, drive the plateau schedule and early stopping) are over
//! the union of every source's validation set, i.e. the size-weighted mean of the per-source
//! values, which multi-source runs also record as `val_accuracy_<source>`/`val_loss_<source>`.
//!
//! Determinism: every random choice is derived from `(seed, epoch, position)` (data order,
//! augmentation) or reseeded at each epoch start (dropout), and the resume state is written at
//! epoch boundaries. A run killed at any point and resumed replays from its last finished epoch
//! and produces the same history it would have without the interruption.

mod batch;
mod checkpoint;
mod data;
mod data_records;
mod early_stopping;
mod epoch;
mod order;
mod run_folder;
mod setup;
mod step;

use std::path::{Path, PathBuf};

use emolens_core::Preprocessor;
use emolens_model::burn::tensor::Device;
use emolens_model::Architecture;
use tracing::info;

use crate::config::TrainConfig;
use crate::distill::Teacher;
use crate::error::TrainError;
use crate::history::History;
use crate::loss::SoftCrossEntropy;

pub use checkpoint::TrainerState;
pub use order::{draws_per_epoch, epoch_order};
pub use run_folder::{write_atomic, RunFiles};
pub(crate) use setup::check_same_input;
pub use setup::{input_spec, model_meta};
pub use step::evaluate;

use data::{load_data, open_sources, RunData};
use epoch::Learner;
use setup::{build_optimizer, class_weights, initial_network};

/// Options that do not change the result of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Show progress bars.
    pub progress: bool,
    /// Continue from the run folder's saved state if there is one.
    pub resume: bool,
    /// Stop after this many epochs of this invocation (the run stays resumable). For tests and
    /// for splitting long runs.
    pub stop_after_epochs: Option<usize>,
    pub device: Device,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            progress: true,
            resume: true,
            stop_after_epochs: None,
            device: Device::flex(),
        }
    }
}

/// What a run left behind.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub history: History,
    pub best_val_accuracy: f64,
    pub best_epoch: Option<usize>,
    pub finished: bool,
    /// `best.emolens`: the weights of the best epoch by val_accuracy.
    pub best_model: PathBuf,
}

/// Trains (or resumes) the run described by `cfg` in `run_dir`.
pub fn train(
    cfg: &TrainConfig,
    run_dir: &Path,
    opts: &RunOptions,
) -> Result<RunOutcome, TrainError> {
    cfg.validate().map_err(TrainError::Config)?;
    // Open the data first, so a wrong --data or --source leaves no run folder behind.
    let sources = open_sources(cfg)?;
    let files = RunFiles::create(run_dir, cfg, opts.resume)?;
    let arch = Architecture::from_value(cfg.architecture.clone()).map_err(TrainError::Model)?;
    let spec = input_spec(cfg);
    let pre = Preprocessor::new(spec.clone());
    let data = load_data(cfg, &sources, &pre, opts.progress)?;
    let classes = sources[0].classes.clone();
    files.write_data_records(&data, cfg, &sources, &classes)?;

    // Model, optimiser, state.
    let device = opts.device.clone().autodiff();
    device.seed(cfg.seed);
    let mut model = initial_network(cfg, &arch, &spec, &device)?;
    let mut optim = build_optimizer(cfg);
    let mut state = TrainerState::new();
    if opts.resume && files.state_json().exists() {
        (state, model, optim) = files.load_checkpoint(model, optim)?;
    }
    info!(
        kernels = emolens_model::onednn::cpu_kernels(),
        "CPU kernels for convolution, batch norm and pooling"
    );

    let learner = Learner {
        cfg,
        opts,
        files: &files,
        sources: &sources,
        data: &data,
        pre: &pre,
        classes: &classes,
        loss_fn: loss_function(cfg, &data, &sources, &classes, &device)?,
        teacher: cfg
            .distill
            .as_ref()
            .map(|d| Teacher::load(d, &spec, &classes))
            .transpose()?,
        source_weights: sources.iter().map(|s| s.spec.weight).collect(),
        run_name: run_dir
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("run")
            .to_string(),
        steps_per_epoch: data.images_per_epoch.div_ceil(cfg.batch_size),
        device,
    };
    learner.fit(model, &mut optim, &mut state)?;
    Ok(RunOutcome {
        run_dir: run_dir.to_path_buf(),
        history: state.history,
        best_val_accuracy: state.best_val_accuracy,
        best_epoch: state.best_epoch,
        finished: state.finished,
        best_model: files.best(),
    })
}

/// The run's loss: soft-target cross-entropy with the configured class weights (each training
/// image counted with its source's sampling weight) and label smoothing.
fn loss_function(
    cfg: &TrainConfig,
    data: &RunData,
    sources: &[emolens_data::SourceSplits],
    classes: &[String],
    device: &Device,
) -> Result<SoftCrossEntropy, TrainError> {
    let weight_of_image: Vec<f64> = data
        .source_of
        .iter()
        .map(|&s| sources[s].spec.weight)
        .collect();
    let weights = class_weights(cfg, &data.targets, &weight_of_image)?;
    Ok(SoftCrossEntropy::new(
        classes.len(),
        weights.as_deref(),
        cfg.label_smoothing,
        device,
    ))
}
