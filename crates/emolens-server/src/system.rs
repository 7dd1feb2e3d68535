//! Health, info, metrics, the OpenAPI document, the docs page and the embedded web app.

use crate::error::ServerError;
use crate::{SharedState, PRIVACY_NOTICE};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

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

/// The OpenAPI document (hand-written, checked against the router by the tests).
const OPENAPI: &str = include_str!("../web/openapi.json");

/// Routes that need no key and no concurrency slot (probes must answer when saturated).
pub fn routes() -> Router<SharedState> {
    let mut r = Router::new()
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/ready", get(health))
        .route("/info", get(info))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi));
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

/// The OpenAPI document with the privacy notice and version filled in.
pub fn openapi_document() -> Value {
    let mut doc: Value = serde_json::from_str(OPENAPI)
        .unwrap_or_else(|e| json!({ "error": format!("embedded openapi.json is invalid: {e}") }));
    if let Some(info) = doc.get_mut("info").and_then(|i| i.as_object_mut()) {
        info.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
        let desc = info
            .get("description")
            .and_then(|d| d.as_str())
            .unwrap_or("")
            .to_string();
        info.insert(
            "description".into(),
            json!(format!(
                "{desc}\n\n**Privacy and lawful use.** {PRIVACY_NOTICE}"
            )),
        );
    }
    doc
}

async fn openapi() -> Json<Value> {
    Json(openapi_document())
}

async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the model is loaded (it is, or the server would not have started) and the
/// database answers.
async fn health(State(state): State<SharedState>) -> Response {
    match state.db.ping().await {
        Ok(()) => Json(json!({ "status": "ok", "model": "ok", "database": "ok" })).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "model": "ok", "database": e.to_string() })),
        )
            .into_response(),
    }
}

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
