//! Checkpoints and exact resume: the trainer state saved at every epoch boundary with the
//! weights and the optimiser state (written last, so a complete `trainer.json` means complete
//! files), loaded back on resume; and the model files a run leaves (`best.emolens`,
//! `final.emolens`).

use emolens_core::ModelMeta;
use emolens_model::burn::module::Module;
use emolens_model::burn::optim::ModuleOptimizer;
use emolens_model::burn::store::ModuleRecord;
use emolens_model::burn::tensor::Bytes;
use emolens_model::{ModelFile, Network};
use serde::{Deserialize, Serialize};
use tracing::info;

use super::run_folder::{write_atomic, RunFiles};
use crate::error::TrainError;
use crate::history::History;
use crate::schedule::PlateauState;

/// Saved between epochs; with the weights and optimiser state it is all a resume needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainerState {
    pub epochs_done: usize,
    pub steps_done: usize,
    pub history: History,
    pub best_val_accuracy: f64,
    pub best_epoch: Option<usize>,
    pub plateau: PlateauState,
    pub epochs_without_improvement: usize,
    pub finished: bool,
    pub stopped_early: bool,
}

impl TrainerState {
    /// The state of a run before its first epoch.
    pub(super) fn new() -> Self {
        TrainerState {
            epochs_done: 0,
            steps_done: 0,
            history: History::default(),
            best_val_accuracy: f64::NEG_INFINITY,
            best_epoch: None,
            plateau: PlateauState::new(),
            epochs_without_improvement: 0,
            finished: false,
            stopped_early: false,
        }
    }
}

impl RunFiles {
    /// The saved trainer state, weights (loaded into `model`) and optimiser state (loaded into
    /// `optim`) of the last finished epoch.
    pub(super) fn load_checkpoint(
        &self,
        model: Network,
        optim: ModuleOptimizer,
    ) -> Result<(TrainerState, Network, ModuleOptimizer), TrainError> {
        let state: TrainerState = serde_json::from_slice(
            &std::fs::read(self.state_json()).map_err(|e| TrainError::io(&self.state_json(), e))?,
        )
        .map_err(|e| {
            TrainError::Config(format!(
                "{}: unreadable resume state ({e})",
                self.state_json().display()
            ))
        })?;
        let w = std::fs::read(self.state_weights())
            .map_err(|e| TrainError::io(&self.state_weights(), e))?;
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(w))
            .map_err(|e| TrainError::Config(format!("resume weights unreadable: {e}")))?;
        let model = model
            .try_load_record(record)
            .map_err(|e| TrainError::Config(format!("resume weights do not fit: {e}")))?;
        let o = std::fs::read(self.state_optim())
            .map_err(|e| TrainError::io(&self.state_optim(), e))?;
        let optim = optim
            .from_bytes(Bytes::from_bytes_vec(o))
            .map_err(|e| TrainError::Config(format!("resume optimiser state unreadable: {e}")))?;
        info!(epochs_done = state.epochs_done, "resuming run");
        Ok((state, model, optim))
    }

    /// Saves the resume state at an epoch boundary, the small JSON that says the rest is
    /// complete last: weights, optimiser, history, then `trainer.json`.
    pub(super) fn save_checkpoint(
        &self,
        model: &Network,
        optim: &ModuleOptimizer,
        state: &TrainerState,
    ) -> Result<(), TrainError> {
        let w = model
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| TrainError::Config(format!("saving weights: {e}")))?;
        write_atomic(&self.state_weights(), &w)?;
        let o = optim
            .into_bytes()
            .map_err(|e| TrainError::Config(format!("saving optimiser state: {e}")))?;
        write_atomic(&self.state_optim(), &o)?;
        write_atomic(&self.history(), state.history.to_keras_json().as_bytes())?;
        write_atomic(
            &self.state_json(),
            serde_json::to_string_pretty(state)
                .expect("state")
                .as_bytes(),
        )
    }

    /// Writes `best.emolens`: the network of the best epoch so far (in validation mode).
    pub(super) fn save_best(&self, meta: &ModelMeta, valid_net: Network) -> Result<(), TrainError> {
        let bytes = ModelFile::encode(meta, valid_net).map_err(TrainError::Model)?;
        write_atomic(&self.best(), &bytes)
    }

    /// Writes `final.emolens`: the network after the run's last epoch.
    pub(super) fn save_final(&self, meta: &ModelMeta, model: &Network) -> Result<(), TrainError> {
        let bytes = ModelFile::encode(meta, model.valid()).map_err(TrainError::Model)?;
        write_atomic(&self.final_model(), &bytes)
    }
}
