//! The training loop: data order, augmentation, optimiser steps, validation, history,
//! checkpoints and exact resume.
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

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use emolens_core::fingerprint::sha256_hex;
use emolens_core::{InputSpec, ModelMeta, Preprocessor};
use emolens_data::{
    apply_augment, load_cache, open_source, AugmentConfig, ImageCache, Sample, SourceSplits,
    ValidKind,
};
use emolens_model::burn::module::Module;
use emolens_model::burn::nn::loss::CrossEntropyLossConfig;
use emolens_model::burn::optim::decay::WeightDecayConfig;
use emolens_model::burn::optim::momentum::MomentumConfig;
use emolens_model::burn::optim::{GradientsParams, ModuleOptimizer};
use emolens_model::burn::store::ModuleRecord;
use emolens_model::burn::tensor::{Bytes, Device, Int, Tensor, TensorData};
use emolens_model::{Architecture, ModelFile, Network};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::{ClassWeights, OptimizerConfig, TrainConfig};
use crate::distill::Teacher;
use crate::error::TrainError;
use crate::fused_optim::{FusedAdam, FusedAdamW, FusedRmsProp, FusedSgd};
use crate::history::History;
use crate::loss::{targets_tensor, SoftCrossEntropy};
use crate::schedule::{learning_rate, PlateauState};

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
    fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }
    fn state_json(&self) -> PathBuf {
        self.state_dir().join("trainer.json")
    }
    fn state_weights(&self) -> PathBuf {
        self.state_dir().join("model.bpk")
    }
    fn state_optim(&self) -> PathBuf {
        self.state_dir().join("optimizer.bin")
    }
}

/// Writes a file atomically (temp file + rename), so a kill never leaves a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| TrainError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Seed for a `(seed, epoch, stream)` triple.
fn derive_seed(seed: u64, epoch: usize, stream: u64) -> u64 {
    splitmix(splitmix(seed ^ splitmix(epoch as u64)) ^ stream)
}

/// How many training images source `n` images large with sampling weight `weight` gives an
/// epoch: `round(weight * n)`, at least 1 (0 for an empty source).
pub fn draws_per_epoch(n: usize, weight: f64) -> usize {
    if n == 0 {
        0
    } else {
        ((weight * n as f64).round() as usize).max(1)
    }
}

/// The images of one epoch, in order. `by_source[s]` lists source `s`'s images (cache indices);
/// it contributes `k = draws_per_epoch(n, weights[s])` draws: each of its images `k / n` times,
/// plus `k % n` images picked without replacement by a `ChaCha8Rng` seeded from
/// `(seed, epoch, 16 + s)`. All draws are then shuffled with the `(seed, epoch, 2)` stream. One
/// source of weight 1 gives every image once in the order single-source runs always had.
pub fn epoch_order(
    by_source: &[Vec<usize>],
    weights: &[f64],
    seed: u64,
    epoch: usize,
) -> Vec<usize> {
    let mut order = Vec::new();
    for (s, (idx, &w)) in by_source.iter().zip(weights).enumerate() {
        let n = idx.len();
        let k = draws_per_epoch(n, w);
        if n == 0 {
            continue;
        }
        for _ in 0..k / n {
            order.extend_from_slice(idx);
        }
        if k % n > 0 {
            let mut pick = idx.clone();
            pick.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(
                seed,
                epoch,
                16 + s as u64,
            )));
            order.extend_from_slice(&pick[..k % n]);
        }
    }
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(seed, epoch, 2)));
    order
}

/// A batch ready for the network.
struct Batch {
    images: Vec<f32>,
    labels: Vec<i64>,
    /// `[batch, classes]` target rows (training batches only).
    targets: Vec<f32>,
}

/// Builds batch `b` of an epoch: picks the images in the epoch's order, augments each with its
/// own seeded RNG (so threads never change the result) and normalises them.
#[allow(clippy::too_many_arguments)]
fn make_batch(
    cache: &ImageCache,
    targets: Option<&TargetTable>,
    order: &[usize],
    pre: &Preprocessor,
    augment: &AugmentConfig,
    seed: u64,
    epoch: usize,
    start: usize,
    mixup: f32,
    teacher: Option<&Teacher>,
) -> Result<Batch, TrainError> {
    let len = cache.image_len();
    let mut images = vec![0f32; order.len() * len];
    let do_aug = !augment.is_none();
    images
        .par_chunks_mut(len)
        .zip(order.par_iter().enumerate())
        .for_each(|(out, (k, &idx))| {
            let src = cache.image(idx);
            if do_aug {
                let mut rng =
                    ChaCha8Rng::seed_from_u64(derive_seed(seed, epoch, (start + k) as u64));
                let params = augment.sample(&mut rng);
                let mut px = vec![0u8; len];
                apply_augment(
                    &params,
                    src,
                    cache.channels,
                    cache.height,
                    cache.width,
                    &mut px,
                );
                pre.normalise_into(&px, out);
            } else {
                pre.normalise_into(src, out);
            }
        });
    let labels = order.iter().map(|&i| cache.labels[i] as i64).collect();
    let mut targets: Vec<f32> = match targets {
        Some(t) => order.iter().flat_map(|&i| t.row(i)).copied().collect(),
        None => Vec::new(),
    };
    if mixup > 0.0 && !targets.is_empty() && order.len() > 1 {
        let mut rng =
            ChaCha8Rng::seed_from_u64(derive_seed(seed, epoch, MIXUP_STREAM + start as u64));
        mix_batch(&mut images, &mut targets, order.len(), mixup, &mut rng);
    }
    if let Some(t) = teacher {
        if !targets.is_empty() {
            t.blend(&images, order.len(), &mut targets)?;
        }
    }
    Ok(Batch {
        images,
        labels,
        targets,
    })
}

/// The seed stream of mixup draws, apart from the per-image augmentation streams (`start + k`).
const MIXUP_STREAM: u64 = 1 << 40;

/// A draw from Beta(a, a) by Jöhnk's method (exact for any a > 0; accepts often for a <= 1,
/// the range mixup uses).
fn beta_symmetric(a: f32, rng: &mut impl Rng) -> f32 {
    let inv = 1.0 / a as f64;
    loop {
        let x = rng.random::<f64>().powf(inv);
        let y = rng.random::<f64>().powf(inv);
        let s = x + y;
        if s <= 1.0 && s > 0.0 {
            return (x / s) as f32;
        }
    }
}

/// Mixup over one batch: image `k` becomes `l x_k + (1 - l) x_p(k)` for a random partner
/// permutation `p`, its target likewise, with `l` from Beta(alpha, alpha) folded to `l >= 0.5`
/// so each image keeps the larger share (its hard label, used for the running accuracy, stays).
fn mix_batch(images: &mut [f32], targets: &mut [f32], n: usize, alpha: f32, rng: &mut impl Rng) {
    let img_len = images.len() / n;
    let classes = targets.len() / n;
    let mut partner: Vec<usize> = (0..n).collect();
    partner.shuffle(rng);
    let src_images = images.to_vec();
    let src_targets = targets.to_vec();
    for (k, &p) in partner.iter().enumerate() {
        if p == k {
            continue;
        }
        let l = beta_symmetric(alpha, rng);
        let l = l.max(1.0 - l);
        let (a, b) = (l, 1.0 - l);
        let out = &mut images[k * img_len..(k + 1) * img_len];
        let other = &src_images[p * img_len..(p + 1) * img_len];
        for (o, &x) in out.iter_mut().zip(other) {
            *o = a * *o + b * x;
        }
        let out = &mut targets[k * classes..(k + 1) * classes];
        let other = &src_targets[p * classes..(p + 1) * classes];
        for (o, &x) in out.iter_mut().zip(other) {
            *o = a * *o + b * x;
        }
    }
}

/// One target distribution per training image, `classes` values each.
struct TargetTable {
    classes: usize,
    rows: Vec<f32>,
}

impl TargetTable {
    fn row(&self, i: usize) -> &[f32] {
        &self.rows[i * self.classes..(i + 1) * self.classes]
    }
}

/// The run's optimiser: burn's update computed by the fused, in-place steps of
/// [`crate::fused_optim`] (same results, same `optimizer.bin` layout).
fn build_optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
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
fn class_weights(
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

/// Loss and accuracy of `net` (validation mode) on a whole cache.
pub fn evaluate(
    net: &Network,
    cache: &ImageCache,
    pre: &Preprocessor,
    device: &Device,
) -> (f64, f64) {
    if cache.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let order: Vec<usize> = (0..cache.len()).collect();
    let mut loss_sum = 0.0;
    let mut correct = 0i64;
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let none = AugmentConfig::none();
    for chunk in order.chunks(256) {
        let b = make_batch(cache, None, chunk, pre, &none, 0, 0, 0, 0.0, None)
            .expect("a batch without a teacher cannot fail");
        let (x, y) = to_tensors(&b, cache, device);
        let logits = net.forward(x);
        let loss: f64 = loss_fn
            .forward(logits.clone(), y.clone())
            .into_scalar::<f32>() as f64;
        loss_sum += loss * chunk.len() as f64;
        correct += logits
            .argmax(1)
            .reshape([chunk.len()])
            .equal(y)
            .int()
            .sum()
            .into_scalar::<i64>();
    }
    (
        loss_sum / cache.len() as f64,
        correct as f64 / cache.len() as f64,
    )
}

fn to_tensors(b: &Batch, cache: &ImageCache, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let n = b.labels.len();
    let x = Tensor::from_data(
        TensorData::new(
            b.images.clone(),
            [n, cache.channels, cache.height, cache.width],
        ),
        device,
    );
    let y = Tensor::from_data(TensorData::new(b.labels.clone(), [n]), device);
    (x, y)
}

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

/// The network of a model file named by `--init-from`, checked against the run: the same
/// file (by SHA-256) as when the run was configured, the same architecture and input.
fn initial_weights(
    init: &crate::config::InitFrom,
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

/// Trains (or resumes) the run described by `cfg` in `run_dir`.
pub fn train(
    cfg: &TrainConfig,
    run_dir: &Path,
    opts: &RunOptions,
) -> Result<RunOutcome, TrainError> {
    cfg.validate().map_err(TrainError::Config)?;
    // Open the data first, so a wrong --data or --source leaves no run folder behind.
    let sources = open_sources(cfg)?;
    let files = RunFiles {
        dir: run_dir.to_path_buf(),
    };
    std::fs::create_dir_all(files.state_dir())
        .map_err(|e| TrainError::io(&files.state_dir(), e))?;

    // A resumed run must be the same run: refuse a changed configuration.
    if opts.resume && files.config().exists() {
        let saved: TrainConfig = serde_json::from_slice(
            &std::fs::read(files.config()).map_err(|e| TrainError::io(&files.config(), e))?,
        )
        .map_err(|e| {
            TrainError::Config(format!(
                "{}: unreadable ({e}); delete the run folder to start over",
                files.config().display()
            ))
        })?;
        if &saved != cfg {
            return Err(TrainError::Config(format!(
                "{} holds a run with a different configuration; use another --runs-dir or --name, or delete it to start over",
                run_dir.display()
            )));
        }
    }
    write_atomic(
        &files.config(),
        serde_json::to_string_pretty(cfg)
            .expect("config serialises")
            .as_bytes(),
    )?;

    let arch = Architecture::from_value(cfg.architecture.clone()).map_err(TrainError::Model)?;
    let spec = input_spec(cfg);
    let pre = Preprocessor::new(spec.clone());

    // Data.
    let data = load_data(cfg, &sources, &pre, opts.progress)?;
    let classes = sources[0].classes.clone();
    write_atomic(
        &files.dataset(),
        serde_json::to_string_pretty(&data.dataset_json(cfg, &sources, &classes))
            .expect("json")
            .as_bytes(),
    )?;
    write_atomic(
        &files.files(),
        serde_json::to_string_pretty(&data.files_json(&sources))
            .expect("json")
            .as_bytes(),
    )?;
    let fingerprint = data.fingerprint.clone();
    let train_cache = &data.train;

    // Model, optimiser, state.
    let device = opts.device.clone().autodiff();
    device.seed(cfg.seed);
    let mut model = Network::new(
        &arch,
        spec.channels(),
        spec.height as usize,
        spec.width as usize,
        &device,
    )
    .map_err(TrainError::Model)?;
    if let Some(init) = &cfg.init_from {
        model = initial_weights(init, &arch, &spec, &device)?;
    }
    let mut optim = build_optimizer(cfg);
    let mut state = TrainerState {
        epochs_done: 0,
        steps_done: 0,
        history: History::default(),
        best_val_accuracy: f64::NEG_INFINITY,
        best_epoch: None,
        plateau: PlateauState::new(),
        epochs_without_improvement: 0,
        finished: false,
        stopped_early: false,
    };
    if opts.resume && files.state_json().exists() {
        state = serde_json::from_slice(
            &std::fs::read(files.state_json())
                .map_err(|e| TrainError::io(&files.state_json(), e))?,
        )
        .map_err(|e| {
            TrainError::Config(format!(
                "{}: unreadable resume state ({e})",
                files.state_json().display()
            ))
        })?;
        let w = std::fs::read(files.state_weights())
            .map_err(|e| TrainError::io(&files.state_weights(), e))?;
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(w))
            .map_err(|e| TrainError::Config(format!("resume weights unreadable: {e}")))?;
        model = model
            .try_load_record(record)
            .map_err(|e| TrainError::Config(format!("resume weights do not fit: {e}")))?;
        let o = std::fs::read(files.state_optim())
            .map_err(|e| TrainError::io(&files.state_optim(), e))?;
        optim = optim
            .from_bytes(Bytes::from_bytes_vec(o))
            .map_err(|e| TrainError::Config(format!("resume optimiser state unreadable: {e}")))?;
        info!(epochs_done = state.epochs_done, "resuming run");
    }

    info!(
        kernels = emolens_model::onednn::cpu_kernels(),
        "CPU kernels for convolution, batch norm and pooling"
    );
    let weight_of_image: Vec<f64> = data
        .source_of
        .iter()
        .map(|&s| sources[s].spec.weight)
        .collect();
    let weights = class_weights(cfg, &data.targets, &weight_of_image)?;
    let loss_fn = SoftCrossEntropy::new(
        classes.len(),
        weights.as_deref(),
        cfg.label_smoothing,
        &device,
    );
    let source_weights: Vec<f64> = sources.iter().map(|s| s.spec.weight).collect();
    let teacher = cfg
        .distill
        .as_ref()
        .map(|d| Teacher::load(d, &spec, &classes))
        .transpose()?;

    let n = data.images_per_epoch;
    let steps_per_epoch = n.div_ceil(cfg.batch_size);
    let mut epochs_this_call = 0;
    let run_name = run_dir
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("run")
        .to_string();

    while state.epochs_done < cfg.epochs && !state.finished {
        if opts
            .stop_after_epochs
            .is_some_and(|k| epochs_this_call >= k)
        {
            break;
        }
        let epoch = state.epochs_done;
        let started = Instant::now();
        // Reseed the backend (dropout masks) and derive this epoch's order from the seed alone.
        device.seed(derive_seed(cfg.seed, epoch, 1));
        let order = epoch_order(&data.by_source, &source_weights, cfg.seed, epoch);
        debug_assert_eq!(order.len(), n);

        let bar = if opts.progress {
            let b = ProgressBar::new(n as u64);
            b.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} img {per_sec} ETA {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(format!("{}/{}", epoch + 1, cfg.epochs));
            b
        } else {
            ProgressBar::hidden()
        };

        let mut loss_sum = 0.0f64;
        let mut correct = 0i64;
        let mut lr = cfg.learning_rate;
        // Batches are prepared on a second thread, one ahead, so the optimiser never waits.
        model = std::thread::scope(|scope| -> Result<Network, TrainError> {
            let mut model = model;
            let (tx, rx) = sync_channel::<(usize, Result<Batch, TrainError>)>(2);
            let teacher_ref = teacher.as_ref();
            let order_ref = &order;
            let cache_ref = train_cache;
            let targets_ref = &data.targets;
            let pre_ref = &pre;
            scope.spawn(move || {
                for (bi, chunk) in order_ref.chunks(cfg.batch_size).enumerate() {
                    let b = make_batch(
                        cache_ref,
                        Some(targets_ref),
                        chunk,
                        pre_ref,
                        &cfg.augment,
                        cfg.seed,
                        epoch,
                        bi * cfg.batch_size,
                        cfg.mixup,
                        teacher_ref,
                    );
                    if tx.send((bi, b)).is_err() {
                        break;
                    }
                }
            });
            for (bi, batch) in rx {
                let batch = batch?;
                let bsz = batch.labels.len();
                let (x, y) = to_tensors(&batch, train_cache, &device);
                let t = targets_tensor(&batch.targets, classes.len(), &device);
                let logits = model.forward(x);
                let loss = loss_fn.forward(logits.clone(), t);
                let loss_v: f64 = loss.clone().into_scalar::<f32>() as f64;
                if !loss_v.is_finite() {
                    return Err(TrainError::Diverged {
                        epoch: epoch + 1,
                        step: bi + 1,
                    });
                }
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                lr = learning_rate(
                    &cfg.schedule,
                    cfg.learning_rate,
                    epoch,
                    state.steps_done,
                    steps_per_epoch,
                    cfg.epochs,
                    &state.plateau,
                );
                model = optim.step(lr, model, grads);
                state.steps_done += 1;
                let c = logits
                    .argmax(1)
                    .reshape([bsz])
                    .equal(y)
                    .int()
                    .sum()
                    .into_scalar::<i64>();
                loss_sum += loss_v * bsz as f64;
                correct += c;
                bar.inc(bsz as u64);
                bar.set_message(format!(
                    "loss {:.4} acc {:.4}",
                    loss_sum / bar.position() as f64,
                    correct as f64 / bar.position() as f64
                ));
            }
            Ok(model)
        })?;
        bar.finish_and_clear();

        let train_loss = loss_sum / n as f64;
        let train_acc = correct as f64 / n as f64;
        let valid_net = model.valid();
        let per_source: Vec<(f64, f64, usize)> = data
            .valid
            .iter()
            .map(|c| {
                let (l, a) = evaluate(&valid_net, c, &pre, &opts.device);
                (l, a, c.len())
            })
            .collect();
        let (val_loss, val_acc) = pooled(&per_source);
        let secs = started.elapsed().as_secs_f64();
        state
            .history
            .push(train_loss, train_acc, val_loss, val_acc, lr, secs);
        if sources.len() > 1 {
            for (src, &(l, a, len)) in sources.iter().zip(&per_source) {
                if len > 0 {
                    state.history.push_source(&src.spec.name, l, a);
                }
            }
        }
        state.epochs_done += 1;
        state
            .plateau
            .observe(&cfg.schedule, cfg.learning_rate, val_loss);
        let improved = val_acc > state.best_val_accuracy;
        info!(
            run = %run_name,
            epoch = epoch + 1,
            epochs = cfg.epochs,
            loss = format!("{train_loss:.4}"),
            accuracy = format!("{train_acc:.4}"),
            val_loss = format!("{val_loss:.4}"),
            val_accuracy = format!("{val_acc:.4}"),
            lr = format!("{lr:.3e}"),
            seconds = format!("{secs:.1}"),
            img_per_s = format!("{:.1}", n as f64 / secs),
            best = improved,
            "epoch done"
        );
        if improved {
            state.best_val_accuracy = val_acc;
            state.best_epoch = Some(epoch + 1);
            state.epochs_without_improvement = 0;
            let mut meta = model_meta(cfg, &classes, &fingerprint, &run_name);
            meta.metrics.insert("val_accuracy".into(), val_acc);
            meta.metrics.insert("val_loss".into(), val_loss);
            meta.metrics.insert("epoch".into(), (epoch + 1) as f64);
            let bytes = ModelFile::encode(&meta, valid_net).map_err(TrainError::Model)?;
            write_atomic(&files.best(), &bytes)?;
        } else {
            state.epochs_without_improvement += 1;
        }
        if cfg
            .early_stopping
            .is_some_and(|p| state.epochs_without_improvement >= p)
        {
            info!(
                epoch = epoch + 1,
                "early stopping: val_accuracy has not improved"
            );
            state.stopped_early = true;
            state.finished = true;
        }
        if state.epochs_done == cfg.epochs {
            state.finished = true;
        }
        // Resume state last: weights, optimiser, then the small JSON that says they are complete.
        let w = model
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| TrainError::Config(format!("saving weights: {e}")))?;
        write_atomic(&files.state_weights(), &w)?;
        let o = optim
            .into_bytes()
            .map_err(|e| TrainError::Config(format!("saving optimiser state: {e}")))?;
        write_atomic(&files.state_optim(), &o)?;
        write_atomic(&files.history(), state.history.to_keras_json().as_bytes())?;
        write_atomic(
            &files.state_json(),
            serde_json::to_string_pretty(&state)
                .expect("state")
                .as_bytes(),
        )?;
        epochs_this_call += 1;
    }

    if state.finished {
        let mut meta = model_meta(cfg, &classes, &fingerprint, &run_name);
        if let Some(last) = state.history.val_accuracy.last() {
            meta.metrics.insert("val_accuracy".into(), *last);
        }
        let bytes = ModelFile::encode(&meta, model.valid()).map_err(TrainError::Model)?;
        write_atomic(&files.final_model(), &bytes)?;
    }
    Ok(RunOutcome {
        run_dir: run_dir.to_path_buf(),
        history: state.history,
        best_val_accuracy: state.best_val_accuracy,
        best_epoch: state.best_epoch,
        finished: state.finished,
        best_model: files.best(),
    })
}

/// The run's validation loss and accuracy from each source's `(loss, accuracy, images)`: over
/// the union of the validation sets (the size-weighted mean); a source's own values when only
/// one has validation images; NaN when none has.
fn pooled(per_source: &[(f64, f64, usize)]) -> (f64, f64) {
    let used: Vec<&(f64, f64, usize)> = per_source.iter().filter(|x| x.2 > 0).collect();
    match used.as_slice() {
        [] => (f64::NAN, f64::NAN),
        [one] => (one.0, one.1),
        many => {
            let n: usize = many.iter().map(|x| x.2).sum();
            let loss = many.iter().map(|x| x.0 * x.2 as f64).sum::<f64>() / n as f64;
            let acc = many.iter().map(|x| x.1 * x.2 as f64).sum::<f64>() / n as f64;
            (loss, acc)
        }
    }
}

/// Opens every source of the run (capped per class as the config says) and checks they share
/// one class list.
fn open_sources(cfg: &TrainConfig) -> Result<Vec<SourceSplits>, TrainError> {
    let mut out: Vec<SourceSplits> = Vec::new();
    for spec in cfg.source_list() {
        let mut s = open_source(&spec, cfg.valid_fraction, cfg.seed).map_err(|e| {
            if cfg.sources.is_empty() {
                TrainError::Data(e)
            } else {
                TrainError::Config(format!("--source {}: {e}", spec.name))
            }
        })?;
        s.limit_per_class(cfg.max_train_per_class, cfg.max_valid_per_class);
        if s.train.is_empty() {
            return Err(TrainError::Config(format!(
                "{}: no training images found",
                spec.path.display()
            )));
        }
        if let Some(first) = out.first() {
            if first.classes != s.classes {
                return Err(TrainError::Config(format!(
                    "source {} has the classes {:?} but source {} has {:?}; every source of a run needs the same classes",
                    spec.name, s.classes, first.spec.name, first.classes
                )));
            }
        }
        for p in &s.problems {
            warn!(source = %spec.name, problem = %p, "dataset problem");
        }
        out.push(s);
    }
    Ok(out)
}

/// The decoded data of a run.
struct RunData {
    /// Every source's training images.
    train: ImageCache,
    /// Target distribution of each training image.
    targets: TargetTable,
    /// Source of each training image.
    source_of: Vec<usize>,
    /// Each source's training images (indices into `train`).
    by_source: Vec<Vec<usize>>,
    /// Each source's validation images.
    valid: Vec<ImageCache>,
    /// Training images drawn per epoch, all sources together.
    images_per_epoch: usize,
    /// Each training image's index into the concatenation of the sources' train items.
    item_of: Vec<usize>,
    /// What the model file records as its data fingerprint.
    fingerprint: String,
    skipped: Vec<String>,
}

/// Decodes every source's training images into one cache (through the run's one
/// [`Preprocessor`], so every source arrives in the run's colour mode and size) and each
/// source's validation images into its own.
fn load_data(
    cfg: &TrainConfig,
    sources: &[SourceSplits],
    pre: &Preprocessor,
    progress: bool,
) -> Result<RunData, TrainError> {
    let classes = sources[0].classes.len();
    let items: Vec<(usize, &emolens_data::SourceItem)> = sources
        .iter()
        .enumerate()
        .flat_map(|(s, src)| src.train.iter().map(move |it| (s, it)))
        .collect();
    let samples: Vec<Sample> = items.iter().map(|(_, it)| it.sample.clone()).collect();
    let t0 = Instant::now();
    let (train, p1) = load_cache(&samples, pre, progress);
    let mut skipped: Vec<String> = p1.iter().map(|p| p.to_string()).collect();
    let mut valid = Vec::new();
    for src in sources {
        let vs: Vec<Sample> = src.valid.iter().map(|it| it.sample.clone()).collect();
        let (c, p) = load_cache(&vs, pre, progress);
        skipped.extend(p.iter().map(|p| p.to_string()));
        valid.push(c);
    }
    for p in &skipped {
        warn!(problem = %p, "skipped file");
    }
    let mut rows = Vec::with_capacity(train.len() * classes);
    let mut source_of = Vec::with_capacity(train.len());
    let mut by_source = vec![Vec::new(); sources.len()];
    for (j, &k) in train.sample_index.iter().enumerate() {
        let (s, it) = items[k];
        match &it.target {
            Some(t) if t.len() == classes => rows.extend_from_slice(t),
            Some(t) => {
                return Err(TrainError::Config(format!(
                    "source {}: {} has a target of {} values for {classes} classes",
                    sources[s].spec.name,
                    it.key,
                    t.len()
                )))
            }
            None => rows.extend((0..classes).map(|c| (c == it.sample.class) as u8 as f32)),
        }
        source_of.push(s);
        by_source[s].push(j);
    }
    for (s, idx) in by_source.iter().enumerate() {
        if idx.is_empty() {
            return Err(TrainError::Config(format!(
                "source {}: none of its training images could be decoded",
                sources[s].spec.name
            )));
        }
    }
    let images_per_epoch = by_source
        .iter()
        .zip(sources)
        .map(|(idx, s)| draws_per_epoch(idx.len(), s.spec.weight))
        .sum();
    info!(
        train = train.len(),
        valid = valid.iter().map(ImageCache::len).sum::<usize>(),
        images_per_epoch,
        seconds = format!("{:.1}", t0.elapsed().as_secs_f64()),
        "decoded images into memory"
    );
    let fingerprint = if cfg.sources.is_empty() {
        train.fingerprint()
    } else {
        let lines: String = sources
            .iter()
            .zip(&by_source)
            .map(|(s, idx)| {
                format!(
                    "{}\t{}\t{}\t{}\n",
                    s.spec.name,
                    train.fingerprint_of(idx.iter().copied()),
                    s.votes_sha256.as_deref().unwrap_or("-"),
                    s.spec.weight
                )
            })
            .collect();
        sha256_hex(lines.as_bytes())
    };
    let item_of = train.sample_index.clone();
    Ok(RunData {
        train,
        targets: TargetTable { classes, rows },
        source_of,
        by_source,
        valid,
        images_per_epoch,
        item_of,
        fingerprint,
        skipped,
    })
}

fn per_class(classes: &[String], labels: impl Iterator<Item = u32>) -> serde_json::Value {
    let mut counts = vec![0usize; classes.len()];
    for l in labels {
        counts[l as usize] += 1;
    }
    serde_json::Value::Object(
        classes
            .iter()
            .zip(counts)
            .map(|(c, n)| (c.clone(), n.into()))
            .collect(),
    )
}

impl RunData {
    /// The train items (per source) of the decoded training images.
    fn train_keys<'a>(&self, sources: &'a [SourceSplits]) -> Vec<&'a str> {
        let all: Vec<&str> = sources
            .iter()
            .flat_map(|s| s.train.iter().map(|it| it.key.as_str()))
            .collect();
        self.item_of.iter().map(|&k| all[k]).collect()
    }

    /// `dataset.json`: every source with its path, weight, labels, validation, counts per split
    /// and class, exclusions and fingerprints.
    fn dataset_json(
        &self,
        cfg: &TrainConfig,
        sources: &[SourceSplits],
        classes: &[String],
    ) -> serde_json::Value {
        let src_json: Vec<serde_json::Value> = sources
            .iter()
            .enumerate()
            .map(|(s, src)| {
                let idx = &self.by_source[s];
                let v = &self.valid[s];
                let mut mass = vec![0f64; classes.len()];
                for &i in idx {
                    for (c, &t) in self.targets.row(i).iter().enumerate() {
                        mass[c] += t as f64;
                    }
                }
                let mass: serde_json::Map<String, serde_json::Value> = classes
                    .iter()
                    .zip(mass)
                    .map(|(c, m)| (c.clone(), serde_json::json!((m * 1000.0).round() / 1000.0)))
                    .collect();
                let carved: Vec<&str> = if src.valid_kind == ValidKind::Carved {
                    let mut k: Vec<&str> = src.valid.iter().map(|it| it.key.as_str()).collect();
                    k.sort();
                    k
                } else {
                    Vec::new()
                };
                serde_json::json!({
                    "name": src.spec.name,
                    "path": src.spec.path,
                    "weight": src.spec.weight,
                    "labels": src.spec.labels,
                    "votes_sha256": src.votes_sha256,
                    "validation": src.valid_kind,
                    "train_images": idx.len(),
                    "valid_images": v.len(),
                    "images_per_epoch": draws_per_epoch(idx.len(), src.spec.weight),
                    "train_per_class": per_class(classes, idx.iter().map(|&i| self.train.labels[i])),
                    "train_target_mass": mass,
                    "valid_per_class": per_class(classes, v.labels.iter().copied()),
                    "label_origin": src.label_origin,
                    "excluded": src.excluded,
                    "carved_valid_files": carved,
                    "train_fingerprint": self.train.fingerprint_of(idx.iter().copied()),
                    "valid_fingerprint": v.fingerprint(),
                })
            })
            .collect();
        let mut j = serde_json::json!({
            "classes": classes,
            "train_images": self.train.len(),
            "valid_images": self.valid.iter().map(ImageCache::len).sum::<usize>(),
            "images_per_epoch": self.images_per_epoch,
            "valid_fraction": cfg.valid_fraction,
            "max_train_per_class": cfg.max_train_per_class,
            "max_valid_per_class": cfg.max_valid_per_class,
            "counts": "train_images, valid_images and the per-class counts are of the images used (after the caps); label_origin and excluded count every file of a source (before the caps)",
            "sampling": "each epoch draws round(weight * train images) from every source: each image weight times (whole part), the rest a seeded random subset, all shuffled",
            "validation": "val_accuracy and val_loss (which pick best.emolens) are over the union of every source's validation set; history.json has val_accuracy_<source> per source when there are several",
            "data_fingerprint": self.fingerprint,
            "train_fingerprint": self.train.fingerprint(),
            "skipped_files": self.skipped,
            "sources": src_json,
        });
        if let Some(o) = j.as_object_mut() {
            if cfg.sources.is_empty() {
                // The keys of single-dataset runs, as they always were.
                o.insert("source".into(), serde_json::json!(cfg.data));
                o.insert(
                    "valid_carved".into(),
                    serde_json::json!(sources[0].valid_kind == ValidKind::Carved),
                );
                o.insert(
                    "carved_valid_files".into(),
                    src_json[0]["carved_valid_files"].clone(),
                );
                o.insert(
                    "valid_fingerprint".into(),
                    serde_json::json!(self.valid[0].fingerprint()),
                );
            } else {
                let all: String = self.valid.iter().map(|c| c.fingerprint() + "\n").collect();
                o.insert(
                    "valid_fingerprint".into(),
                    serde_json::json!(sha256_hex(all.as_bytes())),
                );
            }
        }
        j
    }

    /// `files.json`: per source, the relative paths of its training and validation files.
    fn files_json(&self, sources: &[SourceSplits]) -> serde_json::Value {
        let keys = self.train_keys(sources);
        let mut out = serde_json::Map::new();
        for (s, src) in sources.iter().enumerate() {
            let mut train: Vec<&str> = self.by_source[s].iter().map(|&i| keys[i]).collect();
            train.sort();
            let mut valid: Vec<&str> = self.valid[s]
                .sample_index
                .iter()
                .map(|&k| src.valid[k].key.as_str())
                .collect();
            valid.sort();
            out.insert(
                src.spec.name.clone(),
                serde_json::json!({"root": src.spec.path, "train": train, "valid": valid}),
            );
        }
        serde_json::Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_order_draws_by_weight_and_keeps_the_single_source_order() {
        // One source of weight 1: the order single-source runs always had.
        let mut old: Vec<usize> = (0..50).collect();
        old.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(7, 3, 2)));
        assert_eq!(epoch_order(&[(0..50).collect()], &[1.0], 7, 3), old);

        let a: Vec<usize> = (0..40).collect();
        let b: Vec<usize> = (40..100).collect();
        let o = epoch_order(&[a.clone(), b.clone()], &[1.5, 0.5], 7, 0);
        assert_eq!(o.len(), 60 + 30);
        let count = |i: usize| o.iter().filter(|&&x| x == i).count();
        // Weight 1.5: every image once, half of them twice; weight 0.5: half, none twice.
        assert!(a.iter().all(|&i| (1..=2).contains(&count(i))));
        assert_eq!(a.iter().filter(|&&i| count(i) == 2).count(), 20);
        assert!(b.iter().all(|&i| count(i) <= 1));
        // Deterministic from (seed, epoch); another epoch draws another half.
        assert_eq!(o, epoch_order(&[a.clone(), b.clone()], &[1.5, 0.5], 7, 0));
        let half = |o: &[usize]| {
            let mut h: Vec<usize> = o.iter().copied().filter(|&i| i >= 40).collect();
            h.sort();
            h
        };
        assert_ne!(half(&o), half(&epoch_order(&[a, b], &[1.5, 0.5], 7, 1)));
        assert_eq!(draws_per_epoch(3, 0.01), 1);
        assert_eq!(draws_per_epoch(0, 2.0), 0);
    }

    #[test]
    fn mixup_blends_images_and_targets_alike() {
        let n = 8;
        let mut images: Vec<f32> = (0..n * 3).map(|i| (i / 3) as f32).collect();
        let mut targets = vec![0f32; n * 7];
        for k in 0..n {
            targets[k * 7 + k % 7] = 1.0;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        mix_batch(&mut images, &mut targets, n, 0.4, &mut rng);
        let mut mixed = 0;
        for k in 0..n {
            let t = &targets[k * 7..(k + 1) * 7];
            assert!((t.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            // The image keeps the larger share of its own class.
            assert!(t[k % 7] >= 0.5, "{t:?}");
            let px = &images[k * 3..(k + 1) * 3];
            assert!(
                px.iter().all(|&v| v == px[0]),
                "pixels of one image mix alike"
            );
            if t[k % 7] < 1.0 {
                mixed += 1;
                // Pixel = l * k + (1 - l) * partner, with l the target's own share.
                let l = t[k % 7];
                let partner = (px[0] - l * k as f32) / (1.0 - l);
                assert!((partner - partner.round()).abs() < 1e-3, "{partner}");
            }
        }
        assert!(mixed >= n / 2, "most images were mixed ({mixed})");
        for a in [0.2f32, 0.4, 1.0, 2.0] {
            let mean: f32 = (0..4000).map(|_| beta_symmetric(a, &mut rng)).sum::<f32>() / 4000.0;
            assert!((mean - 0.5).abs() < 0.02, "Beta({a},{a}) mean {mean}");
        }
    }

    #[test]
    fn pooled_validation_is_the_size_weighted_mean() {
        assert_eq!(
            pooled(&[(0.5, 0.25, 10), (f64::NAN, f64::NAN, 0)]),
            (0.5, 0.25)
        );
        let (l, a) = pooled(&[(1.0, 0.5, 30), (2.0, 1.0, 10)]);
        assert!((l - 1.25).abs() < 1e-12 && (a - 0.625).abs() < 1e-12);
        assert!(pooled(&[]).0.is_nan());
    }
}
