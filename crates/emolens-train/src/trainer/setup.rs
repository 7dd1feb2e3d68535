//! What a run builds from its configuration before the first epoch: the input spec and model
//! metadata, the network (fresh, or `--init-from`'s weights), the optimiser and the loss's class
//! weights.

use std::path::Path;

use emolens_core::{InputSpec, ModelMeta};
use emolens_model::burn::optim::decay::WeightDecayConfig;
use emolens_model::burn::optim::momentum::MomentumConfig;
use emolens_model::burn::optim::ModuleOptimizer;
use emolens_model::burn::tensor::Device;
use emolens_model::{Architecture, ModelFile, Network};
use tracing::info;

use super::batch::TargetTable;
use crate::config::{ClassWeights, InitFrom, OptimizerConfig, TrainConfig};
use crate::error::TrainError;
use crate::fused_optim::{FusedAdam, FusedAdamW, FusedRmsProp, FusedSgd};

/// Model metadata for a network trained with `cfg`.
pub fn model_meta(
    cfg: &TrainConfig,
    classes: &[String],
    fingerprint: &str,
    name: &str,
) -> ModelMeta {
    let mut training = serde_json::to_value(cfg).unwrap_or_default();
    if let Some(t) = training.as_object_mut() {
        // The names of the sources the weights were trained on (`data` for a `--data` run).
        let names: Vec<String> = cfg.source_list().into_iter().map(|s| s.name).collect();
        t.insert("data_sources".into(), serde_json::json!(names));
    }
    ModelMeta {
        flip_tta: false,
        flip_tta_below: None,
        int8: None,
        format_version: ModelMeta::FORMAT_VERSION,
        name: name.to_string(),
        classes: classes.to_vec(),
        input: input_spec(cfg),
        architecture: cfg.architecture.clone(),
        training,
        data_fingerprint: Some(fingerprint.to_string()),
        metrics: Default::default(),
    }
}

pub fn input_spec(cfg: &TrainConfig) -> InputSpec {
    InputSpec {
        height: cfg.input_size,
        width: cfg.input_size,
        colour_mode: cfg.colour_mode,
        normalisation: cfg.normalisation.clone(),
    }
}

/// The network a run starts from: freshly initialised from the device's seed, or the weights of
/// `--init-from`.
pub(super) fn initial_network(
    cfg: &TrainConfig,
    arch: &Architecture,
    spec: &InputSpec,
    device: &Device,
) -> Result<Network, TrainError> {
    let model = Network::new(
        arch,
        spec.channels(),
        spec.height as usize,
        spec.width as usize,
        device,
    )
    .map_err(TrainError::Model)?;
    match &cfg.init_from {
        Some(init) => initial_weights(init, arch, spec, device),
        None => Ok(model),
    }
}

/// The network of a model file named by `--init-from`, checked against the run: the same
/// file (by SHA-256) as when the run was configured, the same architecture and input.
fn initial_weights(
    init: &InitFrom,
    arch: &Architecture,
    spec: &InputSpec,
    device: &Device,
) -> Result<Network, TrainError> {
    let bytes = std::fs::read(&init.path).map_err(|e| TrainError::io(&init.path, e))?;
    let sha = emolens_core::fingerprint::sha256_hex(&bytes);
    if sha != init.sha256 {
        return Err(TrainError::Config(format!(
            "--init-from {}: the file changed since the run was configured (sha256 {sha}, expected {}); restore it or start a new run",
            init.path.display(),
            init.sha256
        )));
    }
    let file = ModelFile::decode(&bytes, &init.path.display().to_string())?;
    if &file.arch != arch {
        return Err(TrainError::Config(format!(
            "--init-from {}: its architecture `{}` differs from --arch `{}`; fine-tuning needs the same layers",
            init.path.display(),
            file.arch.name,
            arch.name
        )));
    }
    check_same_input("--init-from", &init.path, &file.meta.input, spec, "")?;
    info!(from = %init.path.display(), "initial weights from a model file");
    Ok(file.network(device)?)
}

/// Refuses a model file (`--init-from`, `--teacher`) whose input (channels, size,
/// normalisation) differs from the run's; `hint` ends the message.
pub(crate) fn check_same_input(
    flag: &str,
    path: &Path,
    m: &InputSpec,
    spec: &InputSpec,
    hint: &str,
) -> Result<(), TrainError> {
    if (m.channels(), m.height, m.width) != (spec.channels(), spec.height, spec.width)
        || m.normalisation != spec.normalisation
    {
        return Err(TrainError::Config(format!(
            "{flag} {}: its input ({} channel(s), {}x{}, {:?}) differs from this run's ({} channel(s), {}x{}, {:?}){hint}",
            path.display(),
            m.channels(),
            m.width,
            m.height,
            m.normalisation,
            spec.channels(),
            spec.width,
            spec.height,
            spec.normalisation
        )));
    }
    Ok(())
}

/// The run's optimiser: burn's update computed by the fused, in-place steps of
/// [`crate::fused_optim`] (same results, same `optimizer.bin` layout).
pub(super) fn build_optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
    let wd = (cfg.weight_decay > 0.0).then_some(WeightDecayConfig::new(cfg.weight_decay as f32));
    match &cfg.optimizer {
        OptimizerConfig::Sgd { momentum, nesterov } => {
            let m = (*momentum > 0.0).then_some(MomentumConfig {
                momentum: *momentum,
                dampening: 0.0,
                nesterov: *nesterov,
            });
            ModuleOptimizer::from(FusedSgd::new(m, wd))
        }
        OptimizerConfig::Adam {
            beta1,
            beta2,
            epsilon,
        } => ModuleOptimizer::from(FusedAdam::new(*beta1, *beta2, *epsilon, wd)),
        OptimizerConfig::AdamW {
            beta1,
            beta2,
            epsilon,
        } => ModuleOptimizer::from(FusedAdamW::new(
            *beta1,
            *beta2,
            *epsilon,
            cfg.weight_decay as f32,
        )),
        OptimizerConfig::RmsProp {
            rho,
            momentum,
            epsilon,
        } => ModuleOptimizer::from(FusedRmsProp::new(*rho, *momentum, *epsilon, wd)),
    }
}

/// The loss's class weights. `balanced` is scikit-learn's `n / (classes * count[c])` with
/// soft counts: `count[c]` sums every training image's target mass on `c` times its source's
/// sampling weight (so with hard labels and one source, the plain class counts).
pub(super) fn class_weights(
    cfg: &TrainConfig,
    targets: &TargetTable,
    weight_of_image: &[f64],
) -> Result<Option<Vec<f32>>, TrainError> {
    let classes = targets.classes;
    match &cfg.class_weights {
        ClassWeights::None => Ok(None),
        ClassWeights::Custom(w) => {
            if w.len() != classes {
                return Err(TrainError::Config(format!(
                    "--class-weights lists {} weights but the dataset has {classes} classes",
                    w.len()
                )));
            }
            if w.iter().any(|x| !x.is_finite() || *x < 0.0) || w.iter().all(|x| *x == 0.0) {
                return Err(TrainError::Config(format!(
                    "--class-weights {w:?}: weights must be non-negative numbers, not all 0"
                )));
            }
            Ok(Some(w.clone()))
        }
        ClassWeights::Balanced => {
            let mut counts = vec![0f64; classes];
            for (i, &w) in weight_of_image.iter().enumerate() {
                for (c, &t) in targets.row(i).iter().enumerate() {
                    counts[c] += w * t as f64;
                }
            }
            let n = counts.iter().sum::<f64>() as f32;
            Ok(Some(
                counts
                    .iter()
                    .map(|&c| {
                        if c == 0.0 {
                            0.0
                        } else {
                            n / (classes as f32 * c as f32)
                        }
                    })
                    .collect(),
            ))
        }
    }
}
