//! The full configuration of a training run. It is saved as `config.json` beside every run and
//! inside every model file, so a run can be repeated exactly.

use emolens_core::{ColourMode, Normalisation};
use emolens_data::{AugmentConfig, SourceSpec};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Optimiser kinds and their settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    Sgd {
        momentum: f64,
        nesterov: bool,
    },
    Adam {
        beta1: f32,
        beta2: f32,
        epsilon: f32,
    },
    AdamW {
        beta1: f32,
        beta2: f32,
        epsilon: f32,
    },
    RmsProp {
        rho: f32,
        momentum: f32,
        epsilon: f32,
    },
}

impl OptimizerConfig {
    /// Defaults matching Keras' for each optimiser (SGD gets momentum 0.9, as is usual for CNNs).
    pub fn by_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "sgd" => OptimizerConfig::Sgd {
                momentum: 0.9,
                nesterov: false,
            },
            "nesterov" | "sgd-nesterov" => OptimizerConfig::Sgd {
                momentum: 0.9,
                nesterov: true,
            },
            "adam" => OptimizerConfig::Adam {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-7,
            },
            "adamw" => OptimizerConfig::AdamW {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-7,
            },
            "rmsprop" => OptimizerConfig::RmsProp {
                rho: 0.9,
                momentum: 0.0,
                epsilon: 1e-7,
            },
            _ => return None,
        })
    }

    /// The short name used in run names (`sgd`, `adam`, `adamw`, `rmsprop`).
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::Adam { .. } => "adam",
            OptimizerConfig::AdamW { .. } => "adamw",
            OptimizerConfig::RmsProp { .. } => "rmsprop",
        }
    }
}

/// Learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        every: usize,
        gamma: f64,
    },
    /// Linear warm-up over `warmup_epochs`, then cosine decay to `min_lr` at the last epoch
    /// (updated every step).
    Cosine {
        warmup_epochs: usize,
        min_lr: f64,
    },
    /// Multiply by `factor` when val_loss has not improved for `patience` epochs.
    Plateau {
        factor: f64,
        patience: usize,
        min_lr: f64,
    },
}

/// Class weighting of the loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeights {
    None,
    /// `n / (classes * count[c])`, scikit-learn's "balanced".
    Balanced,
    Custom(Vec<f32>),
}

/// Everything that determines a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Name of the architecture (the file's stem).
    pub arch_name: String,
    /// Where the architecture came from.
    pub arch_source: PathBuf,
    /// The architecture in emolens' own format (so the run does not depend on the file).
    pub architecture: serde_json::Value,
    /// Dataset folder or clean/balance manifest (`--data`): one folder source of weight 1 with
    /// hard labels. Empty when the run lists `sources`.
    #[serde(default, skip_serializing_if = "path_is_empty")]
    pub data: PathBuf,
    /// The sources of a multi-source run (`--source`); empty for a `--data` run (and in the
    /// config.json of runs made before sources existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceSpec>,
    pub colour_mode: ColourMode,
    pub input_size: u32,
    pub normalisation: Normalisation,
    pub optimizer: OptimizerConfig,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    pub batch_size: usize,
    pub epochs: usize,
    pub seed: u64,
    /// Name of the augmentation preset, for the record (`none`, `original`, `standard`, ...).
    pub augment_preset: String,
    pub augment: AugmentConfig,
    pub class_weights: ClassWeights,
    pub label_smoothing: f32,
    /// Mixup (Zhang et al. 2018): each training image is blended with another image of its
    /// batch, pixels and targets alike, by a weight drawn from Beta(mixup, mixup) (the larger
    /// share stays with the image itself). 0 (the default, and in configs saved before it
    /// existed) turns it off.
    #[serde(default)]
    pub mixup: f32,
    /// Stop when val_accuracy has not improved for this many epochs.
    pub early_stopping: Option<usize>,
    /// Fraction of train carved out for validation when the dataset has no valid split.
    pub valid_fraction: f32,
    /// Use only the first N training images per class (quick runs and tests).
    pub max_train_per_class: Option<usize>,
    /// Use only the first N validation images per class.
    pub max_valid_per_class: Option<usize>,
    /// Last part of the run name: `augment` or `balanced` in the original's convention.
    pub tag: String,
    /// Start from the weights of this model file instead of a random initialisation
    /// (fine-tuning, or a second schedule cycle); its SHA-256 is recorded beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<InitFrom>,
    /// Distillation: a teacher model's probabilities join every training target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill: Option<crate::distill::Distill>,
}

fn path_is_empty(p: &std::path::Path) -> bool {
    p.as_os_str().is_empty()
}

/// A model file whose weights start a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitFrom {
    pub path: PathBuf,
    pub sha256: String,
}

impl TrainConfig {
    /// The run name in the original's convention:
    /// `modelname_optimizer_colormode_batchsize_augment|balanced`.
    pub fn run_name(&self) -> String {
        format!(
            "{}_{}_{}_{}_{}",
            self.arch_name,
            self.optimizer.name(),
            self.colour_mode.name(),
            self.batch_size,
            self.tag
        )
    }

    /// The run's sources: `sources`, or `data` as one folder source named `data` (weight 1,
    /// hard labels).
    pub fn source_list(&self) -> Vec<SourceSpec> {
        if self.sources.is_empty() {
            vec![SourceSpec::folder("data", &self.data)]
        } else {
            self.sources.clone()
        }
    }

    /// Checks values a user can get wrong, with messages naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        match (self.data.as_os_str().is_empty(), self.sources.is_empty()) {
            (true, true) => return Err("give the training data: --data DIR or --source".into()),
            (false, false) => {
                return Err("give either --data or --source, not both (--data DIR is the source DIR with weight 1)".into())
            }
            _ => {}
        }
        let mut names = std::collections::HashSet::new();
        for s in &self.sources {
            s.validate().map_err(|e| format!("--source: {e}"))?;
            if !names.insert(s.name.as_str()) {
                return Err(format!(
                    "--source: two sources are named `{}`; give each its own NAME=",
                    s.name
                ));
            }
        }
        if self.batch_size == 0 {
            return Err("--batch-size must be at least 1".into());
        }
        if self.epochs == 0 {
            return Err("--epochs must be at least 1".into());
        }
        if self.learning_rate.is_nan()
            || self.learning_rate <= 0.0
            || self.learning_rate.is_infinite()
        {
            return Err(format!(
                "--lr must be a positive number, got {}",
                self.learning_rate
            ));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(format!(
                "--label-smoothing must be in [0, 1), got {}",
                self.label_smoothing
            ));
        }
        if let Some(d) = &self.distill {
            d.validate()?;
        }
        if !(0.0..=2.0).contains(&self.mixup) {
            return Err(format!(
                "--mixup must be in [0, 2] (0 turns it off; 0.2-0.4 is usual), got {}",
                self.mixup
            ));
        }
        if !(0.0..0.9).contains(&self.valid_fraction) {
            return Err(format!(
                "--valid-fraction must be in [0, 0.9), got {}",
                self.valid_fraction
            ));
        }
        if self.weight_decay < 0.0 {
            return Err("--weight-decay must not be negative".into());
        }
        if self.input_size < 8 || self.input_size > 512 {
            return Err(format!(
                "--input-size must be in 8..=512, got {}",
                self.input_size
            ));
        }
        self.augment
            .validate()
            .map_err(|e| format!("augmentation: {e}"))?;
        match &self.schedule {
            Schedule::Step { every, gamma } if *every == 0 || gamma.is_nan() || *gamma <= 0.0 => {
                Err("step schedule needs --step-every >= 1 and --gamma > 0".into())
            }
            Schedule::Plateau { factor, .. }
                if factor.is_nan() || *factor <= 0.0 || *factor >= 1.0 =>
            {
                Err("plateau schedule needs --plateau-factor in (0, 1)".into())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TrainConfig {
        TrainConfig {
            arch_name: "a".into(),
            arch_source: "a.json".into(),
            architecture: serde_json::json!({"name": "a", "layers": []}),
            data: "data/fer2013".into(),
            sources: Vec::new(),
            colour_mode: ColourMode::Grayscale,
            input_size: 48,
            normalisation: Normalisation::Unit,
            optimizer: OptimizerConfig::by_name("sgd").unwrap(),
            learning_rate: 0.01,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            batch_size: 32,
            epochs: 1,
            seed: 1,
            augment_preset: "none".into(),
            augment: AugmentConfig::none(),
            class_weights: ClassWeights::None,
            label_smoothing: 0.0,
            mixup: 0.0,
            early_stopping: None,
            valid_fraction: 0.1,
            max_train_per_class: None,
            max_valid_per_class: None,
            tag: "augment".into(),
            init_from: None,
            distill: None,
        }
    }

    #[test]
    fn a_data_run_keeps_its_old_config_json() {
        let cfg = config();
        let v = serde_json::to_value(&cfg).unwrap();
        // The config.json of runs made before sources existed: no `sources` key.
        assert!(v.get("sources").is_none());
        let back: TrainConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(
            cfg.source_list(),
            vec![SourceSpec::folder("data", &cfg.data)]
        );
        cfg.validate().unwrap();
    }

    #[test]
    fn sources_round_trip_and_are_checked() {
        let mut cfg = config();
        cfg.data = PathBuf::new();
        cfg.sources = vec![
            "fer=d/fer2013,labels=ferplus:d/votes.csv".parse().unwrap(),
            "d/affectnet7,weight=0.5".parse().unwrap(),
        ];
        cfg.validate().unwrap();
        let back: TrainConfig =
            serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(back.source_list().len(), 2);
        let mut both = cfg.clone();
        both.data = "d/x".into();
        assert!(both.validate().unwrap_err().contains("not both"));
        let mut twice = cfg.clone();
        twice.sources[1].name = "fer".into();
        assert!(twice.validate().unwrap_err().contains("two sources"));
        let mut none = cfg;
        none.sources.clear();
        assert!(none.validate().unwrap_err().contains("--data"));
    }
}
