//! Training history in Keras' `History.history` JSON shape (`loss`, `accuracy`, `val_loss`,
//! `val_accuracy`, one value per epoch), plus `lr` and `epoch_seconds`, so emolens runs and the
//! original design's histories are read by the same tools. A run with several sources adds
//! `val_loss_<source>` and `val_accuracy_<source>` for each source's own validation set.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub loss: Vec<f64>,
    pub accuracy: Vec<f64>,
    pub val_loss: Vec<f64>,
    pub val_accuracy: Vec<f64>,
    pub lr: Vec<f64>,
    pub epoch_seconds: Vec<f64>,
    /// Per-source validation metrics of multi-source runs (`val_accuracy_<source>`,
    /// `val_loss_<source>`), one value per epoch; empty for single-source runs.
    #[serde(flatten, default)]
    pub per_source: BTreeMap<String, Vec<f64>>,
}

impl History {
    pub fn push(&mut self, loss: f64, acc: f64, val_loss: f64, val_acc: f64, lr: f64, secs: f64) {
        self.loss.push(loss);
        self.accuracy.push(acc);
        self.val_loss.push(val_loss);
        self.val_accuracy.push(val_acc);
        self.lr.push(lr);
        self.epoch_seconds.push(secs);
    }

    /// Appends one epoch's validation loss and accuracy of source `name`.
    pub fn push_source(&mut self, name: &str, val_loss: f64, val_acc: f64) {
        for (k, v) in [("val_loss", val_loss), ("val_accuracy", val_acc)] {
            self.per_source
                .entry(format!("{k}_{name}"))
                .or_default()
                .push(v);
        }
    }

    pub fn epochs(&self) -> usize {
        self.loss.len()
    }

    pub fn to_keras_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("history serialises")
    }

    /// The metrics that depend only on the data, weights and seed (not on wall-clock time).
    pub fn without_timing(&self) -> History {
        History {
            epoch_seconds: Vec::new(),
            ..self.clone()
        }
    }
}
