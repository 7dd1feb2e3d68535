//! Learning-rate schedules, computed from the run's position alone so a resumed run gets the
//! same rate at the same step.

use crate::config::Schedule;
use serde::{Deserialize, Serialize};

/// The part of a schedule that depends on history (reduce-on-plateau), saved with checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    pub best_val_loss: Option<f64>,
    pub wait: usize,
    /// Product of the reductions applied so far.
    pub factor: f64,
}

impl PlateauState {
    pub fn new() -> Self {
        PlateauState {
            best_val_loss: None,
            wait: 0,
            factor: 1.0,
        }
    }

    /// Records an epoch's val_loss; returns true when the rate was reduced.
    pub fn observe(&mut self, schedule: &Schedule, base_lr: f64, val_loss: f64) -> bool {
        let Schedule::Plateau {
            factor,
            patience,
            min_lr,
        } = schedule
        else {
            return false;
        };
        let improved = self.best_val_loss.is_none_or(|b| val_loss < b - 1e-4);
        if improved {
            self.best_val_loss = Some(val_loss);
            self.wait = 0;
            return false;
        }
        self.wait += 1;
        if self.wait > *patience && base_lr * self.factor > *min_lr {
            self.factor = (self.factor * factor).max(min_lr / base_lr);
            self.wait = 0;
            return true;
        }
        false
    }
}

/// Learning rate for `step` (0-based, counted over the whole run) in `epoch`.
pub fn learning_rate(
    schedule: &Schedule,
    base_lr: f64,
    epoch: usize,
    step: usize,
    steps_per_epoch: usize,
    epochs: usize,
    plateau: &PlateauState,
) -> f64 {
    match schedule {
        Schedule::Constant => base_lr,
        Schedule::Step { every, gamma } => base_lr * gamma.powi((epoch / every.max(&1)) as i32),
        Schedule::Cosine {
            warmup_epochs,
            min_lr,
        } => {
            let warm = warmup_epochs * steps_per_epoch;
            let total = (epochs * steps_per_epoch).max(1);
            if step < warm {
                base_lr * (step + 1) as f64 / warm as f64
            } else {
                let t = (step - warm) as f64 / (total - warm).max(1) as f64;
                min_lr
                    + (base_lr - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
            }
        }
        Schedule::Plateau { .. } => base_lr * plateau.factor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_warms_up_then_decays() {
        let s = Schedule::Cosine {
            warmup_epochs: 1,
            min_lr: 0.0,
        };
        let p = PlateauState::new();
        assert!((learning_rate(&s, 0.1, 0, 0, 10, 5, &p) - 0.01).abs() < 1e-12);
        assert!((learning_rate(&s, 0.1, 0, 9, 10, 5, &p) - 0.1).abs() < 1e-12);
        assert!((learning_rate(&s, 0.1, 1, 10, 10, 5, &p) - 0.1).abs() < 1e-12);
        assert!(learning_rate(&s, 0.1, 4, 49, 10, 5, &p) < 0.001);
    }

    #[test]
    fn step_and_plateau() {
        let p = PlateauState::new();
        let s = Schedule::Step {
            every: 2,
            gamma: 0.5,
        };
        assert_eq!(learning_rate(&s, 1.0, 3, 0, 1, 10, &p), 0.5);
        assert_eq!(learning_rate(&s, 1.0, 4, 0, 1, 10, &p), 0.25);
        let s = Schedule::Plateau {
            factor: 0.5,
            patience: 1,
            min_lr: 0.1,
        };
        let mut p = PlateauState::new();
        assert!(!p.observe(&s, 1.0, 1.0));
        assert!(!p.observe(&s, 1.0, 1.0));
        assert!(p.observe(&s, 1.0, 1.0));
        assert_eq!(learning_rate(&s, 1.0, 0, 0, 1, 10, &p), 0.5);
    }
}
