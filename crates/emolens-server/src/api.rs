//! Single-image prediction (the original design's `/api/predict`) and batch analysis
//! (`/v1/analyze`).

use crate::analysis::{FaceReport, PhotoReport};
use crate::error::{ServerError, ServerResult};
use crate::upload::{body_kind, read_json, read_multipart, BodyKind, Upload};
use crate::SharedState;
use axum::body::to_bytes;
use axum::extract::{Query, Request, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `POST /api/predict`: one image (multipart field `file`) classified as one face, answered in
/// the original design's shape with the labels taken from the model file.
#[utoipa::path(
    post,
    path = "/api/predict",
    operation_id = "api_predict",
    tag = "analysis",
    summary = "Classify one image as one face (the original design's endpoint)",
    description = "Multipart field `file`. Answers predicted_emotion (index), predicted_emotion_label, class_probabilities (a JSON object) and label_encodings, with the labels from the model file.",
    request_body(content = crate::upload::PredictForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "prediction", body = crate::api::Predict),
        (status = 400, description = "no file / empty file", body = crate::error::ErrorBody),
        (status = 408, response = crate::error::RequestTimeout),
        (status = 413, description = "image or body too large", body = crate::error::ErrorBody),
        (status = 415, description = "not multipart, or not an image", body = crate::error::ErrorBody),
        (status = 422, description = "image could not be decoded (e.g. truncated)", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security((), ("api_key" = [])),
)]
pub async fn predict(
    State(state): State<SharedState>,
    req: Request,
) -> ServerResult<Json<Predict>> {
    body_kind(&req, false)?;
    let mut uploads = read_multipart(req, &state.config).await?;
    if uploads.len() > 1 {
        return Err(ServerError::BadRequest(format!(
            "/api/predict takes one image, this request has {}; use /v1/analyze for many",
            uploads.len()
        )));
    }
    let upload = uploads.remove(0);
    if let Some(e) = upload.rejected {
        return Err(e);
    }
    let crop = state.crop.clone();
    let name = upload.name.clone();
    let bytes = upload.bytes.clone();
    let report = state
        .analyse_image(&upload.bytes, &upload.name, move || {
            crop.classify_crop(&bytes, &name)
        })
        .await;
    state.metrics.image(report.is_ok());
    let report = report?;
    let face = &report.faces[0];
    state.metrics.faces(1);
    let classes = &state.meta().classes;
    Ok(Json(Predict {
        predicted_emotion: face.top,
        predicted_emotion_label: classes[face.top].clone(),
        class_probabilities: classes
            .iter()
            .cloned()
            .zip(face.probabilities.iter().copied())
            .collect(),
        label_encodings: classes
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), c.clone()))
            .collect(),
    }))
}

/// The answer of `POST /api/predict` (the original design's shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct Predict {
    /// Index of the most probable class.
    pub predicted_emotion: usize,
    pub predicted_emotion_label: String,
    /// Probability of each class, by label.
    pub class_probabilities: BTreeMap<String, f32>,
    /// Class index (as a string) to label, in the model file's order.
    pub label_encodings: BTreeMap<String, String>,
}

/// Query of `/v1/analyze`.
#[derive(Debug, Deserialize, Default)]
pub struct AnalyzeQuery {
    /// Treat each image as one face crop (skip detection).
    pub assume_crop: Option<bool>,
}

/// One face in an analysis answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct FaceOut {
    #[serde(rename = "box")]
    pub bbox: crate::analysis::FaceBox,
    pub probabilities: BTreeMap<String, f32>,
    pub top_emotion: String,
    pub top_probability: f32,
    pub quality: f32,
    /// Below the confidence or quality threshold; reported but counted apart in ad results.
    pub uncertain: bool,
}

/// One item of a batch answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemOut {
    pub index: usize,
    pub name: String,
    /// `ok` or `error` (and, for stored uploads, `duplicate`).
    #[schema(value_type = String)]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faces: Option<Vec<FaceOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
    /// Set on stored uploads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photo_id: Option<i64>,
    /// Set on stored uploads with status `duplicate`: the ad's photo with the same content,
    /// which alone is counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<i64>,
}

/// Converts a face for output, applying the uncertainty thresholds.
pub fn face_out(state: &SharedState, f: &FaceReport) -> FaceOut {
    let classes = &state.meta().classes;
    let top_probability = f.probabilities.get(f.top).copied().unwrap_or(0.0);
    FaceOut {
        bbox: f.bbox,
        probabilities: classes
            .iter()
            .cloned()
            .zip(f.probabilities.iter().copied())
            .collect(),
        top_emotion: classes.get(f.top).cloned().unwrap_or_default(),
        top_probability,
        quality: f.quality,
        // The detector's own quality gate, when it ran, replaces the crop quality threshold.
        uncertain: top_probability < state.config.uncertain_below
            || f.uncertain.unwrap_or(f.quality < state.config.min_quality),
    }
}

/// Why one item of a batch failed (the rest of the batch is unaffected).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ItemError {
    /// The error's stable code (as [`ServerError::code`]).
    pub code: String,
    pub message: String,
    /// The HTTP status the error would have alone.
    pub status: u16,
}

/// The JSON of a failed item.
pub fn error_value(e: &ServerError) -> ItemError {
    ItemError {
        code: e.code().to_string(),
        message: e.to_string(),
        status: e.status().as_u16(),
    }
}

/// Counts of a batch answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchSummary {
    pub items: usize,
    pub ok: usize,
    pub failed: usize,
    /// Stored uploads only: uploads of a file the ad already has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<usize>,
    pub faces: usize,
}

/// The answer of `POST /v1/analyze`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyzeResponse {
    /// The model's name.
    pub model: String,
    /// The model's classes, in its order.
    pub classes: Vec<String>,
    pub assume_crop: bool,
    pub summary: BatchSummary,
    pub items: Vec<ItemOut>,
}

/// Analyses uploads one by one on the blocking pool; each gets its own result, so one bad image
/// never fails the batch. The request holds one analysis slot throughout (requests are served
/// in arrival order rather than all at once, so each finishes as early as it can) and reserves
/// each image's decode memory before decoding it. Waiting too long for either fails the whole
/// request with 429 (nothing was stored).
pub async fn analyze_uploads(
    state: &SharedState,
    uploads: Vec<Upload>,
    assume_crop: bool,
) -> ServerResult<Vec<(Upload, ServerResult<PhotoReport>)>> {
    let mut out = Vec::with_capacity(uploads.len());
    let slot = if uploads.iter().any(|u| u.rejected.is_none()) {
        Some(std::sync::Arc::new(state.analysis_slot().await?))
    } else {
        None
    };
    for u in uploads {
        if let Some(e) = u.rejected.clone() {
            state.metrics.image(false);
            out.push((u, Err(e)));
            continue;
        }
        let cost = match state.decode_cost(&u.bytes, &u.name) {
            Ok(c) => c,
            Err(e) => {
                state.metrics.image(false);
                out.push((u, Err(e)));
                continue;
            }
        };
        let memory = state.reserve_decode(cost, &u.name).await?;
        let hold = (slot.clone(), memory);
        let (bytes, name) = (u.bytes.clone(), u.name.clone());
        let result = if assume_crop {
            let crop = state.crop.clone();
            state
                .run_blocking(hold, move || crop.classify_crop(&bytes, &name))
                .await
        } else {
            let photos = state.photos.clone();
            state
                .run_blocking(hold, move || photos.analyze_photo(&bytes, &name))
                .await
        };
        state.metrics.image(result.is_ok());
        if let Ok(r) = &result {
            state.metrics.faces(r.faces.len() as u64);
        }
        out.push((u, result));
    }
    Ok(out)
}

/// Reads the images of a multipart or JSON request.
pub async fn read_images(
    state: &SharedState,
    req: Request,
) -> ServerResult<(Vec<Upload>, Option<bool>)> {
    match body_kind(&req, true)? {
        BodyKind::Multipart => Ok((read_multipart(req, &state.config).await?, None)),
        BodyKind::Json => {
            let body = to_bytes(req.into_body(), state.config.max_body_bytes)
                .await
                .map_err(|e| {
                    ServerError::TooLarge(format!(
                        "request body is over the size limit of {} MiB: {e}",
                        state.config.max_body_bytes >> 20
                    ))
                })?;
            read_json(&body, &state.config)
        }
    }
}

/// Builds the batch answer item for one analysed upload.
pub fn item_out(state: &SharedState, u: &Upload, r: &ServerResult<PhotoReport>) -> ItemOut {
    match r {
        Ok(rep) => ItemOut {
            index: u.index,
            name: u.name.clone(),
            status: "ok",
            width: Some(rep.width),
            height: Some(rep.height),
            faces: Some(rep.faces.iter().map(|f| face_out(state, f)).collect()),
            error: None,
            photo_id: None,
            duplicate_of: None,
        },
        Err(e) => ItemOut {
            index: u.index,
            name: u.name.clone(),
            status: "error",
            width: None,
            height: None,
            faces: None,
            error: Some(error_value(e)),
            photo_id: None,
            duplicate_of: None,
        },
    }
}

/// `POST /v1/analyze`: many images, every face with box, probabilities, top emotion, quality;
/// per-item status.
#[utoipa::path(
    post,
    path = "/v1/analyze",
    operation_id = "api_analyze",
    tag = "analysis",
    summary = "Analyse one or many photos: every face with box, probabilities, top emotion, quality",
    description = "Per-item status: one bad image never fails the batch. Images are not kept.",
    params(("assume_crop" = Option<bool>, Query, description = "take each image as one face crop (no detection)")),
    request_body(content((crate::upload::ImagesForm = "multipart/form-data"), (crate::upload::AnalyzeJson = "application/json"))),
    responses(
        (status = 200, description = "per-item results", body = crate::api::AnalyzeResponse),
        (status = 400, description = "malformed JSON / no images", body = crate::error::ErrorBody),
        (status = 408, response = crate::error::RequestTimeout),
        (status = 413, description = "too many files or body too large", body = crate::error::ErrorBody),
        (status = 415, description = "wrong content type", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security((), ("api_key" = [])),
)]
pub async fn analyze(
    State(state): State<SharedState>,
    Query(q): Query<AnalyzeQuery>,
    req: Request,
) -> ServerResult<Json<AnalyzeResponse>> {
    let (uploads, json_crop) = read_images(&state, req).await?;
    let assume_crop = q.assume_crop.or(json_crop).unwrap_or(false);
    let results = analyze_uploads(&state, uploads, assume_crop).await?;
    let items: Vec<ItemOut> = results
        .iter()
        .map(|(u, r)| item_out(&state, u, r))
        .collect();
    let ok = items.iter().filter(|i| i.status == "ok").count();
    let faces: usize = items
        .iter()
        .filter_map(|i| i.faces.as_ref())
        .map(|f| f.len())
        .sum();
    Ok(Json(AnalyzeResponse {
        model: state.meta().name.clone(),
        classes: state.meta().classes.clone(),
        assume_crop,
        summary: BatchSummary {
            items: items.len(),
            ok,
            failed: items.len() - ok,
            duplicates: None,
            faces,
        },
        items,
    }))
}
