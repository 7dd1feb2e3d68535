//! Sweeps: a grid of runs trained in sequence, each resumable, with the best model by
//! val_accuracy copied into `<runs>/best_model/` as the original design did.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tracing::{error, info};

use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::trainer::{train, write_atomic, RunOptions, TrainerState};

/// The runs of a sweep, in the order they are trained.
pub struct SweepGrid {
    pub configs: Vec<TrainConfig>,
}

/// One run's line in the sweep summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRow {
    pub run: String,
    pub status: String,
    pub epochs: usize,
    pub best_val_accuracy: Option<f64>,
    pub best_epoch: Option<usize>,
}

fn finished_state(dir: &Path) -> Option<TrainerState> {
    let s: TrainerState =
        serde_json::from_slice(&std::fs::read(dir.join("state/trainer.json")).ok()?).ok()?;
    s.finished.then_some(s)
}

/// Trains every run of the grid (skipping finished ones, resuming interrupted ones), then keeps
/// the best model. A failing run is reported and the sweep goes on. Returns a printable summary.
pub fn run_sweep(
    grid: &SweepGrid,
    runs_dir: &Path,
    opts: &RunOptions,
) -> Result<String, TrainError> {
    std::fs::create_dir_all(runs_dir).map_err(|e| TrainError::io(runs_dir, e))?;
    let mut rows = Vec::new();
    for (i, cfg) in grid.configs.iter().enumerate() {
        let name = cfg.run_name();
        let dir = runs_dir.join(&name);
        info!(run = %name, index = i + 1, of = grid.configs.len(), "sweep run");
        if let Some(s) = finished_state(&dir) {
            rows.push(SweepRow {
                run: name,
                status: "done (earlier)".into(),
                epochs: s.history.epochs(),
                best_val_accuracy: s.best_epoch.map(|_| s.best_val_accuracy),
                best_epoch: s.best_epoch,
            });
            continue;
        }
        match train(cfg, &dir, opts) {
            Ok(out) => rows.push(SweepRow {
                run: name,
                status: if out.finished {
                    "done".into()
                } else {
                    "paused".into()
                },
                epochs: out.history.epochs(),
                best_val_accuracy: out.best_epoch.map(|_| out.best_val_accuracy),
                best_epoch: out.best_epoch,
            }),
            Err(e) => {
                error!(run = %name, error = %e, "run failed; the sweep goes on");
                rows.push(SweepRow {
                    run: name,
                    status: format!("failed: {e}"),
                    epochs: 0,
                    best_val_accuracy: None,
                    best_epoch: None,
                });
            }
        }
    }
    let best = rows
        .iter()
        .filter(|r| r.best_val_accuracy.is_some())
        .max_by(|a, b| {
            a.best_val_accuracy
                .partial_cmp(&b.best_val_accuracy)
                .expect("finite accuracies")
        });
    let mut out = String::new();
    writeln!(
        out,
        "{:<60} {:>7} {:>10} {:>6}  status",
        "run", "epochs", "best_val", "epoch"
    )
    .ok();
    for r in &rows {
        writeln!(
            out,
            "{:<60} {:>7} {:>10} {:>6}  {}",
            r.run,
            r.epochs,
            r.best_val_accuracy
                .map(|v| format!("{v:.4}"))
                .unwrap_or_else(|| "-".into()),
            r.best_epoch
                .map(|e| e.to_string())
                .unwrap_or_else(|| "-".into()),
            r.status
        )
        .ok();
    }
    if let Some(b) = best {
        let dest = runs_dir.join("best_model");
        std::fs::create_dir_all(&dest).map_err(|e| TrainError::io(&dest, e))?;
        let src = runs_dir.join(&b.run);
        for f in [
            "best.emolens",
            "history.json",
            "config.json",
            "dataset.json",
        ] {
            if let Ok(bytes) = std::fs::read(src.join(f)) {
                let target = if f == "best.emolens" {
                    "model.emolens"
                } else {
                    f
                };
                write_atomic(&dest.join(target), &bytes)?;
            }
        }
        write_atomic(
            &dest.join("sweep.json"),
            serde_json::to_string_pretty(&rows)
                .expect("rows")
                .as_bytes(),
        )?;
        writeln!(
            out,
            "best run: {} (val_accuracy {:.4}); copied to {}",
            b.run,
            b.best_val_accuracy.unwrap_or(0.0),
            dest.display()
        )
        .ok();
    }
    Ok(out)
}
