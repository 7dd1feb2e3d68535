//! The run folder: the paths of its files, atomic writes, and the records a run writes before
//! its first epoch (`config.json`, checked against the saved one on resume; `dataset.json`;
//! `files.json`).

use std::path::{Path, PathBuf};

use emolens_data::SourceSplits;

use super::data::RunData;
use crate::config::TrainConfig;
use crate::error::TrainError;

/// Files of a run folder.
pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn history(&self) -> PathBuf {
        self.dir.join("history.json")
    }
    pub fn dataset(&self) -> PathBuf {
        self.dir.join("dataset.json")
    }
    pub fn best(&self) -> PathBuf {
        self.dir.join("best.emolens")
    }
    pub fn final_model(&self) -> PathBuf {
        self.dir.join("final.emolens")
    }
    /// The relative paths of every training and validation file, per source.
    pub fn files(&self) -> PathBuf {
        self.dir.join("files.json")
    }
    pub(super) fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }
    pub(super) fn state_json(&self) -> PathBuf {
        self.state_dir().join("trainer.json")
    }
    pub(super) fn state_weights(&self) -> PathBuf {
        self.state_dir().join("model.bpk")
    }
    pub(super) fn state_optim(&self) -> PathBuf {
        self.state_dir().join("optimizer.bin")
    }

    /// Creates the run folder `dir` (with its `state/`) for the run `cfg` and writes its
    /// `config.json`. With `resume`, a folder that already holds another run's configuration
    /// is refused: a resumed run must be the same run.
    pub(super) fn create(dir: &Path, cfg: &TrainConfig, resume: bool) -> Result<Self, TrainError> {
        let files = RunFiles {
            dir: dir.to_path_buf(),
        };
        std::fs::create_dir_all(files.state_dir())
            .map_err(|e| TrainError::io(&files.state_dir(), e))?;
        if resume && files.config().exists() {
            files.check_same_config(cfg)?;
        }
        write_atomic(
            &files.config(),
            serde_json::to_string_pretty(cfg)
                .expect("config serialises")
                .as_bytes(),
        )?;
        Ok(files)
    }

    /// Refuses a run folder whose `config.json` differs from `cfg` (or cannot be read).
    fn check_same_config(&self, cfg: &TrainConfig) -> Result<(), TrainError> {
        let saved: TrainConfig = serde_json::from_slice(
            &std::fs::read(self.config()).map_err(|e| TrainError::io(&self.config(), e))?,
        )
        .map_err(|e| {
            TrainError::Config(format!(
                "{}: unreadable ({e}); delete the run folder to start over",
                self.config().display()
            ))
        })?;
        if &saved != cfg {
            return Err(TrainError::Config(format!(
                "{} holds a run with a different configuration; use another --runs-dir or --name, or delete it to start over",
                self.dir.display()
            )));
        }
        Ok(())
    }

    /// Writes `dataset.json` and `files.json`: what the run's data is, source by source.
    pub(super) fn write_data_records(
        &self,
        data: &RunData,
        cfg: &TrainConfig,
        sources: &[SourceSplits],
        classes: &[String],
    ) -> Result<(), TrainError> {
        write_atomic(
            &self.dataset(),
            serde_json::to_string_pretty(&data.dataset_json(cfg, sources, classes))
                .expect("json")
                .as_bytes(),
        )?;
        write_atomic(
            &self.files(),
            serde_json::to_string_pretty(&data.files_json(sources))
                .expect("json")
                .as_bytes(),
        )
    }
}

/// Writes a file atomically (temp file + rename), so a kill never leaves a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| TrainError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))
}
