//! `emolens data ...`: dataset statistics, cleaning, balancing and splitting. The work is in
//! `emolens-data`; this module parses flags and prints reports.
use anyhow::Context;
use emolens_data::balance::{self, BalanceOptions, TrimPolicy};
use emolens_data::clean::{self, CleanOptions, LeakPolicy};
use emolens_data::scan::{scan_dataset, ScanOptions};
use emolens_data::training::{split_manifest, OpenOptions};
use emolens_data::{stats, AugmentConfig, Manifest};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Dataset statistics: counts per split and class, grayscale vs colour, sizes, byte sizes,
    /// exact duplicates (within and across splits, conflicting labels), blank and unusable files.
    Stats(StatsArgs),
    /// Choose the files to train on (drop tiny, blank, duplicate, conflicting and leaked files)
    /// and write a manifest saying why each dropped file went. Originals are never changed.
    Clean(CleanArgs),
    /// Balance the train classes to one size: fill small classes with augmented copies, trim
    /// large ones. Writes a manifest (augmentation params, regenerated on load) or an image folder.
    Balance(BalanceArgs),
    /// Record a seeded, stratified train/valid split (carved from train when the dataset has no
    /// valid split) in a manifest with every file's SHA-256.
    Split(SplitArgs),
}

#[derive(clap::Args)]
pub struct StatsArgs {
    /// Dataset folder laid out <root>/<split>/<class>/<files>.
    #[arg(env = "EMOLENS_DATA_DIR")]
    dir: PathBuf,
    /// Print the full report as JSON on stdout (duplicate groups included).
    #[arg(long, env = "EMOLENS_DATA_JSON")]
    json: bool,
    /// Keep class folders beyond the seven emotions (e.g. contempt) instead of skipping them.
    #[arg(long, env = "EMOLENS_DATA_EXTRA_CLASSES")]
    extra_classes: bool,
    /// Hide the progress bar.
    #[arg(long, env = "EMOLENS_NO_PROGRESS")]
    no_progress: bool,
}

#[derive(clap::Args)]
pub struct CleanArgs {
    /// Dataset folder laid out <root>/<split>/<class>/<files>.
    #[arg(env = "EMOLENS_DATA_DIR")]
    dir: PathBuf,
    /// Manifest to write (JSON).
    #[arg(long, env = "EMOLENS_DATA_OUT")]
    out: PathBuf,
    /// Drop files smaller than this many bytes (0 = off); the original dropped train images
    /// under 675 bytes.
    #[arg(long, env = "EMOLENS_DATA_MIN_BYTES", default_value_t = 675)]
    min_bytes: u64,
    /// Byte-identical files in different splits: drop-train (keep the held-out copy, so test
    /// stays intact), drop-heldout (keep the train copy), or keep.
    #[arg(long, env = "EMOLENS_DATA_LEAK_POLICY", default_value = "drop-train")]
    leak_policy: LeakPolicy,
    /// Also clean the test split (size, blank, duplicates, conflicts); by default test is kept
    /// intact as the benchmark set.
    #[arg(long, env = "EMOLENS_DATA_CLEAN_TEST")]
    clean_test: bool,
    /// Keep blank (constant) images.
    #[arg(long, env = "EMOLENS_DATA_KEEP_BLANK")]
    keep_blank: bool,
    /// Keep redundant copies within a split.
    #[arg(long, env = "EMOLENS_DATA_KEEP_DUPLICATES")]
    keep_duplicates: bool,
    /// Keep duplicate groups whose copies carry different labels.
    #[arg(long, env = "EMOLENS_DATA_KEEP_CONFLICTING")]
    keep_conflicting: bool,
    /// Keep class folders beyond the seven emotions.
    #[arg(long, env = "EMOLENS_DATA_EXTRA_CLASSES")]
    extra_classes: bool,
    /// Hide the progress bar.
    #[arg(long, env = "EMOLENS_NO_PROGRESS")]
    no_progress: bool,
}

#[derive(clap::Args)]
pub struct BalanceArgs {
    /// Dataset folder, or a manifest from `emolens data clean` / `emolens data split`.
    #[arg(env = "EMOLENS_DATA_SOURCE")]
    source: PathBuf,
    /// Images per train class afterwards.
    #[arg(
        long,
        env = "EMOLENS_DATA_TARGET",
        required_unless_present = "recipe",
        conflicts_with = "recipe"
    )]
    target: Option<usize>,
    /// The original's recipes: balanced-1 (10,000 per class) or balanced-2 (30,000), with its
    /// balancing augmentation (original-balance) and smallest-first trimming.
    #[arg(long, env = "EMOLENS_DATA_RECIPE")]
    recipe: Option<String>,
    /// Which files go from classes over the target: smallest (the original's way) or random.
    #[arg(long, env = "EMOLENS_DATA_TRIM")]
    trim: Option<TrimPolicy>,
    /// Augmentation preset for the fill: standard, original, original-balance or none.
    #[arg(long, env = "EMOLENS_DATA_AUGMENT")]
    augment: Option<String>,
    /// Seed for the carve, the trim and the augmentation.
    #[arg(long, env = "EMOLENS_DATA_SEED", default_value_t = 42)]
    seed: u64,
    /// Validation fraction carved from train first when the source has no valid split.
    #[arg(long, env = "EMOLENS_DATA_VALID_FRACTION", default_value_t = 0.1)]
    valid_fraction: f32,
    /// Manifest to write (augmented entries carry their params; the loader regenerates them).
    #[arg(long, env = "EMOLENS_DATA_OUT", required_unless_present = "out_dir")]
    out: Option<PathBuf>,
    /// Write images instead: a new folder <dir>/<split>/<class>/ (augmented copies as PNG).
    #[arg(long, env = "EMOLENS_DATA_OUT_DIR")]
    out_dir: Option<PathBuf>,
    /// Keep class folders beyond the seven emotions.
    #[arg(long, env = "EMOLENS_DATA_EXTRA_CLASSES")]
    extra_classes: bool,
    /// Hide the progress bar.
    #[arg(long, env = "EMOLENS_NO_PROGRESS")]
    no_progress: bool,
}

#[derive(clap::Args)]
pub struct SplitArgs {
    /// Dataset folder, or a manifest from `emolens data clean`.
    #[arg(env = "EMOLENS_DATA_SOURCE")]
    source: PathBuf,
    /// Manifest to write (JSON).
    #[arg(long, env = "EMOLENS_DATA_OUT")]
    out: PathBuf,
    /// Fraction of each train class carved into valid when the dataset has no valid split.
    #[arg(long, env = "EMOLENS_DATA_VALID_FRACTION", default_value_t = 0.1)]
    valid_fraction: f32,
    /// Seed of the carve.
    #[arg(long, env = "EMOLENS_DATA_SEED", default_value_t = 42)]
    seed: u64,
    /// Keep class folders beyond the seven emotions.
    #[arg(long, env = "EMOLENS_DATA_EXTRA_CLASSES")]
    extra_classes: bool,
    /// Hide the progress bar.
    #[arg(long, env = "EMOLENS_NO_PROGRESS")]
    no_progress: bool,
}

pub fn run(c: DataCommand) -> anyhow::Result<ExitCode> {
    match c {
        DataCommand::Stats(a) => stats_cmd(a),
        DataCommand::Clean(a) => clean_cmd(a),
        DataCommand::Balance(a) => balance_cmd(a),
        DataCommand::Split(a) => split_cmd(a),
    }
}

fn warn_all<T: std::fmt::Display>(items: &[T]) {
    for p in items {
        tracing::warn!("{p}");
    }
}

fn stats_cmd(a: StatsArgs) -> anyhow::Result<ExitCode> {
    let scan = scan_dataset(
        &a.dir,
        &ScanOptions {
            extra_classes: a.extra_classes,
        },
    )?;
    warn_all(&scan.problems);
    tracing::info!(files = scan.files.len(), root = %a.dir.display(), "reading every file");
    let st = stats::dataset_stats(&scan, !a.no_progress);
    warn_all(&st.undecodable);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&st).context("serialising stats")?
        );
    } else {
        print!("{}", stats::render_text(&st));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_manifest(m: &Manifest, out: &Path) -> anyhow::Result<()> {
    m.write(out)?;
    tracing::info!(manifest = %out.display(), entries = m.entries.len(), dropped = m.dropped.len(), "manifest written");
    Ok(())
}

fn clean_cmd(a: CleanArgs) -> anyhow::Result<ExitCode> {
    let scan = scan_dataset(
        &a.dir,
        &ScanOptions {
            extra_classes: a.extra_classes,
        },
    )?;
    warn_all(&scan.problems);
    let analyses = stats::analyse(&scan, !a.no_progress);
    let opts = CleanOptions {
        min_bytes: a.min_bytes,
        drop_blank: !a.keep_blank,
        drop_duplicates: !a.keep_duplicates,
        drop_conflicting: !a.keep_conflicting,
        leak_policy: a.leak_policy,
        clean_test: a.clean_test,
    };
    let m = clean::clean(&scan, &analyses, &opts)?;
    write_manifest(&m, &a.out)?;
    println!("clean manifest: {}", a.out.display());
    println!("kept: {}", serde_json::to_string(&m.summary["kept"])?);
    println!("dropped: {}", serde_json::to_string(&m.summary["dropped"])?);
    for d in m
        .dropped
        .iter()
        .filter(|d| d.reason == emolens_data::DropReason::Undecodable)
    {
        println!("  not usable: {}", d.detail);
    }
    Ok(ExitCode::SUCCESS)
}

fn balance_cmd(a: BalanceArgs) -> anyhow::Result<ExitCode> {
    let mut opts = match (&a.recipe, a.target) {
        (Some(r), _) => BalanceOptions::recipe(r, a.seed, a.valid_fraction)
            .with_context(|| format!("unknown recipe '{r}': use balanced-1 or balanced-2"))?,
        (None, Some(target)) => BalanceOptions {
            target,
            trim: TrimPolicy::Smallest,
            augment: AugmentConfig::standard(),
            seed: a.seed,
            valid_fraction: a.valid_fraction,
            extra_classes: false,
        },
        (None, None) => anyhow::bail!("give --target N or --recipe balanced-1|balanced-2"),
    };
    opts.extra_classes = a.extra_classes;
    if let Some(t) = a.trim {
        opts.trim = t;
    }
    if let Some(name) = &a.augment {
        opts.augment = AugmentConfig::preset(name).with_context(|| {
            format!("unknown augmentation preset '{name}': use standard, original, original-balance or none")
        })?;
    }
    let m = balance::balance(&a.source, &opts, !a.no_progress)?;
    if let Some(out) = &a.out {
        write_manifest(&m, out)?;
        println!("balance manifest: {}", out.display());
    }
    if let Some(dir) = &a.out_dir {
        let problems = balance::write_folder(&m, dir, !a.no_progress)?;
        warn_all(&problems);
        println!(
            "balanced image folder: {} ({} files not written)",
            dir.display(),
            problems.len()
        );
    }
    println!("{}", serde_json::to_string_pretty(&m.summary)?);
    Ok(ExitCode::SUCCESS)
}

fn split_cmd(a: SplitArgs) -> anyhow::Result<ExitCode> {
    let m = split_manifest(
        &a.source,
        a.valid_fraction,
        a.seed,
        &OpenOptions {
            extra_classes: a.extra_classes,
        },
        !a.no_progress,
    )?;
    warn_all(&m.problems);
    write_manifest(&m, &a.out)?;
    println!("split manifest: {}", a.out.display());
    println!("{} (carved: {})", m.summary, m.settings["valid_carved"]);
    Ok(ExitCode::SUCCESS)
}
