//! Synchronous entry points for the CLI: start the server or a job worker (own tokio runtime)
//! and manage keys.

use crate::analysis::{FacesAnalyzer, PhotoAnalyzer};
use crate::db::Db;
use crate::error::{ServerError, ServerResult};
use crate::{AppState, ServerConfig};
use emolens_core::EmotionClassifier;
use std::sync::Arc;

/// How to launch the server.
#[derive(Debug, Clone)]
pub struct Launch {
    pub host: String,
    pub port: u16,
    pub database_url: String,
    pub config: ServerConfig,
    /// Find faces in photos (true) or take every image as one face crop.
    pub detect_faces: bool,
    /// How often the campaigns' retention periods are applied (None: never, in this process).
    pub purge_every: Option<std::time::Duration>,
    /// Reaction-video job workers of this process (`workers: 0`: this process only queues).
    pub jobs: crate::jobs::JobSettings,
}

/// How to launch a job worker process (`emolens worker`).
#[derive(Debug, Clone)]
pub struct WorkerLaunch {
    pub database_url: String,
    /// The faces' confidence threshold (`--uncertain-below`, as `serve` takes it).
    pub uncertain_below: f32,
    pub jobs: crate::jobs::JobSettings,
}

fn runtime() -> ServerResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ServerError::Internal(format!("cannot start the async runtime: {e}")))
}

/// Resolves on Ctrl-C or SIGTERM (what `docker stop` sends).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

/// Opens the database, binds, and serves until Ctrl-C/SIGTERM.
pub fn run_blocking(launch: Launch, classifier: Arc<dyn EmotionClassifier>) -> ServerResult<()> {
    runtime()?.block_on(async move {
        let db = Db::connect(&launch.database_url).await?;
        let photos: Option<Arc<dyn PhotoAnalyzer>> = if launch.detect_faces {
            Some(Arc::new(FacesAnalyzer::for_classifier(
                classifier.clone(),
                launch.config.decode_limits(),
                launch.config.uncertain_below,
            )?))
        } else {
            None
        };
        if let Some(every) = launch.purge_every {
            tokio::spawn(crate::erasure::retention_task(db.clone(), every));
        }
        let state = AppState::new(launch.config.clone(), classifier.clone(), photos, db.clone());
        let addr = format!("{}:{}", launch.host, launch.port);
        let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
            ServerError::Internal(format!(
                "cannot listen on {addr}: {e}; pick another --port or stop what uses it"
            ))
        })?;
        let workers = if launch.jobs.workers > 0 {
            let analyzer =
                crate::jobs::video_analyzer(classifier, launch.config.uncertain_below)?;
            Some(crate::jobs::Workers::start(
                db,
                analyzer,
                launch.jobs.clone(),
                state.wake.clone(),
            ))
        } else {
            tracing::warn!("--video-workers 0: reaction videos are queued here but analysed only by other processes (`emolens worker`, or `emolens serve` with workers) on the same database");
            None
        };
        crate::serve_with_workers(listener, state, workers, shutdown_signal())
            .await
            .map_err(|e| ServerError::Internal(format!("server failed: {e}")))
    })
}

/// Runs reaction-video jobs from the database's queue until Ctrl-C/SIGTERM (a job in progress
/// then goes back to the queue).
pub fn run_worker_blocking(
    launch: WorkerLaunch,
    classifier: Arc<dyn EmotionClassifier>,
) -> ServerResult<()> {
    if launch.jobs.workers == 0 {
        return Err(ServerError::BadRequest(
            "--video-workers must be at least 1 for `emolens worker`".into(),
        ));
    }
    runtime()?.block_on(async move {
        let db = Db::connect(&launch.database_url).await?;
        let analyzer = crate::jobs::video_analyzer(classifier, launch.uncertain_below)?;
        // Pays the classifier's first (slow) call before the first job's clock.
        let warm = analyzer.clone();
        tokio::task::spawn_blocking(move || warm.warm_up())
            .await
            .map_err(|e| ServerError::Internal(e.to_string()))?
            .map_err(|e| ServerError::Internal(format!("model warm-up failed: {e}")))?;
        tracing::info!(database = ?db.backend(), workers = launch.jobs.workers, "emolens worker ready");
        let workers = crate::jobs::Workers::start(
            db.clone(),
            analyzer,
            launch.jobs.clone(),
            Arc::new(tokio::sync::Notify::new()),
        );
        shutdown_signal().await;
        workers.stop().await;
        db.close().await;
        tracing::info!("emolens worker stopped");
        Ok(())
    })
}

/// Runs `f` on the (existing) database at `database_url`, then closes it.
fn with_db<T, F, Fut>(database_url: &str, f: F) -> ServerResult<T>
where
    F: FnOnce(Db) -> Fut,
    Fut: std::future::Future<Output = ServerResult<T>>,
{
    runtime()?.block_on(async {
        let db = Db::connect_existing(database_url).await?;
        let r = f(db.clone()).await;
        db.close().await;
        r
    })
}

/// Creates an admin key of the default workspace in the (existing) database at
/// `database_url`; returns the key (shown once).
pub fn create_key_blocking(database_url: &str, name: &str) -> ServerResult<crate::auth::NewKey> {
    create_key_in_blocking(
        database_url,
        crate::workspace::DEFAULT_WORKSPACE,
        name,
        crate::workspace::Role::Admin,
    )
}

/// Creates a key with `role` in `workspace` (created when new); returns the key (shown once).
pub fn create_key_in_blocking(
    database_url: &str,
    workspace: &str,
    name: &str,
    role: crate::workspace::Role,
) -> ServerResult<crate::auth::NewKey> {
    with_db(database_url, |db| async move {
        crate::auth::create_key_in(&db, workspace, name, role).await
    })
}

/// Lists the keys of every workspace (never the keys themselves).
pub fn list_keys_blocking(database_url: &str) -> ServerResult<Vec<crate::db::ApiKeyInfo>> {
    with_db(database_url, |db| async move { db.list_keys(None).await })
}

/// Revokes a key by id.
pub fn revoke_key_blocking(database_url: &str, id: i64) -> ServerResult<bool> {
    with_db(
        database_url,
        |db| async move { db.revoke_key(None, id).await },
    )
}

/// Erases a campaign, ad or photo and everything referring to it (`emolens erase`).
pub fn erase_blocking(
    database_url: &str,
    target: crate::erasure::Target,
) -> ServerResult<crate::erasure::Erased> {
    with_db(database_url, |db| async move {
        db.erase(&crate::erasure::Eraser::Cli, target).await
    })
}

/// Applies every campaign's retention period now (`emolens erase --expired`).
pub fn purge_expired_blocking(database_url: &str) -> ServerResult<crate::erasure::Erased> {
    with_db(database_url, |db| async move {
        db.purge_expired(crate::db::now()).await
    })
}
