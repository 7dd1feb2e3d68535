//! The emolens service: a REST API (the original design's `/api/predict`, batch analysis,
//! TensorFlow-Serving-compatible endpoints, campaigns and ads with stored results) and the web
//! app, served by one axum server.
//!
//! Heavy work (decoding, detection, inference) runs on tokio's blocking pool, bounded by
//! [`ServerConfig::inference_workers`]; the whole API is bounded by
//! [`ServerConfig::max_concurrent`] and answers 429 beyond it. Reaction videos are analysed as
//! background jobs from a queue in the database ([`jobs`]), by worker tasks of this process
//! and of any other `emolens serve` or `emolens worker` sharing the database.

pub mod analysis;
pub mod api;
pub mod audit;
pub mod auth;
pub mod campaigns;
pub mod creative;
pub mod db;
pub mod erasure;
pub mod error;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod ondevice;
pub mod runner;
pub mod stats;
pub mod system;
pub mod tfserving;
pub mod timeline;
pub mod upload;
pub mod workspace;

use analysis::{CropAnalyzer, PhotoAnalyzer};
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::Router;
use db::Db;
use emolens_core::{DecodeLimits, EmotionClassifier};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Notify, Semaphore};

pub use error::{ServerError, ServerResult};

/// Privacy and lawful-use notice, shown in the OpenAPI description and the web app.
pub const PRIVACY_NOTICE: &str = "Uploaded images are analysed in memory and not kept unless \
the campaign is set to keep them; only the numbers are stored. Emotion recognition is for \
consenting test audiences only: inform the people photographed and get their consent. The EU AI \
Act prohibits emotion recognition in the workplace and in education.";

/// The database `emolens serve` and `emolens keys` use when none is given: a SQLite file in
/// the current folder.
pub const DEFAULT_DATABASE: &str = "emolens.db";

/// The address `emolens serve` listens on when none is given: loopback only. Serving other
/// machines (a container, a LAN) is a choice: `--host 0.0.0.0`.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// Settings of a running server (the CLI maps each flag and environment variable here).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest single image file, in bytes.
    pub max_image_bytes: usize,
    /// Largest image side, in pixels, accepted by the decoder.
    pub max_image_side: u32,
    /// Most files in one request.
    pub max_files: usize,
    /// Most API requests in flight; more are answered 429.
    pub max_concurrent: usize,
    /// Threads doing inference at once (others queue).
    pub inference_workers: usize,
    /// Leave `/api/predict`, `/v1/analyze` and the TF-Serving endpoints open without a key.
    pub open_demo: bool,
    /// A face whose top probability is below this is uncertain.
    pub uncertain_below: f32,
    /// A face whose quality is below this is uncertain.
    pub min_quality: f32,
    /// What the on-device page (`/ondevice`) runs in the browser; `None`: the page says it is
    /// not enabled here.
    pub ondevice: Option<Arc<ondevice::OnDevice>>,
    /// Largest reaction video or ad creative, in bytes (streamed to disk, never held whole).
    pub max_video_bytes: u64,
    /// Frames sampled per second of a reaction video unless the upload asks otherwise.
    pub video_fps: f64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 64 << 20,
            max_image_bytes: 16 << 20,
            max_image_side: 8192,
            max_files: 100,
            max_concurrent: 64,
            inference_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            open_demo: true,
            uncertain_below: 0.4,
            min_quality: 0.15,
            ondevice: None,
            max_video_bytes: 512 << 20,
            video_fps: 5.0,
        }
    }
}

impl ServerConfig {
    /// Decoder limits for uploads.
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_side: self.max_image_side,
            max_alloc: 1 << 30,
        }
    }
}

/// Everything a handler needs.
pub struct AppState {
    pub config: ServerConfig,
    /// Whole-image classification (crops, `/api/predict`, TF-Serving).
    pub crop: Arc<CropAnalyzer>,
    /// Face detection + classification for photos.
    pub photos: Arc<dyn PhotoAnalyzer>,
    pub db: Db,
    pub metrics: metrics::Metrics,
    /// Bounds requests in flight (try-acquire; 429 when empty).
    pub requests: Arc<Semaphore>,
    /// Bounds inference threads (acquire; queue when empty).
    pub inference: Arc<Semaphore>,
    pub started: Instant,
    /// Notified when a reaction video is queued, so a job worker of this process (if any)
    /// starts it at once.
    pub wake: Arc<Notify>,
}

/// Shared state handle.
pub type SharedState = Arc<AppState>;

impl AppState {
    /// Builds the state. `photos` is the face-detecting analyzer; `None` treats each photo as
    /// one face crop.
    pub fn new(
        config: ServerConfig,
        classifier: Arc<dyn EmotionClassifier>,
        photos: Option<Arc<dyn PhotoAnalyzer>>,
        db: Db,
    ) -> SharedState {
        let crop = Arc::new(CropAnalyzer::new(classifier, config.decode_limits()));
        let photos = photos.unwrap_or_else(|| crop.clone() as Arc<dyn PhotoAnalyzer>);
        Arc::new(AppState {
            requests: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            inference: Arc::new(Semaphore::new(config.inference_workers.max(1))),
            metrics: metrics::Metrics::default(),
            started: Instant::now(),
            wake: Arc::new(Notify::new()),
            config,
            crop,
            photos,
            db,
        })
    }

    /// The model's metadata.
    pub fn meta(&self) -> &emolens_core::ModelMeta {
        self.crop.classifier().meta()
    }

    /// How the model runs (kernels and number format).
    pub fn runtime(&self) -> String {
        self.crop.classifier().runtime()
    }

    /// Runs blocking work (decode, inference) on the blocking pool, at most
    /// `inference_workers` at a time.
    pub async fn blocking<T, F>(&self, f: F) -> ServerResult<T>
    where
        F: FnOnce() -> ServerResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .inference
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ServerError::Internal("inference pool closed".into()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ServerError::Internal(format!("inference task failed: {e}")))?
    }
}

/// The full router: API, web app, docs, health, metrics.
pub fn router(state: SharedState) -> Router {
    let inference = Router::new()
        .route("/api/predict", post(api::predict))
        .route("/v1/analyze", post(api::analyze))
        .route(
            "/v1/models/{model}",
            get(tfserving::status).post(tfserving::predict),
        )
        .route("/v1/models/{model}/metadata", get(tfserving::metadata))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key_unless_open,
        ));

    let data = Router::new()
        .route(
            "/v1/campaigns",
            get(campaigns::list).post(campaigns::create),
        )
        .route(
            "/v1/campaigns/{id}",
            get(campaigns::get_one).delete(erasure::erase_campaign),
        )
        .route("/v1/campaigns/{id}/ads", post(campaigns::create_ad))
        .route(
            "/v1/ads/{id}/videos",
            post(jobs::upload)
                .layer(DefaultBodyLimit::disable())
                .get(jobs::list),
        )
        .route(
            "/v1/ads/{id}/creative",
            put(creative::put_creative)
                .layer(DefaultBodyLimit::disable())
                .get(creative::get_creative),
        )
        .route("/v1/ads/{id}/timeline", get(timeline::get_timeline))
        .route(
            "/v1/ads/{id}/timeline/export",
            get(timeline::export_timeline),
        )
        .route("/v1/ads/{id}/timeline/compare", get(timeline::compare))
        .route(
            "/v1/ads/{id}/timeline/compare/export",
            get(timeline::export_compare),
        )
        .route(
            "/v1/jobs/{id}",
            get(jobs::get_job).delete(erasure::erase_job),
        )
        .route("/v1/jobs/{id}/video", get(jobs::video))
        .route("/v1/campaigns/{id}/compare", get(campaigns::compare))
        .route("/v1/campaigns/{id}/export", get(campaigns::export_campaign))
        .route(
            "/v1/ads/{id}",
            get(campaigns::get_ad)
                .patch(creative::patch_ad)
                .delete(erasure::erase_ad),
        )
        .route(
            "/v1/ads/{id}/photos",
            post(campaigns::upload).get(campaigns::list_photos),
        )
        .route("/v1/ads/{id}/results", get(campaigns::results))
        .route("/v1/ads/{id}/export", get(campaigns::export_ad))
        .route("/v1/photos/{id}", delete(erasure::erase_photo))
        .route("/v1/photos/{id}/image", get(campaigns::photo_image))
        .route("/v1/keys", get(keys::list).post(keys::create))
        .route("/v1/keys/{id}", delete(keys::revoke))
        .route("/v1/audit", get(audit::list))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ));

    let api = inference
        .merge(data)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            system::limit_concurrency,
        ));

    Router::new()
        .merge(api)
        .merge(system::routes())
        .merge(ondevice::routes())
        .fallback(system::not_found)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(system::harden))
        .with_state(state)
}

/// Serves on `listener` until `shutdown` resolves, then stops accepting and finishes the
/// requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SharedState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_workers(listener, state, None, shutdown).await
}

/// [`serve`], with this process's reaction-video job workers: on shutdown, after the requests
/// in flight, the workers stop (a job in progress goes back to the queue), then the database
/// closes.
pub async fn serve_with_workers(
    listener: tokio::net::TcpListener,
    state: SharedState,
    workers: Option<jobs::Workers>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, model = %state.meta().name, database = ?state.db.backend(), "emolens serving");
    let db = state.db.clone();
    let app = router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    if let Some(w) = workers {
        w.stop().await;
    }
    db.close().await;
    tracing::info!("emolens stopped; in-flight requests finished");
    Ok(())
}
