//! Best epoch and early stopping: which epoch's val_accuracy is the best so far, how many epochs
//! have passed without improvement, and when the run is finished.

use tracing::info;

use super::checkpoint::TrainerState;

impl TrainerState {
    /// Whether `val_accuracy` beats every earlier epoch's.
    pub(super) fn improves(&self, val_accuracy: f64) -> bool {
        val_accuracy > self.best_val_accuracy
    }

    /// Records epoch `epoch` (0-based)'s val_accuracy: the new best when `improved`, otherwise
    /// one more epoch without improvement.
    pub(super) fn track_best(&mut self, improved: bool, val_accuracy: f64, epoch: usize) {
        if improved {
            self.best_val_accuracy = val_accuracy;
            self.best_epoch = Some(epoch + 1);
            self.epochs_without_improvement = 0;
        } else {
            self.epochs_without_improvement += 1;
        }
    }

    /// Finishes the run after epoch `epoch` (0-based) when `patience` epochs have passed
    /// without improvement (early stopping) or the last of `epochs` is done.
    pub(super) fn check_finished(&mut self, patience: Option<usize>, epoch: usize, epochs: usize) {
        if patience.is_some_and(|p| self.epochs_without_improvement >= p) {
            info!(
                epoch = epoch + 1,
                "early stopping: val_accuracy has not improved"
            );
            self.stopped_early = true;
            self.finished = true;
        }
        if self.epochs_done == epochs {
            self.finished = true;
        }
    }
}
