//! The emolens service: a REST API (the original design's `/api/predict`, batch analysis,
//! TensorFlow-Serving-compatible endpoints, campaigns and ads with stored results) and the web
//! app, served by one axum server.
//!
//! Heavy work (decoding, detection, inference) runs on tokio's blocking pool: at most
//! [`ServerConfig::inference_workers`] requests analyse at once, each in turn (first come, first
//! served), and decoding reserves its memory from one budget ([`ServerConfig::decode_budget_bytes`]).
//! Requests are admitted by [`limits`]: keyed and anonymous work in separate pools, per key and
//! per client rate and concurrency limits, header and body read timeouts; 429 beyond them.
//! Reaction videos are analysed as background jobs from a queue in the database ([`jobs`]), by
//! worker tasks of this process and of any other `emolens serve` or `emolens worker` sharing the
//! database.

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
pub mod limits;
pub mod listen;
pub mod live;
pub mod metrics;
pub mod ondevice;
pub mod runner;
pub mod stats;
pub mod system;
pub mod tfparse;
pub mod tfserving;
pub mod timeline;
pub mod upload;
pub mod workspace;

use analysis::{CropAnalyzer, PhotoAnalyzer};
use axum::extract::DefaultBodyLimit;
use axum::Router;
use db::Db;
use emolens_core::{DecodeLimits, EmotionClassifier};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

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

/// The defaults of [`ServerConfig`] and [`jobs::JobSettings`], in the units of the flags of
/// `emolens serve` and `emolens worker` (whose `--help` shows them): the one source of both.
pub mod defaults {
    /// Port `emolens serve` listens on (8000, as the original).
    pub const PORT: u16 = 8000;
    pub const MAX_BODY_MIB: usize = 64;
    pub const MAX_IMAGE_MIB: usize = 16;
    pub const MAX_IMAGE_SIDE: u32 = 8192;
    pub const MAX_FILES: usize = 100;
    pub const MAX_CONCURRENT: usize = 64;
    pub const MAX_ANONYMOUS: usize = 16;
    pub const MAX_PER_KEY: usize = 16;
    pub const MAX_PER_CLIENT: usize = 4;
    pub const KEY_RATE_PER_MINUTE: u32 = 1200;
    pub const CLIENT_RATE_PER_MINUTE: u32 = 300;
    pub const HEADER_TIMEOUT_SECS: f64 = 10.0;
    pub const BODY_TIMEOUT_SECS: f64 = 120.0;
    pub const QUEUE_TIMEOUT_SECS: f64 = 30.0;
    pub const MAX_CONNECTIONS: usize = 1024;
    pub const DECODE_BUDGET_MIB: u64 = 768;
    pub const OPEN_DEMO: bool = true;
    pub const UNCERTAIN_BELOW: f32 = 0.4;
    pub const MIN_QUALITY: f32 = 0.15;
    pub const MAX_VIDEO_MIB: u64 = 512;
    pub const VIDEO_FPS: f64 = 5.0;
    /// Reaction-video job workers of one process.
    pub const VIDEO_WORKERS: usize = 1;
    pub const JOB_LEASE_SECONDS: f64 = 60.0;
    pub const JOB_POLL_MS: u64 = 2000;
    pub const JOB_MAX_ATTEMPTS: i64 = 3;
    pub const MAX_VIDEO_SECONDS: f64 = 2.0 * 3600.0;
    pub const VIDEO_BATCH: usize = 8;
}

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
    /// Most API requests with a valid key in flight, all keys together; more are answered 429.
    pub max_concurrent: usize,
    /// Most API requests without a valid key in flight, all clients together: a pool apart, so
    /// anonymous traffic never takes the slots of keyed work.
    pub max_anonymous: usize,
    /// Most requests in flight per API key.
    pub max_per_key: usize,
    /// Most requests without a valid key in flight per client address.
    pub max_per_client: usize,
    /// Requests a minute per API key (0: unlimited).
    pub key_rate_per_minute: u32,
    /// Requests without a valid key a minute per client address (0: unlimited).
    pub client_rate_per_minute: u32,
    /// A connection whose request headers have not all arrived within this is closed (idle
    /// keep-alive connections included).
    pub header_timeout: Duration,
    /// A request body that has not all arrived within this (from its headers) is answered 408
    /// and its connection closed.
    pub body_timeout: Duration,
    /// An admitted request that waits longer than this for an analysis slot or decode memory
    /// is answered 429 (nothing of it was analysed or stored).
    pub queue_timeout: Duration,
    /// Most open connections; more wait in the listen queue.
    pub max_connections: usize,
    /// Memory all image decoding may use at once, in bytes; an image whose decoding needs more
    /// than all of it is refused with 413, others wait their turn.
    pub decode_budget_bytes: u64,
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
        use defaults as d;
        ServerConfig {
            max_body_bytes: d::MAX_BODY_MIB << 20,
            max_image_bytes: d::MAX_IMAGE_MIB << 20,
            max_image_side: d::MAX_IMAGE_SIDE,
            max_files: d::MAX_FILES,
            max_concurrent: d::MAX_CONCURRENT,
            max_anonymous: d::MAX_ANONYMOUS,
            max_per_key: d::MAX_PER_KEY,
            max_per_client: d::MAX_PER_CLIENT,
            key_rate_per_minute: d::KEY_RATE_PER_MINUTE,
            client_rate_per_minute: d::CLIENT_RATE_PER_MINUTE,
            header_timeout: Duration::from_secs_f64(d::HEADER_TIMEOUT_SECS),
            body_timeout: Duration::from_secs_f64(d::BODY_TIMEOUT_SECS),
            queue_timeout: Duration::from_secs_f64(d::QUEUE_TIMEOUT_SECS),
            max_connections: d::MAX_CONNECTIONS,
            decode_budget_bytes: d::DECODE_BUDGET_MIB << 20,
            inference_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            open_demo: d::OPEN_DEMO,
            uncertain_below: d::UNCERTAIN_BELOW,
            min_quality: d::MIN_QUALITY,
            ondevice: None,
            max_video_bytes: d::MAX_VIDEO_MIB << 20,
            video_fps: d::VIDEO_FPS,
        }
    }
}

impl ServerConfig {
    /// Decoder limits for uploads.
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_side: self.max_image_side,
            max_alloc: self.decode_budget_bytes.clamp(1 << 20, 1 << 30),
        }
    }

    /// The admission limits of [`limits::Limiter`].
    pub fn fair_limits(&self) -> limits::FairLimits {
        limits::FairLimits {
            keyed: self.max_concurrent,
            anonymous: self.max_anonymous,
            per_key: self.max_per_key,
            per_client: self.max_per_client,
            key_rate_per_minute: self.key_rate_per_minute,
            client_rate_per_minute: self.client_rate_per_minute,
        }
    }
}

/// Memory decoding and analysing one image takes beyond its decoded picture, per pixel: a grey
/// or RGB working copy, the detector's scaled copies, resizing. Measured peak: see
/// docs/service.md ("Memory").
pub const DECODE_OVERHEAD_PER_PIXEL: u64 = 4;

/// Decode memory is reserved in units of this many bytes.
const DECODE_UNIT: u64 = 1 << 10;

/// Everything a handler needs.
pub struct AppState {
    pub config: ServerConfig,
    /// Whole-image classification (crops, `/api/predict`, TF-Serving).
    pub crop: Arc<CropAnalyzer>,
    /// Face detection + classification for photos.
    pub photos: Arc<dyn PhotoAnalyzer>,
    pub db: Db,
    pub metrics: metrics::Metrics,
    /// Admission: who a request is, their limits, the keyed and anonymous pools.
    pub limiter: Arc<limits::Limiter>,
    /// Requests analysing at once (acquired in arrival order, held for the whole request).
    pub inference: Arc<Semaphore>,
    /// Decode memory, in units of [`DECODE_UNIT`] bytes.
    pub decode_budget: Arc<Semaphore>,
    pub started: Instant,
    /// Notified when a reaction video is queued, so a job worker of this process (if any)
    /// starts it at once.
    pub wake: Arc<Notify>,
    /// The face analyzer of live viewing sessions' frames (the reaction videos' settings),
    /// built on first use.
    live: std::sync::OnceLock<Arc<emolens_faces::Analyzer>>,
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
            limiter: limits::Limiter::new(config.fair_limits()),
            decode_budget: Arc::new(Semaphore::new(decode_units(config.decode_budget_bytes))),
            inference: Arc::new(Semaphore::new(config.inference_workers.max(1))),
            metrics: metrics::Metrics::default(),
            started: Instant::now(),
            wake: Arc::new(Notify::new()),
            live: std::sync::OnceLock::new(),
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

    /// The analyzer of live viewing sessions' frames: face detection and the quality gate as
    /// reaction videos have them ([`jobs::video_analyzer`]), so a live viewer and a filmed one
    /// are measured alike.
    pub fn live_analyzer(&self) -> ServerResult<Arc<emolens_faces::Analyzer>> {
        if let Some(a) = self.live.get() {
            return Ok(a.clone());
        }
        let a = jobs::video_analyzer(self.crop.classifier().clone(), self.config.uncertain_below)?;
        Ok(self.live.get_or_init(|| a).clone())
    }

    /// How the model runs (kernels and number format).
    pub fn runtime(&self) -> String {
        self.crop.classifier().runtime()
    }

    /// Waits for one of the `inference_workers` analysis slots, in arrival order, at most
    /// `queue_timeout` (then 429: the request was not started).
    pub async fn analysis_slot(&self) -> ServerResult<OwnedSemaphorePermit> {
        match tokio::time::timeout(
            self.config.queue_timeout,
            self.inference.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(ServerError::Internal("inference pool closed".into())),
            Err(_) => Err(ServerError::Busy(format!(
                "every analysis slot stayed busy for {} s (--queue-timeout-secs); nothing of this request was analysed or stored, send it again",
                self.config.queue_timeout.as_secs_f64()
            ))),
        }
    }

    /// The memory decoding and analysing `bytes` needs, from the image's header (no pixel is
    /// decoded); 413 when it needs more than the whole decode budget. An image whose header
    /// cannot be read costs nothing: its decoder stops at the same place, and the analyzer
    /// reports why in its own words.
    pub fn decode_cost(&self, bytes: &[u8], name: &str) -> ServerResult<u64> {
        let Ok(info) = emolens_core::probe_image(bytes, name, &self.config.decode_limits()) else {
            return Ok(0);
        };
        let pixels = info.width as u64 * info.height as u64;
        let cost = info.decoded_bytes + DECODE_OVERHEAD_PER_PIXEL * pixels;
        let budget = self.config.decode_budget_bytes;
        if cost > budget {
            return Err(ServerError::TooLarge(format!(
                "{name}: a {}x{} image needs about {} MiB to decode and analyse, more than the server's decode memory of {} MiB (--decode-budget-mib); downscale it",
                info.width,
                info.height,
                cost.div_ceil(1 << 20),
                budget >> 20
            )));
        }
        Ok(cost)
    }

    /// Reserves `cost` bytes of decode memory (see [`AppState::decode_cost`]), waiting at most
    /// `queue_timeout` for other decodes to give theirs back.
    pub async fn reserve_decode(
        &self,
        cost: u64,
        name: &str,
    ) -> ServerResult<OwnedSemaphorePermit> {
        let units = decode_units(cost).max(1);
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        match tokio::time::timeout(
            self.config.queue_timeout,
            self.decode_budget.clone().acquire_many_owned(units),
        )
        .await
        {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(ServerError::Internal("decode budget closed".into())),
            Err(_) => Err(ServerError::Busy(format!(
                "{name}: the decode memory stayed in use for {} s (--queue-timeout-secs); nothing of this request was stored, send it again",
                self.config.queue_timeout.as_secs_f64()
            ))),
        }
    }

    /// Runs blocking work on the blocking pool; `hold` (slots, reservations) is kept until the
    /// work is done, even if the request is dropped meanwhile.
    pub async fn run_blocking<T, F, H>(&self, hold: H, f: F) -> ServerResult<T>
    where
        F: FnOnce() -> ServerResult<T> + Send + 'static,
        T: Send + 'static,
        H: Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let r = f();
            drop(hold);
            r
        })
        .await
        .map_err(|e| ServerError::Internal(format!("inference task failed: {e}")))?
    }

    /// Runs blocking work (a video probe, a decode) on the blocking pool in one of the
    /// analysis slots (see [`AppState::analysis_slot`]).
    pub async fn blocking<T, F>(&self, f: F) -> ServerResult<T>
    where
        F: FnOnce() -> ServerResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let slot = self.analysis_slot().await?;
        self.run_blocking(slot, f).await
    }

    /// Analyses one encoded image on the blocking pool: takes an analysis slot and the image's
    /// decode memory first.
    pub async fn analyse_image<T, F>(&self, bytes: &[u8], name: &str, f: F) -> ServerResult<T>
    where
        F: FnOnce() -> ServerResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let cost = self.decode_cost(bytes, name)?;
        let slot = self.analysis_slot().await?;
        let memory = self.reserve_decode(cost, name).await?;
        self.run_blocking((slot, memory), f).await
    }
}

/// Bytes to decode-budget units (rounded up, within a semaphore's range).
fn decode_units(bytes: u64) -> usize {
    let units = bytes.div_ceil(DECODE_UNIT);
    usize::try_from(units)
        .unwrap_or(usize::MAX)
        .min(Semaphore::MAX_PERMITS)
        .min(u32::MAX as usize)
}

/// The inference endpoints: open unless the server runs with `--open-demo false`.
fn inference_routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(api::predict))
        .routes(routes!(api::analyze))
        .routes(routes!(tfserving::status, tfserving::predict))
        .routes(routes!(tfserving::metadata))
}

/// Campaign data: always an API key (the handlers check its role).
fn data_routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(campaigns::list, campaigns::create))
        .routes(routes!(campaigns::get_one, erasure::erase_campaign))
        .routes(routes!(campaigns::create_ad))
        .routes(routes!(jobs::routes::upload).layer(DefaultBodyLimit::disable()))
        .routes(routes!(jobs::routes::list))
        .routes(routes!(creative::put_creative).layer(DefaultBodyLimit::disable()))
        .routes(routes!(creative::get_creative))
        .routes(routes!(timeline::routes::get_timeline))
        .routes(routes!(timeline::routes::export_timeline))
        .routes(routes!(timeline::routes::compare))
        .routes(routes!(timeline::routes::export_compare))
        .routes(routes!(jobs::routes::get_job, erasure::erase_job))
        .routes(routes!(jobs::routes::video))
        .routes(routes!(campaigns::compare))
        .routes(routes!(campaigns::export_campaign))
        .routes(routes!(
            campaigns::get_ad,
            creative::patch_ad,
            erasure::erase_ad
        ))
        .routes(routes!(campaigns::upload, campaigns::list_photos))
        .routes(routes!(campaigns::results))
        .routes(routes!(campaigns::export_ad))
        .routes(routes!(erasure::erase_photo))
        .routes(routes!(campaigns::photo_image))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::revoke))
        .routes(routes!(audit::list))
        .routes(routes!(live::list_links, live::create_link))
        .routes(routes!(live::revoke_link))
}

/// Live viewing sessions: the viewer's page has no key; its link token or session credential
/// is checked by the handlers (see [`live`]).
fn viewing_routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(live::link_info))
        .routes(routes!(live::link_creative))
        .routes(routes!(live::start_session))
        .routes(routes!(live::post_frame).layer(DefaultBodyLimit::max(live::MAX_FRAME_BYTES)))
        .routes(routes!(live::end_session))
        .routes(routes!(live::erase_session))
}

/// Every documented route, without the layers [`router`] puts around them: the OpenAPI
/// document ([`system::openapi_document`]) is the one these routes collect from their handlers'
/// `#[utoipa::path]` annotations, so it lists what the router serves.
pub fn api_routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::with_openapi(system::ApiDoc::openapi())
        .merge(inference_routes())
        .merge(data_routes())
        .merge(viewing_routes())
        .merge(system::routes())
        .merge(ondevice::routes())
}

/// The full router: API, web app, docs, health, metrics.
pub fn router(state: SharedState) -> Router {
    let inference = inference_routes().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_key_unless_open,
    ));
    let data = data_routes().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_key,
    ));
    let api =
        inference
            .merge(data)
            .merge(viewing_routes())
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                limits::admit,
            ));

    let (app, _) = OpenApiRouter::new()
        .merge(api)
        .merge(system::routes())
        .merge(ondevice::routes())
        .split_for_parts();
    app.fallback(system::not_found)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(system::harden))
        .with_state(state)
}

/// Serves on `listener` until `shutdown` resolves, then stops accepting and finishes the
/// requests in flight (see [`listen`] for the connection limits and timeouts).
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
    let settings = listen::Settings::from(&state.config);
    let app = router(state);
    listen::serve(listener, app, settings, shutdown).await?;
    if let Some(w) = workers {
        w.stop().await;
    }
    db.close().await;
    tracing::info!("emolens stopped; in-flight requests finished");
    Ok(())
}
