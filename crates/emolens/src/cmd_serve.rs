//! `emolens serve` (the REST API and web app), `emolens keys` (API keys for campaign data, each
//! in a workspace with a role) and `emolens erase` (erasure and retention).

use anyhow::Context;
use emolens_server::runner::{self, Launch};
use emolens_server::ServerConfig;
use std::path::PathBuf;
use std::process::ExitCode;

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
    #[arg(long, env = "EMOLENS_PORT", default_value_t = 8000)]
    port: u16,
    /// Model file; the bundled default model when absent.
    #[arg(long, env = "EMOLENS_MODEL")]
    model: Option<PathBuf>,
    /// Database: a SQLite file path (created with mode 0600 and migrated on start) or a
    /// postgres:// URL.
    #[arg(long, env = "EMOLENS_DATABASE_URL", default_value = emolens_server::DEFAULT_DATABASE)]
    database_url: String,
    /// Largest request body, MiB.
    #[arg(long, env = "EMOLENS_MAX_BODY_MIB", default_value_t = 64)]
    max_body_mib: usize,
    /// Largest single image, MiB.
    #[arg(long, env = "EMOLENS_MAX_IMAGE_MIB", default_value_t = 16)]
    max_image_mib: usize,
    /// Largest image side, pixels.
    #[arg(long, env = "EMOLENS_MAX_IMAGE_SIDE", default_value_t = 8192)]
    max_image_side: u32,
    /// Most files per request.
    #[arg(long, env = "EMOLENS_MAX_FILES", default_value_t = 100)]
    max_files: usize,
    /// Most API requests in flight; more are answered 429.
    #[arg(long, env = "EMOLENS_MAX_CONCURRENT", default_value_t = 64)]
    max_concurrent: usize,
    /// Inference threads at once (default: the number of CPUs).
    #[arg(long, env = "EMOLENS_INFERENCE_WORKERS")]
    inference_workers: Option<usize>,
    /// Leave /api/predict, /v1/analyze and the TF-Serving endpoints open without an API key
    /// (campaign data always needs one). `--open-demo false` closes them.
    #[arg(long, env = "EMOLENS_OPEN_DEMO", default_value_t = true, action = clap::ArgAction::Set)]
    open_demo: bool,
    /// A face whose top probability is below this is counted as uncertain.
    #[arg(long, env = "EMOLENS_UNCERTAIN_BELOW", default_value_t = 0.4)]
    uncertain_below: f32,
    /// A whole-image crop whose quality (contrast x size) is below this is uncertain.
    #[arg(long, env = "EMOLENS_MIN_QUALITY", default_value_t = 0.15)]
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
        /// The server's database (as `emolens serve` takes it); it must exist already.
        #[arg(long, env = "EMOLENS_DATABASE_URL", default_value = emolens_server::DEFAULT_DATABASE)]
        database_url: String,
    },
    /// List keys (ids, names, workspaces, roles, prefixes; never the keys).
    List {
        /// The server's database (as `emolens serve` takes it); it must exist already.
        #[arg(long, env = "EMOLENS_DATABASE_URL", default_value = emolens_server::DEFAULT_DATABASE)]
        database_url: String,
    },
    /// Revoke a key by id.
    Revoke {
        /// Key id from `emolens keys list`.
        #[arg(long, env = "EMOLENS_KEY_ID")]
        id: i64,
        /// The server's database (as `emolens serve` takes it); it must exist already.
        #[arg(long, env = "EMOLENS_DATABASE_URL", default_value = emolens_server::DEFAULT_DATABASE)]
        database_url: String,
    },
}

/// Flags of `emolens erase`: exactly one of the targets, or `--expired`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["campaign", "ad", "photo", "expired"])))]
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
    /// Apply every campaign's retention period now (what `serve` does periodically).
    #[arg(long, env = "EMOLENS_ERASE_EXPIRED")]
    expired: bool,
    /// The server's database (as `emolens serve` takes it); it must exist already.
    #[arg(long, env = "EMOLENS_DATABASE_URL", default_value = emolens_server::DEFAULT_DATABASE)]
    database_url: String,
}

pub fn erase(a: EraseArgs) -> anyhow::Result<ExitCode> {
    use emolens_server::erasure::Target;
    let target = match (a.campaign, a.ad, a.photo) {
        (Some(id), None, None) => Some(Target::Campaign(id)),
        (None, Some(id), None) => Some(Target::Ad(id)),
        (None, None, Some(id)) => Some(Target::Photo(id)),
        (None, None, None) => None,
        _ => anyhow::bail!("give one of --campaign, --ad, --photo or --expired"),
    };
    let erased = match target {
        Some(t) => runner::erase_blocking(&a.database_url, t)?,
        None => runner::purge_expired_blocking(&a.database_url)?,
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
    let classifier =
        emolens_model::load_classifier(a.model.as_deref()).with_context(|| match &a.model {
            Some(p) => format!("loading the model {}", p.display()),
            None => "loading the bundled default model".to_string(),
        })?;
    let defaults = ServerConfig::default();
    let config = ServerConfig {
        max_body_bytes: a.max_body_mib << 20,
        max_image_bytes: a.max_image_mib << 20,
        max_image_side: a.max_image_side,
        max_files: a.max_files.max(1),
        max_concurrent: a.max_concurrent.max(1),
        inference_workers: a
            .inference_workers
            .unwrap_or(defaults.inference_workers)
            .max(1),
        open_demo: a.open_demo,
        uncertain_below: a.uncertain_below,
        min_quality: a.min_quality,
        ondevice: ondevice(a.model.as_deref(), classifier.meta(), &a.web_vendor_dir),
    };
    runner::run_blocking(
        Launch {
            host: a.host,
            port: a.port,
            database_url: a.database_url,
            config,
            detect_faces: !a.no_face_detection,
            purge_every: (a.purge_every_minutes > 0)
                .then(|| std::time::Duration::from_secs(a.purge_every_minutes.saturating_mul(60))),
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
            Some(std::sync::Arc::new(emolens_server::ondevice::OnDevice {
                model_onnx: onnx.bytes,
                model_json: serde_json::json!({
                    "model": meta.name,
                    "classes": meta.classes,
                    "margin": emolens_faces::AnalyzerConfig::default().margin,
                    "preprocessing": emolens_model::onnx::preprocessing(meta),
                }),
                vendor_dir: vendor_dir.to_path_buf(),
            }))
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
            database_url,
        } => {
            let role = emolens_server::workspace::Role::parse(&role)?;
            let k = runner::create_key_in_blocking(&database_url, &workspace, &name, role)?;
            eprintln!(
                "created key {} ('{}', {} of workspace '{}'); it is shown only now, store it safely:",
                k.id, k.name, k.role, k.workspace
            );
            println!("{}", k.key);
        }
        KeysCommand::List { database_url } => {
            let keys = runner::list_keys_blocking(&database_url)?;
            println!("{}", serde_json::to_string_pretty(&keys)?);
        }
        KeysCommand::Revoke { id, database_url } => {
            anyhow::ensure!(
                runner::revoke_key_blocking(&database_url, id)?,
                "no key with id {id}; see `emolens keys list`"
            );
            eprintln!("key {id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
