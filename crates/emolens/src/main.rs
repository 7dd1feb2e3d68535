//! `emolens`: the command-line program. It parses flags (each also an environment variable) and
//! calls the library crates; it holds no pipeline logic of its own.

mod cmd_analyze;
mod cmd_data;
mod cmd_eval;
mod cmd_model;
mod cmd_serve;
mod cmd_video;
mod logging;
mod progress;
mod runtime;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "emolens", version, about = "Measure how test audiences react to advertising, from their faces", long_about = None)]
struct Cli {
    /// Log filter (tracing syntax, e.g. `info`, `emolens_train=debug`).
    #[arg(long, global = true, env = "EMOLENS_LOG", default_value = "info")]
    log: String,
    /// Log format: `text` or `json`.
    #[arg(
        long,
        global = true,
        env = "EMOLENS_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Dataset tools: stats, clean, balance, split.
    #[command(subcommand)]
    Data(cmd_data::DataCommand),
    /// Train a network on a dataset.
    Train(cmd_model::TrainArgs),
    /// Train a grid of runs and keep the best model.
    Sweep(cmd_model::SweepArgs),
    /// Architecture tools: summary and parameter counts.
    Arch(cmd_model::ArchArgs),
    /// Model file tools: show metadata, change it (e.g. flip test-time augmentation).
    Model(cmd_model::ModelArgs),
    /// Classify face crops with the bundled or a given model.
    Predict(cmd_model::PredictArgs),
    /// Evaluate a model on a labelled dataset and write a report.
    Eval(cmd_eval::EvalArgs),
    /// Compare training runs from their histories.
    Experiments(cmd_eval::ExperimentsArgs),
    /// Find every face in photos and videos and classify each one; track viewers in videos.
    Analyze(cmd_analyze::AnalyzeArgs),
    /// Run the REST API and web app (and reaction-video job workers).
    Serve(cmd_serve::ServeArgs),
    /// Run reaction-video jobs only, from the service's database (beside `emolens serve`).
    Worker(cmd_serve::WorkerArgs),
    /// API keys for the service.
    #[command(subcommand)]
    Keys(cmd_serve::KeysCommand),
    /// Erase a campaign, ad, photo or reaction-video job from the service's database, or apply
    /// retention periods.
    Erase(cmd_serve::EraseArgs),
}

impl Command {
    /// The run-time flags of a command that runs networks.
    fn runtime(&self) -> Option<&runtime::RuntimeArgs> {
        match self {
            Command::Train(a) => Some(&a.common.runtime),
            Command::Sweep(a) => Some(&a.common.runtime),
            Command::Arch(a) => Some(&a.runtime),
            Command::Model(a) => Some(&a.runtime),
            Command::Predict(a) => Some(&a.runtime),
            Command::Eval(a) => Some(&a.runtime),
            Command::Analyze(a) => Some(&a.runtime),
            Command::Serve(a) => Some(&a.runtime),
            Command::Worker(a) => Some(&a.runtime),
            Command::Data(_) | Command::Experiments(_) | Command::Keys(_) | Command::Erase(_) => {
                None
            }
        }
    }
}

/// oneDNN runs its kernels on OpenMP threads, which by default spin between parallel regions.
/// On a busy machine (other processes, or concurrent requests in `serve`) the spinning threads
/// steal the cores from the work: measured 2.7x slower training under load. OpenMP reads its
/// policy once, when the library loads, before `main`; so unless the user chose one, emolens
/// restarts itself once with `OMP_WAIT_POLICY=PASSIVE` (idle-machine cost: about 4% of
/// training speed and 1 ms of batch-1 latency; set `OMP_WAIT_POLICY=ACTIVE` on a dedicated one).
fn openmp_wait_policy() {
    use std::os::unix::process::CommandExt;
    if !emolens_model::onednn::BUILT_IN
        || std::env::var_os("OMP_WAIT_POLICY").is_some()
        || std::env::var_os("GOMP_SPINCOUNT").is_some()
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    // exec only returns on failure; then emolens runs on with OpenMP's defaults.
    let _ = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .exec();
}

/// Training allocates and frees activation-sized buffers (megabytes) at every layer of every
/// step. glibc serves those with fresh mmap'd pages that the kernel must fault in and zero each
/// time (about 15% of a model_2_best training step in a profile); keeping freed memory in the
/// heap for reuse instead made training about 10% faster.
fn reuse_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// Training also frees and reallocates buffers larger than glibc's largest mmap threshold
/// (32 MiB) every step: model_2_best's 6400 x 2048 dense layer has a 52 MB weight gradient.
/// Those always come as fresh pages from mmap, so for the training commands every allocation is
/// served from the heap, and freed memory is reused instead of faulted in again. Measured on
/// `emolens arch bench model_2_best.json --batch-size 16` on one thread (`perf stat -e
/// page-faults`, 2 alternating runs, the same setting through
/// `GLIBC_TUNABLES=glibc.malloc.mmap_max=0`): with burn's optimiser, 197-234 K page faults per
/// run fell to 88-91 K and training rose from 45-48 to 50-54 images/s; with the fused
/// optimisers, which allocate less, 86-129 K fell to 86 K. The process keeps its peak
/// footprint, which a training run reaches every step anyway.
fn heap_only() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
    }
}

fn main() -> ExitCode {
    openmp_wait_policy();
    reuse_freed_memory();
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Train(_) | Command::Sweep(_) | Command::Arch(_)
    ) {
        heap_only();
    }
    logging::init(&cli.log, cli.log_format);
    if let Some(runtime) = cli.command.runtime() {
        runtime.apply();
    }
    let result = match cli.command {
        Command::Data(c) => cmd_data::run(c),
        Command::Train(a) => cmd_model::train(a),
        Command::Sweep(a) => cmd_model::sweep(a),
        Command::Arch(a) => cmd_model::arch(a.command),
        Command::Model(a) => cmd_model::model(a.command),
        Command::Predict(a) => cmd_model::predict(a),
        Command::Eval(a) => cmd_eval::eval(a),
        Command::Experiments(a) => cmd_eval::experiments(a),
        Command::Analyze(a) => cmd_analyze::analyze(a),
        Command::Serve(a) => cmd_serve::serve(a),
        Command::Worker(a) => cmd_serve::worker(a),
        Command::Keys(c) => cmd_serve::keys(c),
        Command::Erase(a) => cmd_serve::erase(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
