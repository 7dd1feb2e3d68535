//! `emolens serve` (the REST API and web app), `emolens worker` (reaction-video jobs only),
//! `emolens keys` (API keys for campaign data, each in a workspace with a role) and `emolens
//! erase` (erasure and retention).

use anyhow::Context;
use emolens_server::runner::{self, Launch};
use emolens_server::{defaults, ServerConfig};
use std::path::PathBuf;
use std::process::ExitCode;

/// The service's database, as every command that uses it takes it.
#[derive(clap::Args)]
pub struct DatabaseArgs {
    /// The service's database: a SQLite file path or a postgres:// URL. `serve` and `worker`
    /// create it (a SQLite file with mode 0600) and migrate it on start; `keys` and `erase` need
    /// it to exist already.
    #[arg(long, env = "EMOLENS_DATABASE_URL", default_value = emolens_server::DEFAULT_DATABASE)]
    database_url: String,
}

/// Flags of `emolens serve`; each is also an environment variable.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. The default, 127.0.0.1, serves this machine only; `--host 0.0.0.0`
    /// (or EMOLENS_HOST=0.0.0.0, as the Docker image sets) serves every interface: do that only
    /// behind a firewall or proxy you trust, with --open-demo false if the demo endpoints must
    /// not be open.
    #[arg(long, env = "EMOLENS_HOST", default_value = emolens_server::DEFAULT_HOST)]
    host: String,
    /// Port to listen on (8000, as the original).
    #[arg(long, env = "EMOLENS_PORT", default_value_t = defaults::PORT)]
    port: u16,
    /// Model file; the bundled default model when absent.
    #[arg(long, env = "EMOLENS_MODEL")]
    model: Option<PathBuf>,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Largest request body, MiB.
    #[arg(long, env = "EMOLENS_MAX_BODY_MIB", default_value_t = defaults::MAX_BODY_MIB)]
    max_body_mib: usize,
    /// Largest single image, MiB.
    #[arg(long, env = "EMOLENS_MAX_IMAGE_MIB", default_value_t = defaults::MAX_IMAGE_MIB)]
    max_image_mib: usize,
    /// Largest image side, pixels.
    #[arg(long, env = "EMOLENS_MAX_IMAGE_SIDE", default_value_t = defaults::MAX_IMAGE_SIDE)]
    max_image_side: u32,
    /// Most files per request.
    #[arg(long, env = "EMOLENS_MAX_FILES", default_value_t = defaults::MAX_FILES)]
    max_files: usize,
    /// Most API requests with a valid key in flight, all keys together; more are answered 429.
    #[arg(long, env = "EMOLENS_MAX_CONCURRENT", default_value_t = defaults::MAX_CONCURRENT)]
    max_concurrent: usize,
    /// Most API requests without a valid key in flight, all clients together (a pool apart from
    /// keyed work, so anonymous traffic cannot lock keys out).
    #[arg(long, env = "EMOLENS_MAX_ANONYMOUS", default_value_t = defaults::MAX_ANONYMOUS)]
    max_anonymous: usize,
    /// Most requests in flight per API key.
    #[arg(long, env = "EMOLENS_MAX_PER_KEY", default_value_t = defaults::MAX_PER_KEY)]
    max_per_key: usize,
    /// Most requests without a valid key in flight per client address.
    #[arg(long, env = "EMOLENS_MAX_PER_CLIENT", default_value_t = defaults::MAX_PER_CLIENT)]
    max_per_client: usize,
    /// Requests a minute per API key (bursts of 10 seconds' worth pass); 0 for no limit.
    #[arg(long, env = "EMOLENS_KEY_RATE_PER_MINUTE", default_value_t = defaults::KEY_RATE_PER_MINUTE)]
    key_rate_per_minute: u32,
    /// Requests without a valid key a minute per client address; 0 for no limit.
    #[arg(long, env = "EMOLENS_CLIENT_RATE_PER_MINUTE", default_value_t = defaults::CLIENT_RATE_PER_MINUTE)]
    client_rate_per_minute: u32,
    /// Seconds a connection may take to send a request's headers (idle keep-alive included)
    /// before it is closed.
    #[arg(long, env = "EMOLENS_HEADER_TIMEOUT_SECS", default_value_t = defaults::HEADER_TIMEOUT_SECS)]
    header_timeout_secs: f64,
    /// Seconds a request body may take to arrive, from its headers; then 408 and the
    /// connection is closed.
    #[arg(long, env = "EMOLENS_BODY_TIMEOUT_SECS", default_value_t = defaults::BODY_TIMEOUT_SECS)]
    body_timeout_secs: f64,
    /// Seconds an admitted request may wait for an analysis slot or decode memory; then 429
    /// (nothing of it stored).
    #[arg(long, env = "EMOLENS_QUEUE_TIMEOUT_SECS", default_value_t = defaults::QUEUE_TIMEOUT_SECS)]
    queue_timeout_secs: f64,
    /// Most open connections; more wait in the listen queue.
    #[arg(long, env = "EMOLENS_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS)]
    max_connections: usize,
    /// Memory all image decoding may use at once, MiB; an image that needs more than all of it
    /// is refused (413), others wait their turn.
    #[arg(long, env = "EMOLENS_DECODE_BUDGET_MIB", default_value_t = defaults::DECODE_BUDGET_MIB)]
    decode_budget_mib: u64,
    /// Inference threads at once (default: the number of CPUs).
    #[arg(long, env = "EMOLENS_INFERENCE_WORKERS")]
    inference_workers: Option<usize>,
    /// Leave /api/predict, /v1/analyze and the TF-Serving endpoints open without an API key
    /// (campaign data always needs one). `--open-demo false` closes them.
    #[arg(long, env = "EMOLENS_OPEN_DEMO", default_value_t = defaults::OPEN_DEMO, action = clap::ArgAction::Set)]
    open_demo: bool,
    /// A face whose top probability is below this is counted as uncertain.
    #[arg(long, env = "EMOLENS_UNCERTAIN_BELOW", default_value_t = defaults::UNCERTAIN_BELOW)]
    uncertain_below: f32,
    /// A whole-image crop whose quality (contrast x size) is below this is uncertain.
    #[arg(long, env = "EMOLENS_MIN_QUALITY", default_value_t = defaults::MIN_QUALITY)]
    min_quality: f32,
    /// The browser runtimes of the on-device page (/ondevice): `node_modules` of web/vendor,
    /// installed by scripts/install-web-deps.sh (npm packages onnxruntime-web and
    /// @vladmandic/face-api).
    #[arg(
        long,
        env = "EMOLENS_WEB_VENDOR_DIR",
        default_value = "web/vendor/node_modules"
    )]
    web_vendor_dir: PathBuf,
    /// Take every uploaded image as one face crop instead of finding faces in it.
    #[arg(long, env = "EMOLENS_NO_FACE_DETECTION")]
    no_face_detection: bool,
    /// Apply the campaigns' retention periods (purge expired kept images and, where set,
    /// results) on start and then every this many minutes; 0 turns the task off (run
    /// `emolens erase --expired` from cron instead).
    #[arg(long, env = "EMOLENS_PURGE_EVERY_MINUTES", default_value_t = 60)]
    purge_every_minutes: u64,
    /// Largest reaction video or ad creative accepted, MiB (streamed to a temporary file, then
    /// stored in the database until analysed).
    #[arg(long, env = "EMOLENS_MAX_VIDEO_MIB", default_value_t = defaults::MAX_VIDEO_MIB)]
    max_video_mib: u64,
    /// Frames sampled per second of a reaction video when the upload does not say (`?fps=`).
    #[arg(long, env = "EMOLENS_VIDEO_FPS", default_value_t = defaults::VIDEO_FPS)]
    video_fps: f64,
    /// Reaction-video job workers in this process; 0 leaves the jobs to other processes on the
    /// same database (`emolens worker`, or other `emolens serve`s).
    #[arg(long, env = "EMOLENS_VIDEO_WORKERS", default_value_t = defaults::VIDEO_WORKERS)]
    video_workers: usize,
    #[command(flatten)]
    jobs: JobArgs,
    #[command(flatten)]
    pub runtime: crate::runtime::RuntimeArgs,
}

/// Job settings shared by `serve` and `worker`.
#[derive(clap::Args)]
pub struct JobArgs {
    /// Seconds a running job stays its worker's without news; after that (its process died),
    /// another worker takes it again. Renewed every third of it (at most every 2 s).
    #[arg(long, env = "EMOLENS_JOB_LEASE_SECONDS", default_value_t = defaults::JOB_LEASE_SECONDS)]
    job_lease_seconds: f64,
    /// How often an idle worker looks for queued jobs, milliseconds.
    #[arg(long, env = "EMOLENS_JOB_POLL_MS", default_value_t = defaults::JOB_POLL_MS)]
    job_poll_ms: u64,
    /// A job whose worker died this many times is failed instead of being tried again.
    #[arg(long, env = "EMOLENS_JOB_MAX_ATTEMPTS", default_value_t = defaults::JOB_MAX_ATTEMPTS)]
    job_max_attempts: i64,
    /// Only the first this many seconds of a reaction video are analysed (the job says so).
    #[arg(long, env = "EMOLENS_MAX_VIDEO_SECONDS", default_value_t = defaults::MAX_VIDEO_SECONDS)]
    max_video_seconds: f64,
    /// Video frames detected and classified together.
    #[arg(long, env = "EMOLENS_VIDEO_BATCH", default_value_t = defaults::VIDEO_BATCH)]
    video_batch: usize,
}

impl JobArgs {
    fn settings(&self, workers: usize) -> anyhow::Result<emolens_server::jobs::JobSettings> {
        anyhow::ensure!(
            self.job_lease_seconds.is_finite() && self.job_lease_seconds >= 1.0,
            "--job-lease-seconds must be at least 1, got {}",
            self.job_lease_seconds
        );
        anyhow::ensure!(
            self.job_max_attempts >= 1,
            "--job-max-attempts must be at least 1"
        );
        anyhow::ensure!(self.video_batch >= 1, "--video-batch must be at least 1");
        anyhow::ensure!(
            self.max_video_seconds.is_finite() && self.max_video_seconds > 0.0,
            "--max-video-seconds must be positive"
        );
        Ok(emolens_server::jobs::JobSettings {
            workers,
            lease: std::time::Duration::from_secs_f64(self.job_lease_seconds),
            poll: std::time::Duration::from_millis(self.job_poll_ms.max(50)),
            max_attempts: self.job_max_attempts,
            frames_per_batch: self.video_batch,
            max_video_seconds: self.max_video_seconds,
        })
    }
}

/// Flags of `emolens worker`: the database and model as `serve` takes them, and the jobs'.
#[derive(clap::Args)]
pub struct WorkerArgs {
    /// Model file; the bundled default model when absent.
    #[arg(long, env = "EMOLENS_MODEL")]
    model: Option<PathBuf>,
    #[command(flatten)]
    database: DatabaseArgs,
    /// A face whose top probability is below this is counted as uncertain.
    #[arg(long, env = "EMOLENS_UNCERTAIN_BELOW", default_value_t = defaults::UNCERTAIN_BELOW)]
    uncertain_below: f32,
    /// Jobs analysed at once by this process (each uses every core while it detects faces).
    #[arg(long, env = "EMOLENS_VIDEO_WORKERS", default_value_t = defaults::VIDEO_WORKERS)]
    video_workers: usize,
    #[command(flatten)]
    jobs: JobArgs,
    #[command(flatten)]
    pub runtime: crate::runtime::RuntimeArgs,
}

pub fn worker(a: WorkerArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&a.uncertain_below),
        "--uncertain-below must be between 0 and 1, got {}",
        a.uncertain_below
    );
    anyhow::ensure!(
        a.video_workers >= 1,
        "--video-workers must be at least 1 for a worker"
    );
    let jobs = a.jobs.settings(a.video_workers)?;
    let classifier =
        emolens_model::load_classifier(a.model.as_deref()).with_context(|| match &a.model {
            Some(p) => format!("loading the model {}", p.display()),
            None => "loading the bundled default model".to_string(),
        })?;
    runner::run_worker_blocking(
        runner::WorkerLaunch {
            database_url: a.database.database_url,
            uncertain_below: a.uncertain_below,
            jobs,
        },
        classifier,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `emolens keys` subcommands.
#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Create an API key; it is printed once, only its hash is stored.
    Create {
        /// A name to tell the key apart (e.g. the team or client using it).
        #[arg(long, env = "EMOLENS_KEY_NAME", default_value = "default")]
        name: String,
        /// The workspace the key works in (created when new). A key sees only its workspace's
        /// campaigns; databases from before workspaces were moved into `default`.
        #[arg(long, env = "EMOLENS_KEY_WORKSPACE", default_value = emolens_server::workspace::DEFAULT_WORKSPACE)]
        workspace: String,
        /// `admin` (keys, erasure, audit log, and everything analysts do), `analyst` (read and
        /// write) or `viewer` (read only).
        #[arg(long, env = "EMOLENS_KEY_ROLE", default_value = "admin")]
        role: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List keys (ids, names, workspaces, roles, prefixes; never the keys).
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke a key by id.
    Revoke {
        /// Key id from `emolens keys list`.
        #[arg(long, env = "EMOLENS_KEY_ID")]
        id: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// Flags of `emolens erase`: exactly one of the targets, or `--expired`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["campaign", "ad", "photo", "job", "expired"])))]
pub struct EraseArgs {
    /// Erase this campaign with its ads, photos, faces and kept images.
    #[arg(long, env = "EMOLENS_ERASE_CAMPAIGN")]
    campaign: Option<i64>,
    /// Erase this ad with its photos, faces and kept images.
    #[arg(long, env = "EMOLENS_ERASE_AD")]
    ad: Option<i64>,
    /// Erase this photo (and the uploads recorded as its duplicates) with its faces and image.
    #[arg(long, env = "EMOLENS_ERASE_PHOTO")]
    photo: Option<i64>,
    /// Erase this reaction-video job with its viewers, their per-second results and its video.
    #[arg(long, env = "EMOLENS_ERASE_JOB")]
    job: Option<i64>,
    /// Apply every campaign's retention period now (what `serve` does periodically).
    #[arg(long, env = "EMOLENS_ERASE_EXPIRED")]
    expired: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

pub fn erase(a: EraseArgs) -> anyhow::Result<ExitCode> {
    use emolens_server::erasure::Target;
    let target = match (a.campaign, a.ad, a.photo, a.job) {
        (Some(id), None, None, None) => Some(Target::Campaign(id)),
        (None, Some(id), None, None) => Some(Target::Ad(id)),
        (None, None, Some(id), None) => Some(Target::Photo(id)),
        (None, None, None, Some(id)) => Some(Target::Job(id)),
        (None, None, None, None) => None,
        _ => anyhow::bail!("give one of --campaign, --ad, --photo, --job or --expired"),
    };
    let erased = match target {
        Some(t) => runner::erase_blocking(&a.database.database_url, t)?,
        None => runner::purge_expired_blocking(&a.database.database_url)?,
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({ "erased": erased }))?
    );
    Ok(ExitCode::SUCCESS)
}

pub fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    for (flag, v) in [
        ("--uncertain-below", a.uncertain_below),
        ("--min-quality", a.min_quality),
    ] {
        anyhow::ensure!(
            (0.0..=1.0).contains(&v),
            "{flag} must be between 0 and 1, got {v}"
        );
    }
    anyhow::ensure!(
        a.video_fps.is_finite()
            && a.video_fps > 0.0
            && a.video_fps <= emolens_server::jobs::MAX_JOB_FPS,
        "--video-fps must be above 0 and at most {}, got {}",
        emolens_server::jobs::MAX_JOB_FPS,
        a.video_fps
    );
    anyhow::ensure!(a.max_video_mib >= 1, "--max-video-mib must be at least 1");
    let jobs = a.jobs.settings(a.video_workers)?;
    let secs = |flag: &str, v: f64| -> anyhow::Result<std::time::Duration> {
        anyhow::ensure!(
            v.is_finite() && v > 0.0 && v <= 86_400.0,
            "{flag} must be a number of seconds above 0 and at most 86400, got {v}"
        );
        Ok(std::time::Duration::from_secs_f64(v))
    };
    let header_timeout = secs("--header-timeout-secs", a.header_timeout_secs)?;
    let body_timeout = secs("--body-timeout-secs", a.body_timeout_secs)?;
    let queue_timeout = secs("--queue-timeout-secs", a.queue_timeout_secs)?;
    anyhow::ensure!(
        a.decode_budget_mib >= 16,
        "--decode-budget-mib must be at least 16 (MiB), got {}",
        a.decode_budget_mib
    );
    let classifier =
        emolens_model::load_classifier(a.model.as_deref()).with_context(|| match &a.model {
            Some(p) => format!("loading the model {}", p.display()),
            None => "loading the bundled default model".to_string(),
        })?;
    let default_config = ServerConfig::default();
    let config = ServerConfig {
        max_body_bytes: a.max_body_mib << 20,
        max_image_bytes: a.max_image_mib << 20,
        max_image_side: a.max_image_side,
        max_files: a.max_files.max(1),
        max_concurrent: a.max_concurrent.max(1),
        max_anonymous: a.max_anonymous.max(1),
        max_per_key: a.max_per_key.max(1),
        max_per_client: a.max_per_client.max(1),
        key_rate_per_minute: a.key_rate_per_minute,
        client_rate_per_minute: a.client_rate_per_minute,
        header_timeout,
        body_timeout,
        queue_timeout,
        max_connections: a.max_connections.max(1),
        decode_budget_bytes: a.decode_budget_mib.saturating_mul(1 << 20),
        inference_workers: a
            .inference_workers
            .unwrap_or(default_config.inference_workers)
            .max(1),
        open_demo: a.open_demo,
        uncertain_below: a.uncertain_below,
        min_quality: a.min_quality,
        ondevice: ondevice(a.model.as_deref(), classifier.meta(), &a.web_vendor_dir),
        max_video_bytes: a.max_video_mib << 20,
        video_fps: a.video_fps,
    };
    runner::run_blocking(
        Launch {
            host: a.host,
            port: a.port,
            database_url: a.database.database_url,
            config,
            detect_faces: !a.no_face_detection,
            purge_every: (a.purge_every_minutes > 0)
                .then(|| std::time::Duration::from_secs(a.purge_every_minutes.saturating_mul(60))),
            jobs,
        },
        classifier,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The on-device page's model: the served model file exported to ONNX, with its preprocessing.
/// A model that cannot be exported leaves the page disabled (a warning, not a failed start).
fn ondevice(
    model: Option<&std::path::Path>,
    meta: &emolens_core::ModelMeta,
    vendor_dir: &std::path::Path,
) -> Option<std::sync::Arc<emolens_server::ondevice::OnDevice>> {
    let (bytes, name) = match model {
        Some(p) => match std::fs::read(p) {
            Ok(b) => (b, p.display().to_string()),
            Err(e) => {
                tracing::warn!(
                    "{}: cannot read the model again for /ondevice: {e}",
                    p.display()
                );
                return None;
            }
        },
        None => (
            emolens_model::BUNDLED_MODEL?.to_vec(),
            "the bundled model".into(),
        ),
    };
    match emolens_model::onnx::export(&bytes, &name) {
        Ok(onnx) => {
            if !vendor_dir.join("onnxruntime-web").is_dir() {
                tracing::warn!(
                    "{}: no onnxruntime-web there; the on-device page (/ondevice) will not load \
                     until scripts/install-web-deps.sh has run (or --web-vendor-dir points at it)",
                    vendor_dir.display()
                );
            }
            Some(std::sync::Arc::new(
                emolens_server::ondevice::OnDevice::new(
                    onnx.bytes,
                    meta,
                    emolens_model::onnx::preprocessing(meta),
                    vendor_dir.to_path_buf(),
                ),
            ))
        }
        Err(e) => {
            tracing::warn!("the on-device page (/ondevice) is disabled: {e}");
            None
        }
    }
}

pub fn keys(c: KeysCommand) -> anyhow::Result<ExitCode> {
    match c {
        KeysCommand::Create {
            name,
            workspace,
            role,
            database: DatabaseArgs { database_url },
        } => {
            let role = emolens_server::workspace::Role::parse(&role)?;
            let k = runner::create_key_in_blocking(&database_url, &workspace, &name, role)?;
            eprintln!(
                "created key {} ('{}', {} of workspace '{}'); it is shown only now, store it safely:",
                k.id, k.name, k.role, k.workspace
            );
            println!("{}", k.key);
        }
        KeysCommand::List {
            database: DatabaseArgs { database_url },
        } => {
            let keys = runner::list_keys_blocking(&database_url)?;
            println!("{}", serde_json::to_string_pretty(&keys)?);
        }
        KeysCommand::Revoke {
            id,
            database: DatabaseArgs { database_url },
        } => {
            anyhow::ensure!(
                runner::revoke_key_blocking(&database_url, id)?,
                "no key with id {id}; see `emolens keys list`"
            );
            eprintln!("key {id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
