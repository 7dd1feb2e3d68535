//! The training loop: data order, augmentation, optimiser steps, validation, history,
//! checkpoints and exact resume.
//!
//! Determinism: every random choice is derived from `(seed, epoch, position)` (data order,
//! augmentation) or reseeded at each epoch start (dropout), and the resume state is written at
//! epoch boundaries. A run killed at any point and resumed replays from its last finished epoch
//! and produces the same history it would have without the interruption.

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use emolens_core::{InputSpec, ModelMeta, Preprocessor};
use emolens_data::{
    apply_augment, load_cache, open_for_training, AugmentConfig, ImageCache, Sample,
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
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::{ClassWeights, OptimizerConfig, TrainConfig};
use crate::error::TrainError;
use crate::fused_optim::{FusedAdam, FusedAdamW, FusedRmsProp, FusedSgd};
use crate::history::History;
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

fn limit_per_class(samples: Vec<Sample>, max: Option<usize>) -> Vec<Sample> {
    let Some(max) = max else { return samples };
    let mut seen = std::collections::HashMap::new();
    samples
        .into_iter()
        .filter(|s| {
            let n = seen.entry(s.class).or_insert(0usize);
            *n += 1;
            *n <= max
        })
        .collect()
}

/// A batch ready for the network.
struct Batch {
    images: Vec<f32>,
    labels: Vec<i64>,
}

/// Builds batch `b` of an epoch: picks the images in the epoch's order, augments each with its
/// own seeded RNG (so threads never change the result) and normalises them.
fn make_batch(
    cache: &ImageCache,
    order: &[usize],
    pre: &Preprocessor,
    augment: &AugmentConfig,
    seed: u64,
    epoch: usize,
    start: usize,
) -> Batch {
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
    Batch { images, labels }
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

fn class_weights(
    cfg: &TrainConfig,
    cache: &ImageCache,
    classes: usize,
) -> Result<Option<Vec<f32>>, TrainError> {
    match &cfg.class_weights {
        ClassWeights::None => Ok(None),
        ClassWeights::Custom(w) => {
            if w.len() != classes {
                return Err(TrainError::Config(format!(
                    "--class-weights lists {} weights but the dataset has {classes} classes",
                    w.len()
                )));
            }
            Ok(Some(w.clone()))
        }
        ClassWeights::Balanced => {
            let mut counts = vec![0usize; classes];
            for &l in &cache.labels {
                counts[l as usize] += 1;
            }
            let n = cache.len() as f32;
            Ok(Some(
                counts
                    .iter()
                    .map(|&c| {
                        if c == 0 {
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
        let b = make_batch(cache, chunk, pre, &none, 0, 0, 0);
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
    ModelMeta {
        flip_tta: false,
        flip_tta_below: None,
        int8: None,
        format_version: ModelMeta::FORMAT_VERSION,
        name: name.to_string(),
        classes: classes.to_vec(),
        input: input_spec(cfg),
        architecture: cfg.architecture.clone(),
        training: serde_json::to_value(cfg).unwrap_or_default(),
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
    let m = &file.meta.input;
    if (m.channels(), m.height, m.width) != (spec.channels(), spec.height, spec.width)
        || m.normalisation != spec.normalisation
    {
        return Err(TrainError::Config(format!(
            "--init-from {}: its input ({} channel(s), {}x{}, {:?}) differs from this run's ({} channel(s), {}x{}, {:?})",
            init.path.display(),
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
    info!(from = %init.path.display(), "initial weights from a model file");
    Ok(file.network(device)?)
}

/// Trains (or resumes) the run described by `cfg` in `run_dir`.
pub fn train(
    cfg: &TrainConfig,
    run_dir: &Path,
    opts: &RunOptions,
) -> Result<RunOutcome, TrainError> {
    cfg.validate().map_err(TrainError::Config)?;
    // Open the data first, so a wrong --data leaves no run folder behind.
    let splits =
        open_for_training(&cfg.data, cfg.valid_fraction, cfg.seed).map_err(TrainError::Data)?;
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
    for p in &splits.problems {
        warn!(problem = %p, "dataset problem");
    }
    let classes = splits.classes.clone();
    let train_samples = limit_per_class(splits.train.clone(), cfg.max_train_per_class);
    let valid_samples = limit_per_class(splits.valid.clone(), cfg.max_valid_per_class);
    if train_samples.is_empty() {
        return Err(TrainError::Config(format!(
            "{}: no training images found",
            cfg.data.display()
        )));
    }
    let t0 = Instant::now();
    let (train_cache, p1) = load_cache(&train_samples, &pre, opts.progress);
    let (valid_cache, p2) = load_cache(&valid_samples, &pre, opts.progress);
    for p in p1.iter().chain(&p2) {
        warn!(problem = %p, "skipped file");
    }
    info!(
        train = train_cache.len(),
        valid = valid_cache.len(),
        seconds = format!("{:.1}", t0.elapsed().as_secs_f64()),
        "decoded images into memory"
    );
    let fingerprint = train_cache.fingerprint();
    let dataset_json = serde_json::json!({
        "source": cfg.data,
        "classes": classes,
        "train_images": train_cache.len(),
        "valid_images": valid_cache.len(),
        "valid_carved": splits.valid_carved,
        "valid_fraction": cfg.valid_fraction,
        "carved_valid_files": splits.carved_valid_keys,
        "train_fingerprint": fingerprint,
        "valid_fingerprint": valid_cache.fingerprint(),
        "skipped_files": p1.iter().chain(&p2).map(|p| p.to_string()).collect::<Vec<_>>(),
    });
    write_atomic(
        &files.dataset(),
        serde_json::to_string_pretty(&dataset_json)
            .expect("json")
            .as_bytes(),
    )?;

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
    let weights = class_weights(cfg, &train_cache, classes.len())?;
    let mut loss_cfg = CrossEntropyLossConfig::new();
    if let Some(w) = &weights {
        loss_cfg = loss_cfg.with_weights(Some(w.clone()));
    }
    if cfg.label_smoothing > 0.0 {
        loss_cfg = loss_cfg.with_smoothing(Some(cfg.label_smoothing));
    }
    let loss_fn = loss_cfg.init(&device);

    let n = train_cache.len();
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
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(
            cfg.seed, epoch, 2,
        )));

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
            let (tx, rx) = sync_channel::<(usize, Batch)>(2);
            let order_ref = &order;
            let cache_ref = &train_cache;
            let pre_ref = &pre;
            scope.spawn(move || {
                for (bi, chunk) in order_ref.chunks(cfg.batch_size).enumerate() {
                    let b = make_batch(
                        cache_ref,
                        chunk,
                        pre_ref,
                        &cfg.augment,
                        cfg.seed,
                        epoch,
                        bi * cfg.batch_size,
                    );
                    if tx.send((bi, b)).is_err() {
                        break;
                    }
                }
            });
            for (bi, batch) in rx {
                let bsz = batch.labels.len();
                let (x, y) = to_tensors(&batch, &train_cache, &device);
                let logits = model.forward(x);
                let loss = loss_fn.forward(logits.clone(), y.clone());
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
        let (val_loss, val_acc) = evaluate(&valid_net, &valid_cache, &pre, &opts.device);
        let secs = started.elapsed().as_secs_f64();
        state
            .history
            .push(train_loss, train_acc, val_loss, val_acc, lr, secs);
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
