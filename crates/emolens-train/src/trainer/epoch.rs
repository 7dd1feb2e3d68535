//! The epoch loop: what stays fixed for a run's epochs ([`Learner`]), and one epoch from start
//! to checkpoint: reseed, order, training steps, validation, history and log line, best model,
//! early stopping, resume state.

use std::time::Instant;

use emolens_core::Preprocessor;
use emolens_data::SourceSplits;
use emolens_model::burn::module::Module;
use emolens_model::burn::optim::ModuleOptimizer;
use emolens_model::burn::tensor::Device;
use emolens_model::Network;
use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

use super::checkpoint::TrainerState;
use super::data::RunData;
use super::order::{derive_seed, epoch_order};
use super::run_folder::RunFiles;
use super::setup::model_meta;
use super::step::pooled;
use super::RunOptions;
use crate::config::TrainConfig;
use crate::distill::Teacher;
use crate::error::TrainError;
use crate::loss::SoftCrossEntropy;

/// What stays fixed for every epoch of a run.
pub(super) struct Learner<'a> {
    pub(super) cfg: &'a TrainConfig,
    pub(super) opts: &'a RunOptions,
    pub(super) files: &'a RunFiles,
    pub(super) sources: &'a [SourceSplits],
    pub(super) data: &'a RunData,
    pub(super) pre: &'a Preprocessor,
    pub(super) classes: &'a [String],
    /// The training device (with autodiff).
    pub(super) device: Device,
    pub(super) loss_fn: SoftCrossEntropy,
    pub(super) teacher: Option<Teacher>,
    /// Each source's sampling weight.
    pub(super) source_weights: Vec<f64>,
    /// The run folder's name, for the log and the model files.
    pub(super) run_name: String,
    pub(super) steps_per_epoch: usize,
}

/// One finished epoch's metrics.
struct EpochSummary {
    /// 0-based.
    epoch: usize,
    train_loss: f64,
    train_acc: f64,
    val_loss: f64,
    val_acc: f64,
    lr: f64,
    secs: f64,
}

impl Learner<'_> {
    /// Runs epochs until the run is finished or this call's `stop_after_epochs` are done, then
    /// writes `final.emolens` if the run is finished.
    pub(super) fn fit(
        &self,
        mut model: Network,
        optim: &mut ModuleOptimizer,
        state: &mut TrainerState,
    ) -> Result<(), TrainError> {
        let mut epochs_this_call = 0;
        while state.epochs_done < self.cfg.epochs && !state.finished {
            if self
                .opts
                .stop_after_epochs
                .is_some_and(|k| epochs_this_call >= k)
            {
                break;
            }
            model = self.run_epoch(model, optim, state)?;
            epochs_this_call += 1;
        }
        if state.finished {
            let mut meta = self.meta();
            if let Some(last) = state.history.val_accuracy.last() {
                meta.metrics.insert("val_accuracy".into(), *last);
            }
            self.files.save_final(&meta, &model)?;
        }
        Ok(())
    }

    /// One epoch, from reseeding the backend to the resume state saved at its end.
    fn run_epoch(
        &self,
        model: Network,
        optim: &mut ModuleOptimizer,
        state: &mut TrainerState,
    ) -> Result<Network, TrainError> {
        let cfg = self.cfg;
        let epoch = state.epochs_done;
        let started = Instant::now();
        // Reseed the backend (dropout masks) and derive this epoch's order from the seed alone.
        self.device.seed(derive_seed(cfg.seed, epoch, 1));
        let order = epoch_order(&self.data.by_source, &self.source_weights, cfg.seed, epoch);
        let n = self.data.images_per_epoch;
        debug_assert_eq!(order.len(), n);

        let bar = self.progress_bar(epoch);
        let (model, totals) = self.train_epoch(model, optim, state, epoch, &order, &bar)?;
        bar.finish_and_clear();

        let valid_net = model.valid();
        let per_source = self.validate(&valid_net);
        let (val_loss, val_acc) = pooled(&per_source);
        let summary = EpochSummary {
            epoch,
            train_loss: totals.loss_sum / n as f64,
            train_acc: totals.correct as f64 / n as f64,
            val_loss,
            val_acc,
            lr: totals.lr,
            secs: started.elapsed().as_secs_f64(),
        };
        self.record_history(state, &summary, &per_source);
        state.epochs_done += 1;
        state
            .plateau
            .observe(&cfg.schedule, cfg.learning_rate, val_loss);
        let improved = state.improves(val_acc);
        self.log_epoch(&summary, improved);
        state.track_best(improved, val_acc, epoch);
        if improved {
            self.save_best(&summary, valid_net)?;
        }
        state.check_finished(cfg.early_stopping, epoch, cfg.epochs);
        self.files.save_checkpoint(&model, optim, state)?;
        Ok(model)
    }

    /// The epoch's progress bar (hidden without `progress`).
    fn progress_bar(&self, epoch: usize) -> ProgressBar {
        if !self.opts.progress {
            return ProgressBar::hidden();
        }
        let b = ProgressBar::new(self.data.images_per_epoch as u64);
        b.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} img {per_sec} ETA {eta} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b.set_prefix(format!("{}/{}", epoch + 1, self.cfg.epochs));
        b
    }

    /// Appends the epoch to the history, with each source's validation values when the run has
    /// several sources.
    fn record_history(
        &self,
        state: &mut TrainerState,
        s: &EpochSummary,
        per_source: &[(f64, f64, usize)],
    ) {
        state.history.push(
            s.train_loss,
            s.train_acc,
            s.val_loss,
            s.val_acc,
            s.lr,
            s.secs,
        );
        if self.sources.len() > 1 {
            for (src, &(l, a, len)) in self.sources.iter().zip(per_source) {
                if len > 0 {
                    state.history.push_source(&src.spec.name, l, a);
                }
            }
        }
    }

    /// The epoch's log line.
    fn log_epoch(&self, s: &EpochSummary, improved: bool) {
        let (train_loss, train_acc, val_loss, val_acc, lr, secs) = (
            s.train_loss,
            s.train_acc,
            s.val_loss,
            s.val_acc,
            s.lr,
            s.secs,
        );
        info!(
            run = %self.run_name,
            epoch = s.epoch + 1,
            epochs = self.cfg.epochs,
            loss = format!("{train_loss:.4}"),
            accuracy = format!("{train_acc:.4}"),
            val_loss = format!("{val_loss:.4}"),
            val_accuracy = format!("{val_acc:.4}"),
            lr = format!("{lr:.3e}"),
            seconds = format!("{secs:.1}"),
            img_per_s = format!("{:.1}", self.data.images_per_epoch as f64 / secs),
            best = improved,
            "epoch done"
        );
    }

    /// The metadata of the run's model files.
    fn meta(&self) -> emolens_core::ModelMeta {
        model_meta(
            self.cfg,
            self.classes,
            &self.data.fingerprint,
            &self.run_name,
        )
    }

    /// Writes `best.emolens` for the epoch `s`, its validation values and epoch in the metrics.
    fn save_best(&self, s: &EpochSummary, valid_net: Network) -> Result<(), TrainError> {
        let mut meta = self.meta();
        meta.metrics.insert("val_accuracy".into(), s.val_acc);
        meta.metrics.insert("val_loss".into(), s.val_loss);
        meta.metrics.insert("epoch".into(), (s.epoch + 1) as f64);
        self.files.save_best(&meta, valid_net)
    }
}
