//! Health, info, metrics, the OpenAPI document, the docs page and the embedded web app.

use crate::error::ServerError;
use crate::{SharedState, PRIVACY_NOTICE};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Web assets, embedded in the binary.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    ),
    (
        "/app",
        "text/html; charset=utf-8",
        include_str!("../web/app.html"),
    ),
    (
        "/docs",
        "text/html; charset=utf-8",
        include_str!("../web/docs.html"),
    ),
    (
        "/ondevice",
        "text/html; charset=utf-8",
        include_str!("../web/ondevice.html"),
    ),
    (
        "/static/ondevice.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/ondevice.js"),
    ),
    (
        "/live",
        "text/html; charset=utf-8",
        include_str!("../web/live.html"),
    ),
    (
        "/static/live.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/live.js"),
    ),
    (
        "/static/style.css",
        "text/css; charset=utf-8",
        include_str!("../web/style.css"),
    ),
    (
        "/static/charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/charts.js"),
    ),
    (
        "/static/demo.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/demo.js"),
    ),
    (
        "/static/docs.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/docs.js"),
    ),
    (
        "/static/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app.js"),
    ),
    (
        "/favicon.ico",
        "image/svg+xml",
        include_str!("../web/favicon.svg"),
    ),
];

/// Routes that need no key and no concurrency slot (probes must answer when saturated).
pub fn routes() -> OpenApiRouter<SharedState> {
    let mut r = OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(info))
        .routes(routes!(metrics))
        .routes(routes!(openapi));
    // The pages and their files: not part of the API document.
    for (path, ctype, body) in ASSETS {
        let (ctype, body) = (*ctype, *body);
        r = r.route(
            path,
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, ctype),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    body,
                )
            }),
        );
    }
    r
}

/// What the API document says before its operations.
const API_DESCRIPTION: &str = "Measure how test audiences react to adverts from their faces: find faces, classify each into the model's emotions, aggregate per ad and campaign. Labels always come from the model file. Campaign data needs an API key (`emolens keys create`) sent as `Authorization: Bearer <key>`. Each key belongs to a workspace and sees only its campaigns (another workspace's ids answer 404); its role sets what it may do: `viewer` reads, `analyst` also creates and uploads, `admin` also manages keys, erases and reads the audit log (too low a role answers 403 naming the role needed); the single-image endpoints are open unless the server runs with `--open-demo false`. Errors are JSON `{\"error\": message, \"code\": code}` (TF-Serving endpoints: `{\"error\": message}`). Reaction videos uploaded to an ad are analysed as background jobs (202 with a job id; `GET /v1/jobs/{id}` for progress) from a queue in the database shared by every `emolens serve` and `emolens worker` on it; their per-second results make the ad's emotion timeline.";

/// The parts of the API document that no handler carries: its description, tags, security
/// schemes and shared responses. The operations and their schemas come from the handlers'
/// `#[utoipa::path]` annotations as [`crate::api_routes`] routes them.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "emolens", description = API_DESCRIPTION, license(name = "GPL-3.0-or-later")),
    modifiers(&SecuritySchemes),
    components(
        schemas(crate::error::ErrorBody),
        responses(crate::error::TooManyRequests, crate::error::RequestTimeout)
    ),
    tags(
        (name = "analysis", description = "Single images and batches, analysed in memory (nothing is stored)."),
        (name = "tf-serving", description = "TensorFlow Serving's REST shape, so TF-Serving clients work unchanged."),
        (name = "campaigns", description = "Campaigns, ads, audience photos, results, comparison and export (API key)."),
        (name = "videos", description = "Ad creatives, reaction videos analysed as background jobs, and the ads' emotion timelines (API key)."),
        (name = "live", description = "Live viewing links (API key) and the viewer's sessions (link token or session credential)."),
        (name = "admin", description = "The workspace's API keys and audit log (admin key)."),
        (name = "ondevice", description = "The model for the on-device page, which analyses in the browser."),
        (name = "system", description = "Health, information, metrics and this document.")
    )
)]
pub struct ApiDoc;

/// The security schemes the operations name: `api_key` (a bearer key) and `live_session` (a
/// live viewing session's credential).
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`emk_...`) as `Authorization: Bearer <key>`: from `emolens keys create` or an admin's `POST /v1/keys`",
                    ))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "live_session",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::live::SESSION_HEADER,
                "The `session` value answered when a live viewing session started (`<id>.<secret>`)",
            ))),
        );
    }
}

/// The OpenAPI document of `router`'s routes (see [`crate::api_routes`]), with the version and
/// the privacy notice filled in.
pub fn openapi_document() -> Value {
    let mut doc = crate::api_routes().into_openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let desc = doc.info.description.take().unwrap_or_default();
    doc.info.description = Some(format!(
        "{desc}\n\n**Privacy and lawful use.** {PRIVACY_NOTICE}"
    ));
    serde_json::to_value(&doc).unwrap_or_else(
        |e| json!({ "error": format!("the OpenAPI document does not serialise: {e}") }),
    )
}

/// The document, built once.
static DOCUMENT: std::sync::LazyLock<Value> = std::sync::LazyLock::new(openapi_document);

#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "system_openapi",
    tag = "system",
    summary = "This document",
    responses(
        (status = 200, description = "OpenAPI", body = Object),
    ),
)]
async fn openapi() -> Json<Value> {
    Json(DOCUMENT.clone())
}

#[utoipa::path(
    get,
    path = "/health/live",
    operation_id = "system_live",
    tag = "system",
    summary = "Liveness",
    responses(
        (status = 200, description = "alive", body = crate::system::Live),
    ),
)]
async fn live() -> Json<Live> {
    Json(Live {
        status: "ok".into(),
    })
}

/// The answer of the liveness probe.
#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    /// `ok`.
    pub status: String,
}

/// The answer of the readiness probes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` (503).
    pub status: String,
    /// `ok` (the server does not start without its model).
    pub model: String,
    /// `ok`, or why the database does not answer.
    pub database: String,
}

/// Readiness: the model is loaded (it is, or the server would not have started) and the
/// database answers.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "system_health",
    tag = "system",
    summary = "Readiness: model loaded and database answering",
    responses(
        (status = 200, description = "ready", body = crate::system::Health),
        (status = 503, description = "not ready", body = crate::system::Health),
    ),
)]
async fn health(State(state): State<SharedState>) -> Response {
    match state.db.ping().await {
        Ok(()) => Json(Health {
            status: "ok".into(),
            model: "ok".into(),
            database: "ok".into(),
        })
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable".into(),
                model: "ok".into(),
                database: e.to_string(),
            }),
        )
            .into_response(),
    }
}

/// Readiness, as [`health`].
#[utoipa::path(
    get,
    path = "/health/ready",
    operation_id = "system_ready",
    tag = "system",
    summary = "Readiness (same as /health)",
    responses(
        (status = 200, description = "ready", body = crate::system::Health),
        (status = 503, description = "not ready", body = crate::system::Health),
    ),
)]
async fn ready(state: State<SharedState>) -> Response {
    health(state).await
}

#[utoipa::path(
    get,
    path = "/info",
    operation_id = "system_info",
    tag = "system",
    summary = "Model (classes, input, runtime: oneDNN plan in int8, bf16 or f32; flip TTA and its confidence gate), version, build, limits",
    responses(
        (status = 200, description = "info", body = Object),
    ),
)]
async fn info(State(state): State<SharedState>) -> Json<Value> {
    let m = state.meta();
    Json(json!({
        "name": "emolens",
        "version": env!("CARGO_PKG_VERSION"),
        "build": {
            "git_sha": option_env!("EMOLENS_GIT_SHA").unwrap_or("unknown"),
            "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        },
        "model": {
            "name": m.name,
            "format_version": m.format_version,
            "classes": m.classes,
            "input": m.input,
            "metrics": m.metrics,
            "data_fingerprint": m.data_fingerprint,
            "runtime": state.runtime(),
            // How an answer is computed: mirrored too (always, or below this confidence).
            "flip_tta": m.flip_tta,
            "flip_tta_below": m.flip_tta_below,
            "int8_calibration_images": m.int8.as_ref().map(|c| c.images),
        },
        "database": state.db.backend(),
        "limits": {
            "max_body_bytes": state.config.max_body_bytes,
            "max_image_bytes": state.config.max_image_bytes,
            "max_image_side": state.config.max_image_side,
            "max_files": state.config.max_files,
            "max_concurrent": state.config.max_concurrent,
            "max_anonymous": state.config.max_anonymous,
            "max_per_key": state.config.max_per_key,
            "max_per_client": state.config.max_per_client,
            "key_rate_per_minute": state.config.key_rate_per_minute,
            "client_rate_per_minute": state.config.client_rate_per_minute,
            "header_timeout_s": state.config.header_timeout.as_secs_f64(),
            "body_timeout_s": state.config.body_timeout.as_secs_f64(),
            "queue_timeout_s": state.config.queue_timeout.as_secs_f64(),
            "max_connections": state.config.max_connections,
            "decode_budget_bytes": state.config.decode_budget_bytes,
            "inference_workers": state.config.inference_workers,
        },
        "thresholds": { "uncertain_below": state.config.uncertain_below, "min_quality": state.config.min_quality },
        "open_demo": state.config.open_demo,
        "privacy": PRIVACY_NOTICE,
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
    }))
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "system_metrics",
    tag = "system",
    summary = "Prometheus metrics",
    responses(
        (status = 200, description = "metrics", body = String, content_type = "text/plain; version=0.0.4"),
    ),
)]
async fn metrics(State(state): State<SharedState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state
            .metrics
            .render(state.started.elapsed().as_secs_f64(), &state.meta().name),
    )
        .into_response()
}

/// Unknown routes: a JSON 404 naming the path.
pub async fn not_found(req: Request) -> ServerError {
    ServerError::NotFound(format!(
        "no route {} {}; see /docs for the API",
        req.method(),
        req.uri().path()
    ))
}

/// The Content-Security-Policy of every answer: the pages load only this binary's own scripts,
/// styles and images (previews are `blob:` URLs of the chosen file), talk only to this server,
/// and may not be framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Middleware (outermost): security headers on every answer, and answers that no handler of
/// ours made (the router's 405, the body limit's 413, an extractor's plain-text 400) re-made as
/// the JSON error every other answer uses.
pub async fn harden(req: Request, next: Next) -> Response {
    let what = format!("{} {}", req.method(), req.uri().path());
    // The on-device page compiles WebAssembly (onnxruntime-web); no other page may.
    let csp = if req.uri().path().starts_with("/ondevice") {
        crate::ondevice::CONTENT_SECURITY_POLICY
    } else {
        CONTENT_SECURITY_POLICY
    };
    let mut resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let allow = resp
            .headers()
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = std::mem::take(resp.body_mut());
        let text = axum::body::to_bytes(body, 64 << 10)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let mut json =
            ServerError::from_plain(status, &text, &what, allow.as_deref()).into_response();
        // The status stands as the router or extractor chose it.
        *json.status_mut() = status;
        if let Some(a) = allow.and_then(|a| header::HeaderValue::from_str(&a).ok()) {
            json.headers_mut().insert(header::ALLOW, a);
        }
        resp = json;
    }
    let h = resp.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(csp),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            header::HeaderValue::from_static("nosniff"),
        ),
        (
            header::X_FRAME_OPTIONS,
            header::HeaderValue::from_static("DENY"),
        ),
        (
            header::REFERRER_POLICY,
            header::HeaderValue::from_static("no-referrer"),
        ),
    ] {
        h.insert(name, value);
    }
    resp
}
