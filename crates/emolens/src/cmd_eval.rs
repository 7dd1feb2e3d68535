//! `emolens eval` (a model on a labelled dataset, to report files) and `emolens experiments`
//! (training runs compared from their histories).

use anyhow::{bail, Context};
use emolens_core::{EmotionClassifier, Preprocessor};
use emolens_data::{load_cache, scan_dataset, ScanOptions, Split};
use emolens_eval::experiments::{analyse, filter_by_mode, load_runs, write_experiments_report};
use emolens_eval::inference::predict_pixels;
use emolens_eval::labels::{ferplus_usage, select_ferplus, Labels};
use emolens_eval::mapping::{map_classes, parse_class_map};
use emolens_eval::report::{
    load_from_disk, write_eval_report, EvalDocument, EvalSection, ItemFailure, LabelSource,
};
use emolens_eval::{dedup, evaluate};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Model file (.emolens); the bundled default model when omitted.
    #[arg(long, env = "EMOLENS_MODEL")]
    model: Option<PathBuf>,
    /// Labelled images: a dataset root (`<root>/<split>/<class>/`), one split folder
    /// (`<split>/<class>/`, e.g. `fer2013/test`) or any folder of class folders
    /// (`<dir>/<class>/`). With `--labels ferplus:...`: the FER2013 folder the votes' paths are
    /// relative to.
    #[arg(long, env = "EMOLENS_EVAL_DATA")]
    data: PathBuf,
    /// Split to evaluate when DATA is a dataset root. With FER+ labels: `test` (FER2013's
    /// PrivateTest rows, FER+'s test set; also `private-test`), `valid` (PublicTest, FER+'s
    /// validation set; also `public-test`) or `train`.
    #[arg(long, env = "EMOLENS_EVAL_SPLIT", default_value = "test")]
    split: String,
    /// Where the true labels come from: `folders` (each file's class folder) or
    /// `ferplus:VOTES_CSV` (the FER+ majority vote of each FER2013 file, e.g.
    /// `ferplus:../shared/data/ferplus/votes.csv`; rows without a unique plurality among the
    /// seven emotions are left out, and the report says how many and why).
    #[arg(long, env = "EMOLENS_EVAL_LABELS", default_value = "folders")]
    labels: String,
    /// Folder for report.json, report.md, report.html and plots/.
    #[arg(long, env = "EMOLENS_EVAL_OUT", default_value = "reports/eval")]
    out: PathBuf,
    /// Flip test-time augmentation for this run, replacing the model file's own setting:
    /// `always` (also `--flip-tta` alone: every image's probabilities averaged with its
    /// mirror's), `off`, a confidence gate between 0 and 1 (mirror the images the model is less
    /// sure of), or `model` (the file's setting, shown by `emolens model info`).
    #[arg(
        long,
        env = "EMOLENS_EVAL_FLIP_TTA",
        default_value = "model",
        num_args = 0..=1,
        default_missing_value = "always",
        value_parser = emolens_model::tta::FlipTta::parse
    )]
    flip_tta: emolens_model::tta::FlipTta,
    /// Training images' folder: also report metrics without the files that duplicate a training
    /// file byte for byte.
    #[arg(long, env = "EMOLENS_EVAL_EXCLUDE_TRAIN_DUPLICATES")]
    exclude_train_duplicates: Option<PathBuf>,
    /// Dataset class to model class, for names that do not match (`contempt=neutral,joy=happy`).
    #[arg(long, env = "EMOLENS_EVAL_CLASS_MAP", default_value = "")]
    class_map: String,
    /// Images per inference batch.
    #[arg(long, env = "EMOLENS_EVAL_BATCH_SIZE", default_value_t = 256)]
    batch_size: usize,
    #[command(flatten)]
    pub runtime: crate::runtime::RuntimeArgs,
}

#[derive(clap::Args)]
pub struct ExperimentsArgs {
    /// History files (Keras History JSON), run folders (`history.json` + `config.json`), or
    /// folders of either.
    #[arg(
        required = true,
        env = "EMOLENS_EXPERIMENTS_INPUTS",
        value_delimiter = ','
    )]
    inputs: Vec<PathBuf>,
    /// Keep only runs whose name ends in this mode (`augment`, `balanced`, `balanced-2`).
    #[arg(long, env = "EMOLENS_EXPERIMENTS_MODE")]
    mode: Option<String>,
    /// Folder for experiments.json, experiments.md, experiments.html and plots/.
    #[arg(
        long,
        env = "EMOLENS_EXPERIMENTS_OUT",
        default_value = "reports/experiments"
    )]
    out: PathBuf,
}

/// The files of the split to evaluate: their paths and dataset class names, plus the
/// dataset's class list and problems found while scanning.
struct EvalData {
    files: Vec<(PathBuf, String)>,
    problems: Vec<ItemFailure>,
}

fn scan_eval_data(data: &Path, split_name: &str) -> anyhow::Result<EvalData> {
    if !data.is_dir() {
        bail!(
            "{}: no such folder; give a dataset root or a split folder of class folders",
            data.display()
        );
    }
    let is_split_name = |p: &Path| {
        p.file_name()
            .is_some_and(|n| Split::from_folder(&n.to_string_lossy()).is_some())
    };
    let has_split_folders = emolens_core::files::list_sorted(data)?
        .iter()
        .any(|e| e.is_dir && is_split_name(&e.path));
    if !has_split_folders && !is_split_name(data) {
        return scan_class_folders(data);
    }
    let opts = ScanOptions {
        extra_classes: true,
    };
    let wanted = Split::from_folder(split_name)
        .with_context(|| format!("--split '{split_name}': use train, valid or test"))?;
    // A split folder given directly (`fer2013/test`): scan its parent and keep that split.
    let own_split = data
        .file_name()
        .and_then(|n| Split::from_folder(&n.to_string_lossy()));
    let (root, split) = match own_split {
        Some(s) => (data.parent().unwrap_or(data).to_path_buf(), s),
        None => (data.to_path_buf(), wanted),
    };
    let scan = scan_dataset(&root, &opts).with_context(|| {
        format!(
            "{}: expected <root>/<split>/<class>/<images> or a split folder named train/valid/test",
            data.display()
        )
    })?;
    let files: Vec<(PathBuf, String)> = scan
        .split_files(split)
        .filter(|f| own_split.is_none() || f.path.starts_with(data))
        .map(|f| (f.path.clone(), scan.classes[f.class].clone()))
        .collect();
    if files.is_empty() {
        bail!(
            "{}: the {} split has no images (splits found: {}); choose another with --split",
            root.display(),
            split.name(),
            scan.splits
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let problems = scan
        .problems
        .iter()
        .filter(|p| {
            // Keep problems of the evaluated split (or outside any split), not of the others.
            let first = p
                .path
                .strip_prefix(&root)
                .ok()
                .and_then(|r| r.components().next());
            let in_split = first.and_then(|c| Split::from_folder(&c.as_os_str().to_string_lossy()));
            in_split.is_none() || in_split == Some(split)
        })
        .map(|p| ItemFailure {
            file: p.path.display().to_string(),
            error: p.message.clone(),
        })
        .collect();
    Ok(EvalData { files, problems })
}

/// A folder of class folders with no split level (`<dir>/<class>/<images>`, e.g. a small
/// labelled set of one's own): every file of every class folder. Files beside the class folders
/// (notes such as SOURCE.md) are skipped; folders inside a class folder are reported.
fn scan_class_folders(dir: &Path) -> anyhow::Result<EvalData> {
    let sorted = |d: &Path| -> anyhow::Result<Vec<emolens_core::files::DirEntry>> {
        Ok(emolens_core::files::list_sorted(d)?
            .into_iter()
            .filter(|e| !e.is_hidden())
            .collect())
    };
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for class_dir in sorted(dir)?.into_iter().filter(|e| e.is_dir) {
        let class = class_dir.name;
        for f in sorted(&class_dir.path)? {
            let path = f.path;
            if !f.is_dir {
                files.push((path, class.clone()));
            } else {
                problems.push(ItemFailure {
                    file: path.display().to_string(),
                    error: "not a file inside a class folder (images belong in <dir>/<class>/); skipped".into(),
                });
            }
        }
    }
    if files.is_empty() {
        bail!(
            "{}: no images found; give a dataset root (<root>/<split>/<class>/), a split folder \
             or a folder of class folders (<dir>/<class>/<images>)",
            dir.display()
        );
    }
    Ok(EvalData { files, problems })
}

/// The files to evaluate with their true class names, by the chosen label source.
fn labelled_files(a: &EvalArgs, labels: &Labels) -> anyhow::Result<(EvalData, LabelSource)> {
    match labels {
        Labels::Folders => {
            let data = scan_eval_data(&a.data, &a.split)?;
            let source = LabelSource {
                candidates: data.files.len(),
                ..LabelSource::default()
            };
            Ok((data, source))
        }
        Labels::FerPlus(votes_path) => {
            let usage = ferplus_usage(&a.split)?;
            // `fer2013/test` given for `fer2013`: the votes' paths start at the dataset root.
            let root = match a.data.file_name() {
                Some(n) if Split::from_folder(&n.to_string_lossy()).is_some() => {
                    a.data.parent().unwrap_or(&a.data).to_path_buf()
                }
                _ => a.data.clone(),
            };
            if !root.is_dir() {
                bail!(
                    "{}: no such folder; with FER+ labels --data is the FER2013 folder holding train/ and test/",
                    root.display()
                );
            }
            let votes = emolens_data::ferplus::FerPlusVotes::load(votes_path).with_context(|| {
                format!(
                    "--labels ferplus:{}: cannot read the FER+ votes file (see ../shared/data/ferplus/SOURCE.md)",
                    votes_path.display()
                )
            })?;
            let sel = select_ferplus(&votes, votes_path, &root, usage)?;
            let left: usize = sel.source.left_out.iter().map(|l| l.count).sum();
            tracing::info!(
                candidates = sel.source.candidates,
                labelled = sel.files.len(),
                left_out = left,
                "FER+ majority labels"
            );
            Ok((
                EvalData {
                    files: sel.files,
                    problems: Vec::new(),
                },
                sel.source,
            ))
        }
    }
}

pub fn eval(a: EvalArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let classifier = emolens_model::tta::load_classifier_tta(a.model.as_deref(), a.flip_tta)?;
    let meta = classifier.meta().clone();
    let model_source = a
        .model
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "bundled default model".into());
    tracing::info!(model = %meta.name, source = %model_source, classes = ?meta.classes, "model loaded");

    let labels_arg = Labels::parse(&a.labels)?;
    let (data, label_source) = labelled_files(&a, &labels_arg)?;
    let explicit = parse_class_map(&a.class_map)?;
    let mut dataset_classes: Vec<String> = data.files.iter().map(|f| f.1.clone()).collect();
    dataset_classes.sort();
    dataset_classes.dedup();
    let mapping = map_classes(&dataset_classes, &meta.classes, &explicit)?;
    let class_map: Vec<(String, String)> = dataset_classes
        .iter()
        .zip(&mapping)
        .map(|(d, &m)| (d.clone(), meta.classes[m].clone()))
        .collect();
    let samples: Vec<emolens_data::Sample> = data
        .files
        .iter()
        .map(|(path, class)| {
            let d = dataset_classes.iter().position(|c| c == class).unwrap_or(0);
            emolens_data::Sample {
                path: path.clone(),
                class: mapping[d],
                sha256: None,
                augment: None,
            }
        })
        .collect();
    tracing::info!(images = samples.len(), data = %a.data.display(), "evaluating");

    let pre = Preprocessor::new(meta.input.clone());
    let (cache, problems) = load_cache(&samples, &pre, std::io::stderr().is_terminal());
    let mut failures = data.problems;
    failures.extend(problems.iter().map(|p| ItemFailure {
        file: p.path.display().to_string(),
        error: p.message.clone(),
    }));
    if cache.is_empty() {
        bail!(
            "{}: none of the {} images could be read; see the warnings above",
            a.data.display(),
            samples.len()
        );
    }
    let infer_started = Instant::now();
    let bar = crate::progress::bar(cache.len() as u64, "images");
    let probs = predict_pixels(
        classifier.as_ref() as &dyn EmotionClassifier,
        &pre,
        &cache.pixels,
        cache.len(),
        a.batch_size,
        &mut |done| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    let infer_secs = infer_started.elapsed().as_secs_f64();
    let labels: Vec<usize> = cache.labels.iter().map(|&l| l as usize).collect();
    let files: Vec<String> = cache
        .paths
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let full = evaluate(&labels, &probs, &meta.classes)?;
    let mut sections = vec![EvalSection {
        key: "all".into(),
        title: "all files".into(),
        report: full,
        files: files.clone(),
        excluded: vec![],
    }];

    if let Some(train_dir) = &a.exclude_train_duplicates {
        let train_hashes = dedup::hash_tree(train_dir)?;
        let keep: Vec<usize> = (0..labels.len())
            .filter(|&i| !train_hashes.contains(&cache.sha256[i]))
            .collect();
        let excluded: Vec<String> = (0..labels.len())
            .filter(|&i| train_hashes.contains(&cache.sha256[i]))
            .map(|i| files[i].clone())
            .collect();
        tracing::info!(
            excluded = excluded.len(),
            kept = keep.len(),
            train_files_hashed = train_hashes.len(),
            "test files that duplicate a training file"
        );
        if keep.is_empty() {
            bail!(
                "every evaluated file duplicates a training file in {}",
                train_dir.display()
            );
        }
        let l: Vec<usize> = keep.iter().map(|&i| labels[i]).collect();
        let p: Vec<Vec<f32>> = keep.iter().map(|&i| probs[i].clone()).collect();
        sections.push(EvalSection {
            key: "dedup".into(),
            title: "without train duplicates".into(),
            report: evaluate(&l, &p, &meta.classes)?,
            files: keep.iter().map(|&i| files[i].clone()).collect(),
            excluded,
        });
    }

    let doc = EvalDocument {
        emolens_version: env!("CARGO_PKG_VERSION").into(),
        model_name: meta.name.clone(),
        model_source,
        data_dir: a.data.display().to_string(),
        labels: label_source,
        class_map,
        flip_tta: meta.flip_tta,
        flip_tta_below: meta.flip_tta.then_some(meta.flip_tta_below).flatten(),
        runtime: classifier.runtime(),
        seconds: started.elapsed().as_secs_f64(),
        images_per_second: cache.len() as f64 / infer_secs.max(1e-9),
        failures,
        sections,
    };
    write_eval_report(&doc, &a.out, &load_from_disk)?;
    for s in &doc.sections {
        let r = &s.report;
        println!(
            "{:<26} n={:<6} accuracy {:.4}  top-2 {:.4}  macro-F1 {:.4}  macro-AUC {}  ECE {:.4}  (majority baseline {:.4}, uniform {:.4})",
            s.title,
            r.n_samples,
            r.accuracy,
            r.top2_accuracy,
            r.macro_avg.f1,
            r.roc.macro_auc.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a".into()),
            r.calibration.ece,
            r.baselines[0].accuracy,
            r.baselines[1].accuracy,
        );
        if let Some(nr) = &r.neutral {
            println!(
                "{:<26} neutral: recall {:.4}, read as negative ({}) {} of {} = {:.4}",
                "",
                nr.recall,
                nr.negative_classes.join("/"),
                nr.as_negative,
                nr.support,
                nr.as_negative_share,
            );
        }
    }
    if doc.labels.kind != "folders" {
        let left: usize = doc.labels.left_out.iter().map(|l| l.count).sum();
        println!("labels: {}", doc.labels.description);
        println!(
            "{} candidate files, {} left out by the labels{}",
            doc.labels.candidates,
            left,
            doc.labels
                .left_out
                .iter()
                .map(|l| format!("; {} {}", l.count, l.reason))
                .collect::<String>()
        );
    }
    println!(
        "{} images in {:.2} s ({:.0} images/s inference); {} unreadable; report: {}",
        cache.len(),
        doc.seconds,
        doc.images_per_second,
        doc.failures.len(),
        a.out.join("report.html").display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn experiments(a: ExperimentsArgs) -> anyhow::Result<ExitCode> {
    let (mut runs, skipped) = load_runs(&a.inputs);
    for s in &skipped {
        eprintln!("skipped {}: {}", s.path, s.reason);
    }
    if let Some(mode) = &a.mode {
        let before = runs.len();
        runs = filter_by_mode(runs, mode);
        tracing::info!(kept = runs.len(), of = before, mode = %mode, "filtered runs by mode");
    }
    let report = analyse(&runs, skipped)?;
    write_experiments_report(&report, &runs, &a.out)?;
    let s = &report.best_val_accuracy_stats;
    println!(
        "runs: {} (skipped inputs: {})",
        report.n_runs,
        report.skipped.len()
    );
    println!(
        "best run: {} max val_accuracy {} (epoch {})",
        report.best.name, report.best.best_val_accuracy, report.best.best_epoch
    );
    println!("mean of the runs' max val_accuracy: {}", s.mean);
    println!("median of the runs' max val_accuracy: {}", s.median);
    println!("top 10:");
    for (i, r) in report.ranking.iter().take(10).enumerate() {
        println!("  {:>2}. {:<60} {:.4}", i + 1, r.name, r.best_val_accuracy);
    }
    println!("worst 5:");
    let n = report.ranking.len();
    for (i, r) in report.ranking.iter().enumerate().skip(n.saturating_sub(5)) {
        println!("  {:>2}. {:<60} {:.4}", i + 1, r.name, r.best_val_accuracy);
    }
    println!("report: {}", a.out.join("experiments.html").display());
    Ok(ExitCode::SUCCESS)
}
