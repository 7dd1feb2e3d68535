//! `emolens train`, `sweep`, `arch`, `model` (info, export, set, tune-tta, quantize) and `predict`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use emolens_core::{ColourMode, DecodeLimits, Normalisation, Preprocessor};
use emolens_data::AugmentConfig;
use emolens_model::{load_classifier, read_architecture_file};
use emolens_train::sweep::{run_sweep, SweepGrid};
use emolens_train::{
    train as run_training, ClassWeights, OptimizerConfig, RunOptions, Schedule, TrainConfig,
};

/// Flags shared by `train` and `sweep`: everything of a run but the grid axes.
#[derive(clap::Args, Clone)]
pub struct CommonTrainArgs {
    #[command(flatten)]
    pub runtime: crate::runtime::RuntimeArgs,
    /// Dataset folder (`<root>/<split>/<class>/`) or a clean/balance manifest: one source with
    /// weight 1 and the folders' labels. Use --source instead for several sources.
    #[arg(
        long,
        env = "EMOLENS_DATA",
        required_unless_present = "sources",
        conflicts_with = "sources"
    )]
    data: Option<PathBuf>,
    /// A training source, repeatable: `NAME=PATH[,labels=folder|ferplus:VOTES_CSV][,weight=W]`
    /// (or just PATH, named after its folder). `labels=folder` (default): the class folders'
    /// labels; validation is the dataset's valid split or a carve of train (--valid-fraction),
    /// never its test/. `labels=ferplus:VOTES_CSV` on the FER2013 folder: train/ with the FER+
    /// vote distribution as a soft target (the folder label where FER+ has no votes; not-a-face
    /// rows dropped), validated on FER+ PublicTest with majority labels; PrivateTest is never
    /// used. `weight`: each epoch draws round(weight x train images) from the source (1 = each
    /// image once, 0.5 = a fresh random half). val_accuracy, which picks best.emolens, is over
    /// all sources' validation images together; history.json adds val_accuracy_NAME per source.
    /// In EMOLENS_SOURCES (or one flag), separate sources with `;`. Example: --source
    /// fer2013=../shared/data/fer2013,labels=ferplus:../shared/data/ferplus/votes.csv --source
    /// affectnet=../shared/data/affectnet7,weight=0.5
    #[arg(
        long = "source",
        id = "sources",
        env = "EMOLENS_SOURCES",
        value_delimiter = ';',
        value_name = "SOURCE"
    )]
    sources: Vec<emolens_data::SourceSpec>,
    /// Folder that holds one sub-folder per run.
    #[arg(long, env = "EMOLENS_RUNS_DIR", default_value = "runs")]
    runs_dir: PathBuf,
    /// Base learning rate.
    #[arg(long, env = "EMOLENS_LR", default_value_t = 0.01)]
    lr: f64,
    /// SGD momentum (0 disables it); RMSprop momentum.
    #[arg(long, env = "EMOLENS_MOMENTUM")]
    momentum: Option<f64>,
    /// Nesterov momentum for SGD.
    #[arg(long, env = "EMOLENS_NESTEROV")]
    nesterov: bool,
    /// L2 weight decay (decoupled for adamw).
    #[arg(long, env = "EMOLENS_WEIGHT_DECAY", default_value_t = 0.0)]
    weight_decay: f64,
    /// Learning-rate schedule.
    #[arg(
        long,
        env = "EMOLENS_SCHEDULE",
        value_enum,
        ignore_case = true,
        default_value = "constant"
    )]
    schedule: ScheduleKind,
    /// Step schedule: epochs between reductions.
    #[arg(long, env = "EMOLENS_STEP_EVERY", default_value_t = 10)]
    step_every: usize,
    /// Step and plateau schedules: the reduction factor.
    #[arg(long, env = "EMOLENS_GAMMA", default_value_t = 0.5)]
    gamma: f64,
    /// Cosine schedule: warm-up epochs.
    #[arg(long, env = "EMOLENS_WARMUP_EPOCHS", default_value_t = 0)]
    warmup_epochs: usize,
    /// Cosine and plateau schedules: the lowest learning rate.
    #[arg(long, env = "EMOLENS_MIN_LR", default_value_t = 1e-5)]
    min_lr: f64,
    /// Plateau schedule: epochs without val_loss improvement before a reduction.
    #[arg(long, env = "EMOLENS_PLATEAU_PATIENCE", default_value_t = 3)]
    plateau_patience: usize,
    /// Epochs.
    #[arg(long, env = "EMOLENS_EPOCHS", default_value_t = 50)]
    epochs: usize,
    /// Augmentation preset: none, original (the original design's generator), original-balance,
    /// standard, wild (standard plus gamma, blur, noise, JPEG and random erasing: for faces from
    /// customers' photos and webcams).
    #[arg(long, env = "EMOLENS_AUGMENT", default_value = "original")]
    augment: String,
    /// Class weights: none, balanced, or a comma list (one per class). Each class's term of the
    /// cross-entropy is multiplied by its weight and the batch is normalised by the images'
    /// target-weighted weights; `balanced` counts classes by target mass (FER+ votes count as
    /// fractions) times each source's weight.
    #[arg(long, env = "EMOLENS_CLASS_WEIGHTS", default_value = "none")]
    class_weights: String,
    /// Label smoothing in [0, 1): targets (one-hot or FER+ vote distributions) become
    /// (1 - s) x target + s / classes.
    #[arg(long, env = "EMOLENS_LABEL_SMOOTHING", default_value_t = 0.0)]
    label_smoothing: f32,
    /// Mixup: blend each training image with another of its batch (pixels and targets) by a
    /// weight drawn from Beta(A, A), the larger share kept by the image itself; 0 turns it off.
    #[arg(long, env = "EMOLENS_MIXUP", default_value_t = 0.0)]
    mixup: f32,
    /// Distil from this trained model: its probabilities on each (augmented) training image
    /// join the target. It must take the same input (size, colour mode, normalisation).
    #[arg(long, env = "EMOLENS_TEACHER")]
    teacher: Option<PathBuf>,
    /// The teacher's share of each target, in (0, 1].
    #[arg(long, env = "EMOLENS_DISTILL_WEIGHT", default_value_t = 0.5)]
    distill_weight: f32,
    /// Temperature on the teacher's logits (1: its own probabilities; above 1 softer).
    #[arg(long, env = "EMOLENS_DISTILL_TEMPERATURE", default_value_t = 1.0)]
    distill_temperature: f32,
    /// Random seed (data order, augmentation, initialisation, dropout).
    #[arg(long, env = "EMOLENS_SEED", default_value_t = 42)]
    seed: u64,
    /// Stop after this many epochs without a better val_accuracy.
    #[arg(long, env = "EMOLENS_EARLY_STOPPING")]
    early_stopping: Option<usize>,
    /// Fraction of train carved out for validation when the dataset has no valid split.
    #[arg(long, env = "EMOLENS_VALID_FRACTION", default_value_t = 0.1)]
    valid_fraction: f32,
    /// Input size (square), in pixels.
    #[arg(long, env = "EMOLENS_INPUT_SIZE", default_value_t = 48)]
    input_size: u32,
    /// Normalisation: `unit` (x/255) or `standard:MEAN:STD`.
    #[arg(long, env = "EMOLENS_NORMALISATION", default_value = "unit")]
    normalisation: String,
    /// Use only the first N training images per class (quick runs).
    #[arg(long, env = "EMOLENS_MAX_TRAIN_PER_CLASS")]
    max_train_per_class: Option<usize>,
    /// Use only the first N validation images per class.
    #[arg(long, env = "EMOLENS_MAX_VALID_PER_CLASS")]
    max_valid_per_class: Option<usize>,
    /// Last part of the run name: `augment` or `balanced` (the original's convention).
    #[arg(long, env = "EMOLENS_TAG", default_value = "augment")]
    tag: String,
    /// Start from this model file's weights (same architecture and input) instead of a random
    /// initialisation: fine-tuning, or a second learning-rate cycle.
    #[arg(long, env = "EMOLENS_INIT_FROM")]
    init_from: Option<PathBuf>,
    /// Start over even if the run folder holds a resumable run.
    #[arg(long, env = "EMOLENS_NO_RESUME")]
    no_resume: bool,
    /// Stop after this many epochs in this invocation (the run stays resumable).
    #[arg(long, env = "EMOLENS_STOP_AFTER_EPOCHS")]
    stop_after_epochs: Option<usize>,
    /// Hide progress bars.
    #[arg(long, env = "EMOLENS_QUIET")]
    quiet: bool,
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Architecture file: emolens' own format, the original design's format, or Keras model JSON.
    #[arg(long, env = "EMOLENS_ARCH")]
    arch: PathBuf,
    /// Optimiser.
    #[arg(
        long,
        env = "EMOLENS_OPTIMIZER",
        value_enum,
        ignore_case = true,
        default_value = "sgd"
    )]
    optimizer: OptimizerName,
    /// Colour mode: grayscale or rgb.
    #[arg(long, env = "EMOLENS_COLOUR_MODE", default_value = "grayscale")]
    colour_mode: String,
    /// Batch size.
    #[arg(long, env = "EMOLENS_BATCH_SIZE", default_value_t = 64)]
    batch_size: usize,
    #[command(flatten)]
    pub common: CommonTrainArgs,
}

#[derive(clap::Args)]
pub struct SweepArgs {
    /// Architecture files (comma-separated).
    #[arg(
        long,
        env = "EMOLENS_SWEEP_ARCHS",
        value_delimiter = ',',
        required = true
    )]
    archs: Vec<PathBuf>,
    /// Optimisers (comma-separated); the original's grid: sgd,adam,rmsprop.
    #[arg(
        long,
        env = "EMOLENS_SWEEP_OPTIMIZERS",
        value_delimiter = ',',
        value_enum,
        ignore_case = true,
        default_value = "sgd,adam,rmsprop"
    )]
    optimizers: Vec<OptimizerName>,
    /// Colour modes (comma-separated).
    #[arg(
        long,
        env = "EMOLENS_SWEEP_COLOUR_MODES",
        value_delimiter = ',',
        default_value = "rgb,grayscale"
    )]
    colour_modes: Vec<String>,
    /// Batch sizes (comma-separated); the original's grid: 32,64,128,256,512.
    #[arg(
        long,
        env = "EMOLENS_SWEEP_BATCH_SIZES",
        value_delimiter = ',',
        default_value = "32,64,128,256,512"
    )]
    batch_sizes: Vec<usize>,
    #[command(flatten)]
    pub common: CommonTrainArgs,
}

/// `emolens model`: the run-time flags and a subcommand.
#[derive(clap::Args)]
pub struct ModelArgs {
    #[command(flatten)]
    pub runtime: crate::runtime::RuntimeArgs,
    #[command(subcommand)]
    pub command: ModelCommand,
}

#[derive(clap::Subcommand)]
pub enum ModelCommand {
    /// Prints a model file's metadata (classes, input, normalisation, metrics, training) as JSON.
    Info {
        /// Model file; the bundled model when omitted.
        file: Option<PathBuf>,
    },
    /// Writes the network in another format: `onnx`, an ONNX graph (opset 17) for ONNX Runtime
    /// and other runtimes, with batch norms folded as in emolens' compiled plans, input `input`
    /// [N, C, H, W] float and output `probabilities` [N, classes]; the classes, input size,
    /// colour mode, normalisation and flip TTA are in its metadata (see docs/export.md).
    /// Architectures with layers that cannot be exported are refused, naming the layer.
    Export {
        /// Model file; the bundled model when omitted.
        file: Option<PathBuf>,
        /// Format to write.
        #[arg(
            long,
            env = "EMOLENS_EXPORT_FORMAT",
            value_enum,
            default_value = "onnx"
        )]
        format: ExportFormat,
        /// Where to write the exported model (e.g. model.onnx).
        #[arg(long, env = "EMOLENS_EXPORT_OUT")]
        out: PathBuf,
    },
    /// Writes a copy of a model file with changed metadata (the weights stay as they are).
    Set {
        /// Model file to read.
        file: PathBuf,
        /// Where to write the new file.
        #[arg(long)]
        out: PathBuf,
        /// Flip test-time augmentation: answer with the mean of the image's and its mirror's
        /// probabilities, in every command that uses the model.
        #[arg(long)]
        flip_tta: Option<bool>,
        /// With flip TTA, mirror only images whose top probability is below this (0-1);
        /// `none`: every image. `emolens model tune-tta` picks it on validation data.
        #[arg(long, value_parser = parse_threshold)]
        flip_tta_below: Option<Gate>,
        /// A new model name.
        #[arg(long)]
        name: Option<String>,
        /// A headline metric to record, `name=value` (repeatable).
        #[arg(long = "metric", value_parser = parse_metric)]
        metrics: Vec<(String, f64)>,
    },
    /// Picks the flip-TTA gate on validation images: each image runs once and mirrored, and
    /// for each threshold the accuracy of mirroring only the images whose own top probability
    /// is below it is printed with the share that needs the second pass. The lowest threshold
    /// within --tolerance of mirroring every image is chosen (and written with --out).
    TuneTta {
        /// Model file to read; the bundled model when omitted.
        file: Option<PathBuf>,
        /// Dataset folder or manifest; its valid split is used (carved from train with
        /// --valid-fraction and --seed as training does, when it has none).
        #[arg(long, env = "EMOLENS_DATA")]
        data: PathBuf,
        /// Fraction of train carved into validation when the dataset has no valid split.
        #[arg(long, env = "EMOLENS_VALID_FRACTION", default_value_t = 0.1)]
        valid_fraction: f32,
        /// Seed of that carve: the model's training seed, so validation images are unseen.
        #[arg(long, env = "EMOLENS_SEED", default_value_t = 42)]
        seed: u64,
        /// Accuracy the gate may give up against mirroring every image.
        #[arg(long, default_value_t = 0.001)]
        tolerance: f64,
        /// Write the model with flip TTA on and the chosen gate here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Writes a copy of a model file that runs in 8 bits where the CPU has VNNI: the network
    /// runs in f32 on real images (use training images, never test images) and the range of
    /// every layer's output is stored in the file. The weights stay as they are; f32 and bf16
    /// remain available with --precision.
    Quantize {
        /// Model file to read; the bundled model when omitted.
        file: Option<PathBuf>,
        /// Folder of calibration images (searched recursively, e.g. a dataset's train split).
        #[arg(long, env = "EMOLENS_CALIBRATION_DATA")]
        data: PathBuf,
        /// How many images to calibrate on, spread evenly over the folder's sorted files.
        #[arg(long, env = "EMOLENS_CALIBRATION_IMAGES", default_value_t = 2000)]
        images: usize,
        /// Where to write the new file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Formats `emolens model export` writes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ExportFormat {
    /// ONNX (opset 17), for ONNX Runtime, onnxruntime-web, TensorRT and other runtimes.
    Onnx,
}

/// `emolens model export`: the model file (or the bundled model) written as `format` to `out`.
fn export(file: Option<PathBuf>, format: ExportFormat, out: &Path) -> anyhow::Result<()> {
    let (bytes, name) = model_bytes(&file)?;
    match format {
        ExportFormat::Onnx => {
            let m = emolens_model::onnx::export(&bytes, &name)?;
            std::fs::write(out, &m.bytes).with_context(|| {
                format!(
                    "{}: cannot write the ONNX file (check the folder exists and is writable)",
                    out.display()
                )
            })?;
            let ops: Vec<String> = m.ops.iter().map(|(op, n)| format!("{op} x{n}")).collect();
            let meta: std::collections::BTreeMap<_, _> = m.metadata.iter().cloned().collect();
            eprintln!(
                "wrote {} ({} bytes): ONNX opset {}, input `{}` {}, output `{}` over {}; {} float parameters; nodes: {}",
                out.display(),
                m.bytes.len(),
                emolens_model::onnx::OPSET,
                emolens_model::onnx::INPUT,
                meta.get(emolens_model::onnx::keys::INPUT).map_or("", |s| s.as_str()),
                emolens_model::onnx::OUTPUT,
                meta.get(emolens_model::onnx::keys::CLASSES).map_or("", |s| s.as_str()),
                m.parameters,
                ops.join(", ")
            );
        }
    }
    Ok(())
}

/// Reads a model file, or the bundled model: its bytes and a name for messages.
fn model_bytes(file: &Option<PathBuf>) -> anyhow::Result<(Vec<u8>, String)> {
    Ok(emolens_model::tta::read_model_bytes(file.as_deref())?)
}

fn quantize(file: Option<PathBuf>, data: &Path, images: usize, out: &Path) -> anyhow::Result<()> {
    let (bytes, name) = model_bytes(&file)?;
    let done = emolens_model::calibration::calibrate_folder(&bytes, &name, data, images)?;
    std::fs::write(out, &done.bytes).with_context(|| format!("{}: cannot write", out.display()))?;
    eprintln!(
        "wrote {} (int8 calibration on {} of {} images{})",
        out.display(),
        done.used,
        done.found,
        if done.skipped > 0 {
            format!(", {} unreadable skipped", done.skipped)
        } else {
            String::new()
        }
    );
    Ok(())
}

/// A flip-TTA gate on the command line: a probability, or `none` (mirror every face).
#[derive(Clone, Copy, Debug)]
pub struct Gate(Option<f32>);

fn parse_threshold(s: &str) -> Result<Gate, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Gate(None));
    }
    match s.parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(Gate(Some(v))),
        _ => Err(format!(
            "`{s}`: give a probability between 0 and 1, or `none`"
        )),
    }
}

fn tune_tta(
    file: Option<PathBuf>,
    data: &Path,
    valid_fraction: f32,
    seed: u64,
    tolerance: f64,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    use emolens_model::tta::{with_flip_tta, FlipTta};
    let (bytes, name) = model_bytes(&file)?;
    let f = emolens_model::ModelFile::decode(&bytes, &name)?;
    let splits = emolens_data::open_for_training(data, valid_fraction, seed)?;
    if splits.valid.is_empty() {
        bail!(
            "{}: no validation images (give a dataset with a valid split, or --valid-fraction > 0)",
            data.display()
        );
    }
    // Dataset classes to the model's outputs, by name: a model's class order is its own.
    let samples: Vec<(PathBuf, usize)> = splits
        .valid
        .iter()
        .filter_map(|s| {
            let class = &splits.classes[s.class];
            let to = f.meta.classes.iter().position(|m| m == class)?;
            Some((s.path.clone(), to))
        })
        .collect();
    if samples.is_empty() {
        bail!(
            "{}: no validation image has one of the model's classes ({})",
            data.display(),
            f.meta.classes.join(", ")
        );
    }
    // One pass per call: the tuning mirrors the images itself.
    let plain = emolens_model::BurnClassifier::from_bytes(
        &with_flip_tta(&bytes, &name, FlipTta::Off)?,
        &name,
        &emolens_model::inference_device(),
    )?;
    let bar = crate::progress::bar(samples.len() as u64, "images");
    let tuning = emolens_eval::tta::tune_flip_gate(&plain, &samples, tolerance, &mut |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    println!(
        "validation images: {} ({}), runtime {}",
        tuning.images,
        data.display(),
        emolens_core::EmotionClassifier::runtime(&plain)
    );
    println!("{:>9} {:>9} {:>9}", "below", "accuracy", "mirrored");
    for (i, r) in tuning.rows.iter().enumerate() {
        let label = r.below.map_or("always".to_string(), |t| format!("{t:.2}"));
        let mark = if i == tuning.chosen {
            "  <- chosen"
        } else {
            ""
        };
        println!("{label:>9} {:>9.4} {:>9.3}{mark}", r.accuracy, r.mirrored);
    }
    if let Some(out) = out {
        let chosen = tuning
            .chosen()
            .below
            .map_or(FlipTta::Always, FlipTta::Below);
        std::fs::write(&out, with_flip_tta(&bytes, &name, chosen)?)
            .with_context(|| format!("{}: cannot write", out.display()))?;
        eprintln!("wrote {} (flip TTA {chosen:?})", out.display());
    }
    Ok(())
}

fn parse_metric(s: &str) -> Result<(String, f64), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: write NAME=VALUE, e.g. test_accuracy=0.68"))?;
    let v: f64 = v
        .parse()
        .map_err(|_| format!("`{s}`: `{v}` is not a number"))?;
    Ok((k.to_string(), v))
}

pub fn model(c: ModelCommand) -> anyhow::Result<ExitCode> {
    match c {
        ModelCommand::Info { file } => {
            let (bytes, name) = model_bytes(&file)?;
            let f = emolens_model::ModelFile::decode(&bytes, &name)?;
            println!("{}", serde_json::to_string_pretty(&f.meta)?);
            // How this machine would run it (number format and instruction set): on stderr, so
            // stdout stays the metadata document.
            let c = emolens_model::BurnClassifier::from_bytes(
                &bytes,
                &name,
                &emolens_model::inference_device(),
            )?;
            eprintln!("runtime on this machine: {}", c.runtime());
        }
        ModelCommand::Export { file, format, out } => export(file, format, &out)?,
        ModelCommand::TuneTta {
            file,
            data,
            valid_fraction,
            seed,
            tolerance,
            out,
        } => tune_tta(file, &data, valid_fraction, seed, tolerance, out)?,
        ModelCommand::Quantize {
            file,
            data,
            images,
            out,
        } => quantize(file, &data, images, &out)?,
        ModelCommand::Set {
            file,
            out,
            flip_tta,
            flip_tta_below,
            name,
            metrics,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("{}: cannot read", file.display()))?;
            let f = emolens_model::ModelFile::decode(&bytes, &file.display().to_string())?;
            let mut meta = f.meta.clone();
            if let Some(t) = flip_tta {
                meta.flip_tta = t;
            }
            if let Some(Gate(t)) = flip_tta_below {
                meta.flip_tta_below = t;
            }
            if let Some(n) = name {
                meta.name = n;
            }
            for (k, v) in metrics {
                meta.metrics.insert(k, v);
            }
            let new = f.reencode(&meta)?;
            std::fs::write(&out, new)
                .with_context(|| format!("{}: cannot write", out.display()))?;
            eprintln!("wrote {}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `emolens arch`: the run-time flags and a subcommand.
#[derive(clap::Args)]
pub struct ArchArgs {
    #[command(flatten)]
    pub runtime: crate::runtime::RuntimeArgs,
    #[command(subcommand)]
    pub command: ArchCommand,
}

#[derive(clap::Subcommand)]
pub enum ArchCommand {
    /// Layers, output shapes, parameters (Keras' count) and multiply-accumulates of an architecture.
    Summary {
        /// Architecture file (any supported format).
        file: PathBuf,
        /// Colour mode of the input: grayscale or rgb.
        #[arg(long, env = "EMOLENS_COLOUR_MODE", default_value = "grayscale")]
        colour_mode: String,
        /// Input size (square).
        #[arg(long, env = "EMOLENS_INPUT_SIZE", default_value_t = 48)]
        input_size: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Converts an architecture file (original or Keras format) to emolens' own format.
    Convert { file: PathBuf },
    /// Times training steps and inference on synthetic data (a benchmark, printed as JSON).
    Bench {
        /// Architecture file (any supported format).
        file: PathBuf,
        /// Colour mode of the input: grayscale or rgb.
        #[arg(long, env = "EMOLENS_COLOUR_MODE", default_value = "rgb")]
        colour_mode: String,
        /// Training batch size.
        #[arg(long, env = "EMOLENS_BATCH_SIZE", default_value_t = 64)]
        batch_size: usize,
        /// Timed steps (after the warm-up ones).
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// Untimed warm-up steps.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Inference batch size for the throughput figure.
        #[arg(long, default_value_t = 64)]
        infer_batch: usize,
    },
}

#[derive(clap::Args)]
pub struct PredictArgs {
    /// Face-crop images, folders (searched recursively) or glob patterns.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Model file; the bundled default model when absent.
    #[arg(long, env = "EMOLENS_MODEL")]
    model: Option<PathBuf>,
    /// Print JSON (one object with a result per file).
    #[arg(long, env = "EMOLENS_JSON")]
    json: bool,
    /// Images per inference batch.
    #[arg(long, env = "EMOLENS_BATCH_SIZE", default_value_t = 64)]
    batch_size: usize,
    #[command(flatten)]
    pub runtime: crate::runtime::RuntimeArgs,
}

fn parse_normalisation(s: &str) -> anyhow::Result<Normalisation> {
    if s == "unit" {
        return Ok(Normalisation::Unit);
    }
    if let Some(rest) = s.strip_prefix("standard:") {
        let parts: Vec<f32> = rest
            .split(':')
            .map(|p| p.parse::<f32>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("--normalisation {s}: MEAN and STD must be numbers"))?;
        if let [mean, std] = parts.as_slice() {
            return Ok(Normalisation::Standard {
                mean: vec![*mean],
                std: vec![*std],
            });
        }
    }
    bail!("--normalisation must be `unit` or `standard:MEAN:STD`, got `{s}`")
}

/// `--optimizer` (and the sweep's `--optimizers`): the optimisers of `OptimizerConfig`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerName {
    /// SGD with momentum 0.9 (--momentum, --nesterov).
    Sgd,
    /// SGD with Nesterov momentum 0.9.
    #[value(alias = "sgd-nesterov")]
    Nesterov,
    Adam,
    /// Adam with decoupled weight decay (--weight-decay).
    Adamw,
    Rmsprop,
}

impl OptimizerName {
    /// The name run folders and histories use.
    pub fn as_str(self) -> &'static str {
        match self {
            OptimizerName::Sgd => "sgd",
            OptimizerName::Nesterov => "nesterov",
            OptimizerName::Adam => "adam",
            OptimizerName::Adamw => "adamw",
            OptimizerName::Rmsprop => "rmsprop",
        }
    }
}

/// `--schedule`: the learning-rate schedules of `Schedule`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleKind {
    /// The base rate throughout.
    Constant,
    /// Times --gamma every --step-every epochs.
    Step,
    /// Cosine decay to --min-lr after --warmup-epochs of linear warm-up.
    Cosine,
    /// Times --gamma after --plateau-patience epochs without a better val_loss.
    Plateau,
}

fn parse_schedule(c: &CommonTrainArgs) -> anyhow::Result<Schedule> {
    Ok(match c.schedule {
        ScheduleKind::Constant => Schedule::Constant,
        ScheduleKind::Step => Schedule::Step {
            every: c.step_every,
            gamma: c.gamma,
        },
        ScheduleKind::Cosine => Schedule::Cosine {
            warmup_epochs: c.warmup_epochs,
            min_lr: c.min_lr,
        },
        ScheduleKind::Plateau => Schedule::Plateau {
            factor: c.gamma,
            patience: c.plateau_patience,
            min_lr: c.min_lr,
        },
    })
}

fn parse_optimizer(name: OptimizerName, c: &CommonTrainArgs) -> anyhow::Result<OptimizerConfig> {
    let mut o = OptimizerConfig::by_name(name.as_str())
        .with_context(|| format!("--optimizer `{}` has no configuration", name.as_str()))?;
    match &mut o {
        OptimizerConfig::Sgd { momentum, nesterov } => {
            if let Some(m) = c.momentum {
                *momentum = m;
            }
            *nesterov |= c.nesterov;
        }
        OptimizerConfig::RmsProp { momentum, .. } => {
            if let Some(m) = c.momentum {
                *momentum = m as f32;
            }
        }
        _ => {}
    }
    Ok(o)
}

/// A run's configuration from the flags and one point of the grid.
fn build_config(
    arch: &Path,
    optimizer: OptimizerName,
    colour: &str,
    batch_size: usize,
    c: &CommonTrainArgs,
) -> anyhow::Result<TrainConfig> {
    let imported = read_architecture_file(arch)?;
    let colour_mode: ColourMode = colour.parse().map_err(anyhow::Error::msg)?;
    let augment = AugmentConfig::preset(&c.augment).with_context(|| {
        format!(
            "--augment `{}` is unknown: use none, original, original-balance, standard or wild",
            c.augment
        )
    })?;
    let class_weights = match c.class_weights.as_str() {
        "none" => ClassWeights::None,
        "balanced" => ClassWeights::Balanced,
        list => ClassWeights::Custom(
            list.split(',')
                .map(|w| w.trim().parse::<f32>())
                .collect::<Result<_, _>>()
                .with_context(|| format!("--class-weights `{list}`: use none, balanced or numbers separated by commas"))?,
        ),
    };
    let cfg = TrainConfig {
        arch_name: imported.arch.name.clone(),
        arch_source: arch.to_path_buf(),
        architecture: serde_json::to_value(&imported.arch)?,
        data: c.data.clone().unwrap_or_default(),
        sources: c.sources.clone(),
        colour_mode,
        input_size: c.input_size,
        normalisation: parse_normalisation(&c.normalisation)?,
        optimizer: parse_optimizer(optimizer, c)?,
        learning_rate: c.lr,
        weight_decay: c.weight_decay,
        schedule: parse_schedule(c)?,
        batch_size,
        epochs: c.epochs,
        seed: c.seed,
        augment_preset: c.augment.clone(),
        augment,
        class_weights,
        label_smoothing: c.label_smoothing,
        mixup: c.mixup,
        early_stopping: c.early_stopping,
        valid_fraction: c.valid_fraction,
        max_train_per_class: c.max_train_per_class,
        max_valid_per_class: c.max_valid_per_class,
        tag: c.tag.clone(),
        init_from: match &c.init_from {
            None => None,
            Some(p) => Some(emolens_train::InitFrom {
                path: p.clone(),
                sha256: emolens_core::fingerprint::sha256_hex(
                    &std::fs::read(p).with_context(|| format!("--init-from {}", p.display()))?,
                ),
            }),
        },
        distill: match &c.teacher {
            None => None,
            Some(p) => Some(emolens_train::Distill {
                teacher: p.clone(),
                sha256: emolens_core::fingerprint::sha256_hex(
                    &std::fs::read(p).with_context(|| format!("--teacher {}", p.display()))?,
                ),
                weight: c.distill_weight,
                temperature: c.distill_temperature,
            }),
        },
    };
    cfg.validate().map_err(anyhow::Error::msg)?;
    // Check the architecture against this input before any data is read.
    cfg.architecture
        .as_object()
        .context("architecture did not serialise to an object")?;
    imported.arch.summarise(
        colour_mode.channels(),
        c.input_size as usize,
        c.input_size as usize,
    )?;
    Ok(cfg)
}

fn run_options(c: &CommonTrainArgs) -> RunOptions {
    RunOptions {
        progress: !c.quiet,
        resume: !c.no_resume,
        stop_after_epochs: c.stop_after_epochs,
        ..RunOptions::default()
    }
}

pub fn train(a: TrainArgs) -> anyhow::Result<ExitCode> {
    let cfg = build_config(
        &a.arch,
        a.optimizer,
        &a.colour_mode,
        a.batch_size,
        &a.common,
    )?;
    let dir = a.common.runs_dir.join(cfg.run_name());
    if a.common.no_resume && dir.exists() {
        std::fs::remove_dir_all(dir.join("state")).ok();
        std::fs::remove_file(dir.join("config.json")).ok();
    }
    let out = run_training(&cfg, &dir, &run_options(&a.common))?;
    println!(
        "run {}: {} epoch(s), best val_accuracy {:.4} at epoch {}{}",
        dir.display(),
        out.history.epochs(),
        out.best_val_accuracy,
        out.best_epoch
            .map(|e| e.to_string())
            .unwrap_or_else(|| "-".into()),
        if out.finished {
            ""
        } else {
            " (not finished: run the same command again to resume)"
        }
    );
    println!("best model: {}", out.best_model.display());
    Ok(ExitCode::SUCCESS)
}

pub fn sweep(a: SweepArgs) -> anyhow::Result<ExitCode> {
    let mut configs = Vec::new();
    for arch in &a.archs {
        for &opt in &a.optimizers {
            for colour in &a.colour_modes {
                for &bs in &a.batch_sizes {
                    configs.push(build_config(arch, opt, colour, bs, &a.common)?);
                }
            }
        }
    }
    let grid = SweepGrid { configs };
    let summary = run_sweep(&grid, &a.common.runs_dir, &run_options(&a.common))?;
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}

pub fn arch(c: ArchCommand) -> anyhow::Result<ExitCode> {
    match c {
        ArchCommand::Summary {
            file,
            colour_mode,
            input_size,
            json,
        } => {
            let im = read_architecture_file(&file)?;
            let mode: ColourMode = colour_mode.parse().map_err(anyhow::Error::msg)?;
            let s = im.arch.summarise(mode.channels(), input_size, input_size)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "name": im.arch.name, "format": im.format, "input": [mode.channels(), input_size, input_size],
                        "params": s.params, "trainable_params": s.trainable_params, "macs": s.macs, "outputs": s.outputs,
                        "layers": s.layers,
                    }))?
                );
            } else {
                println!(
                    "{} ({} format), input {}x{}x{}",
                    im.arch.name,
                    im.format,
                    mode.channels(),
                    input_size,
                    input_size
                );
                println!(
                    "{:<16} {:<18} {:>14} {:>12} {:>14}",
                    "layer", "type", "output", "params", "MACs"
                );
                for l in &s.layers {
                    println!(
                        "{:<16} {:<18} {:>14} {:>12} {:>14}",
                        l.path, l.kind, l.output, l.params, l.macs
                    );
                }
                println!(
                    "parameters: {} (trainable {}), forward: {:.1} MMAC = {:.3} GFLOP per image",
                    s.params,
                    s.trainable_params,
                    s.macs as f64 / 1e6,
                    2.0 * s.macs as f64 / 1e9
                );
            }
        }
        ArchCommand::Bench {
            file,
            colour_mode,
            batch_size,
            steps,
            warmup,
            infer_batch,
        } => {
            let im = read_architecture_file(&file)?;
            let mode: ColourMode = colour_mode.parse().map_err(anyhow::Error::msg)?;
            let spec = emolens_train::bench::SpeedSpec {
                channels: mode.channels(),
                size: 48,
                batch_size,
                steps,
                warmup,
                infer_batch,
            };
            let r =
                emolens_train::bench::speed(&im.arch, spec, &emolens_model::inference_device())?;
            println!("{}", serde_json::to_string(&r)?);
        }
        ArchCommand::Convert { file } => {
            let im = read_architecture_file(&file)?;
            println!("{}", im.arch.to_json());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Expands files, folders (recursively, sorted, hidden entries skipped: the workspace's one
/// walk, `emolens_core::files`) and glob patterns. A folder names every file under it; the
/// caller reports the ones that are not images, item by item.
fn expand_inputs(inputs: &[String]) -> Vec<Result<PathBuf, String>> {
    let walk = |dir: &Path, out: &mut Vec<Result<PathBuf, String>>| {
        out.extend(
            emolens_core::files::walk(dir, &|_| true)
                .into_iter()
                .map(|r| r.map_err(|e| format!("{e}: {}", e.source))),
        )
    };
    let mut out = Vec::new();
    for i in inputs {
        let p = Path::new(i);
        if p.is_dir() {
            walk(p, &mut out);
        } else if p.exists() {
            out.push(Ok(p.to_path_buf()));
        } else if i.contains(['*', '?', '[']) {
            match glob::glob(i) {
                Ok(paths) => {
                    let before = out.len();
                    for g in paths {
                        match g {
                            Ok(p) if p.is_dir() => walk(&p, &mut out),
                            Ok(p) => out.push(Ok(p)),
                            Err(e) => out.push(Err(format!("{i}: {e}"))),
                        }
                    }
                    if out.len() == before {
                        out.push(Err(format!("{i}: the pattern matches no file")));
                    }
                }
                Err(e) => out.push(Err(format!("{i}: bad glob pattern: {e}"))),
            }
        } else {
            out.push(Err(format!("{i}: no such file or folder")));
        }
    }
    out
}

pub fn predict(a: PredictArgs) -> anyhow::Result<ExitCode> {
    let model = load_classifier(a.model.as_deref())?;
    let meta = model.meta().clone();
    let pre = Preprocessor::new(meta.input.clone());
    eprintln!(
        "note: each image is classified as one face crop (use `emolens analyze` to find faces in photos); model: {}",
        meta.name
    );
    let items = expand_inputs(&a.inputs);
    let limits = DecodeLimits::default();
    let mut results: Vec<serde_json::Value> = Vec::with_capacity(items.len());
    let mut failed = 0usize;
    for chunk in items.chunks(a.batch_size.max(1)) {
        // Decode what we can; keep each item's place so results stay in input order.
        let mut tensors = Vec::new();
        let mut slots = Vec::new();
        for item in chunk {
            match item {
                Ok(path) => {
                    let name = path.display().to_string();
                    let decoded = std::fs::read(path)
                        .map_err(|e| format!("{name}: cannot read file: {e}"))
                        .and_then(|b| {
                            emolens_core::decode_image(&b, &name, &limits)
                                .map_err(|e| e.to_string())
                        });
                    match decoded {
                        Ok(img) => {
                            tensors.extend(pre.prepare(&img, None));
                            slots.push((name, Ok(())));
                        }
                        Err(e) => slots.push((name, Err(e))),
                    }
                }
                Err(e) => slots.push((String::new(), Err(e.clone()))),
            }
        }
        let n_ok = slots.iter().filter(|s| s.1.is_ok()).count();
        let probs = if n_ok > 0 {
            model.predict(&tensors, n_ok)?
        } else {
            Vec::new()
        };
        let mut it = probs.into_iter();
        for (name, status) in slots {
            match status {
                Ok(()) => {
                    let p = it.next().expect("one row per decoded image");
                    let (top, conf) = p
                        .iter()
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(b.1))
                        .map(|(i, v)| (meta.classes[i].clone(), *v))
                        .expect("at least two classes");
                    let probs: serde_json::Map<String, serde_json::Value> = meta
                        .classes
                        .iter()
                        .zip(&p)
                        .map(|(c, v)| (c.clone(), serde_json::json!(v)))
                        .collect();
                    results.push(serde_json::json!({"file": name, "status": "ok", "emotion": top, "confidence": conf, "probabilities": probs}));
                }
                Err(e) => {
                    failed += 1;
                    results.push(serde_json::json!({"file": name, "status": "error", "error": e}));
                }
            }
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"model": meta.name, "classes": meta.classes, "results": results})
            )?
        );
    } else {
        let header: Vec<String> = meta
            .classes
            .iter()
            .map(|c| format!("{:>8}", &c[..c.len().min(8)]))
            .collect();
        println!("{:<40} {:<9} {}", "file", "emotion", header.join(" "));
        for r in &results {
            let file = r["file"].as_str().unwrap_or("");
            if r["status"] == "ok" {
                let cols: Vec<String> = meta
                    .classes
                    .iter()
                    .map(|c| format!("{:>8.3}", r["probabilities"][c].as_f64().unwrap_or(0.0)))
                    .collect();
                println!(
                    "{:<40} {:<9} {}",
                    file,
                    r["emotion"].as_str().unwrap_or(""),
                    cols.join(" ")
                );
            } else {
                println!("{:<40} error: {}", file, r["error"].as_str().unwrap_or(""));
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "{failed} of {} input(s) could not be classified (see above)",
            results.len()
        );
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
