//! The on-device page (`/ondevice`, `web/ondevice.{html,js}`): webcam frames are analysed in the
//! viewer's browser and no image reaches this server. It serves what that page runs: the
//! served model exported to ONNX (`/ondevice/model.onnx`), its preprocessing and classes
//! (`/ondevice/model.json`), and the browser runtimes from the npm packages `onnxruntime-web`
//! and `@vladmandic/face-api` (`/ondevice/vendor/FILE`, read from `web/vendor/node_modules`,
//! installed by `scripts/install-web-deps.sh`): nothing is fetched from a CDN.
//!
//! The ONNX file is made by the binary crate (`emolens_model::onnx::export`) when the server
//! starts, so this crate stays free of the model runtime; without it the routes answer 404
//! saying how to enable them.

use crate::error::ServerError;
use crate::SharedState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::path::PathBuf;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What the on-device page needs from the server.
pub struct OnDevice {
    /// The served model as ONNX (float; batch norms folded, softmax output).
    pub model_onnx: Vec<u8>,
    /// `{"model", "classes", "margin", "preprocessing"}`: the ONNX metadata's preprocessing
    /// (`emolens_model::onnx::preprocessing`) and the face-crop margin of the photo analyser.
    pub model_json: serde_json::Value,
    /// `node_modules` of `web/vendor/package.json` (onnxruntime-web, @vladmandic/face-api).
    pub vendor_dir: PathBuf,
}

impl OnDevice {
    /// What the page runs for a model: its ONNX export, and `model.json` made of its metadata,
    /// `preprocessing` (`emolens_model::onnx::preprocessing` of the same model: this crate stays
    /// free of the model runtime) and the photo analyser's face-crop margin.
    pub fn new(
        model_onnx: Vec<u8>,
        meta: &emolens_core::ModelMeta,
        preprocessing: serde_json::Value,
        vendor_dir: PathBuf,
    ) -> Self {
        OnDevice {
            model_onnx,
            model_json: serde_json::json!({
                "model": meta.name,
                "classes": meta.classes,
                "margin": emolens_faces::AnalyzerConfig::default().margin,
                "preprocessing": preprocessing,
            }),
            vendor_dir,
        }
    }
}

impl std::fmt::Debug for OnDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnDevice")
            .field("model_onnx_bytes", &self.model_onnx.len())
            .field("vendor_dir", &self.vendor_dir)
            .finish()
    }
}

/// The files the page loads, by the name it asks for: (name, path under `node_modules`, type).
/// Nothing else under the vendor folder is served.
pub const VENDOR_FILES: &[(&str, &str, &str)] = &[
    (
        "ort.wasm.min.js",
        "onnxruntime-web/dist/ort.wasm.min.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "ort-wasm-simd-threaded.mjs",
        "onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
        "text/javascript; charset=utf-8",
    ),
    (
        "ort-wasm-simd-threaded.wasm",
        "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
        "application/wasm",
    ),
    (
        "face-api.js",
        "@vladmandic/face-api/dist/face-api.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "tiny_face_detector_model-weights_manifest.json",
        "@vladmandic/face-api/model/tiny_face_detector_model-weights_manifest.json",
        "application/json",
    ),
    (
        "tiny_face_detector_model.bin",
        "@vladmandic/face-api/model/tiny_face_detector_model.bin",
        "application/octet-stream",
    ),
];

/// The Content-Security-Policy of the on-device page and its files: the site-wide policy plus
/// WebAssembly compilation (`'wasm-unsafe-eval'`, not `'unsafe-eval'`) and workers from this
/// server, which onnxruntime-web needs.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; style-src 'self'; \
img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// `/ondevice/...` routes (public, like the pages: they hold no customer data).
pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(model_onnx))
        .routes(routes!(model_json))
        .routes(routes!(vendor))
}

fn enabled(state: &SharedState) -> Result<&OnDevice, ServerError> {
    state.config.ondevice.as_deref().ok_or_else(|| {
        ServerError::NotFound(
            "the on-device page is not enabled on this server (the model could not be exported \
             to ONNX, or the server was started without it); see docs/ondevice.md"
                .into(),
        )
    })
}

#[utoipa::path(
    get,
    path = "/ondevice/model.onnx",
    operation_id = "ondevice_model_onnx",
    tag = "ondevice",
    summary = "The served model exported to ONNX (float, batch norms folded, softmax output; preprocessing and class names in its metadata), for the on-device page (/ondevice) and any ONNX runtime",
    responses(
        (status = 200, description = "ONNX model", body = [u8], content_type = "application/octet-stream"),
        (status = 404, description = "the on-device page is not enabled on this server (the model could not be exported)", body = crate::error::ErrorBody),
    ),
)]
async fn model_onnx(State(state): State<SharedState>) -> Result<Response, ServerError> {
    let od = enabled(&state)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        od.model_onnx.clone(),
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/ondevice/model.json",
    operation_id = "ondevice_model_json",
    tag = "ondevice",
    summary = "What the on-device page needs beside the ONNX file: model name, classes, the face-crop margin and the preprocessing (colour mode, luma weights, size, scale and offset, gated flip TTA)",
    responses(
        (status = 200, description = "model description", body = Object),
        (status = 404, description = "the on-device page is not enabled on this server", body = crate::error::ErrorBody),
    ),
)]
async fn model_json(
    State(state): State<SharedState>,
) -> Result<Json<serde_json::Value>, ServerError> {
    Ok(Json(enabled(&state)?.model_json.clone()))
}

#[utoipa::path(
    get,
    path = "/ondevice/vendor/{file}",
    operation_id = "ondevice_vendor",
    tag = "ondevice",
    summary = "A file of the on-device page's browser runtimes (onnxruntime-web, the face detector and its weights)",
    params(("file" = String, Path, description = "the file's name")),
    responses(
        (status = 200, description = "the file", content(([u8] = "text/javascript"), ([u8] = "application/wasm"), ([u8] = "application/json"), ([u8] = "application/octet-stream"))),
        (status = 404, description = "not one of the page's files, the runtime is not installed, or the on-device page is not enabled", body = crate::error::ErrorBody),
    ),
)]
async fn vendor(
    State(state): State<SharedState>,
    Path(file): Path<String>,
) -> Result<Response, ServerError> {
    let od = enabled(&state)?;
    let Some((_, rel, ctype)) = VENDOR_FILES.iter().find(|(name, _, _)| *name == file) else {
        return Err(ServerError::NotFound(format!(
            "/ondevice/vendor/{file} is not one of the on-device page's files"
        )));
    };
    let path = od.vendor_dir.join(rel);
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        ServerError::NotFound(format!(
            "{file}: the on-device page's browser runtimes are not installed ({}: {e}); run \
             scripts/install-web-deps.sh (npm ci in web/vendor), or point --web-vendor-dir at \
             its node_modules",
            path.display()
        ))
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, *ctype),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        bytes,
    )
        .into_response())
}
