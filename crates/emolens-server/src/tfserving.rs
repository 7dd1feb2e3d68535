//! TensorFlow Serving's REST shape (`/v1/models/emotion`, `.../metadata`, `...:predict`), so
//! TF-Serving clients work unchanged. Errors are `{"error": "..."}` as TF Serving sends them.
//!
//! Numeric instances are model inputs as the Keras model took them: `H x W` or `H x W x C`
//! arrays (channels last) already normalised as the model file says (for the bundled model,
//! pixel / 255). `{"b64": ...}` instances are encoded images, prepared by the one preprocessing
//! path.

use crate::error::ServerError;
use crate::tfparse::{self, ParseError};
use crate::upload::decode_b64;
use crate::SharedState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use emolens_core::{decode_image, InputSpec, Preprocessor};
use serde_json::{json, Value};

/// The model name TF-Serving clients address.
pub const MODEL_NAME: &str = "emotion";
/// The (only) version served.
pub const MODEL_VERSION: &str = "1";

/// An error as TF Serving sends it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TfError {
    pub error: String,
}

fn tf_error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(TfError { error: msg.into() })).into_response()
}

fn not_found(name: &str) -> Response {
    tf_error(
        StatusCode::NOT_FOUND,
        format!("Servable not found for request: Latest({name}); this server serves the model '{MODEL_NAME}'"),
    )
}

/// `GET /v1/models/emotion`: model status.
#[utoipa::path(
    get,
    path = "/v1/models/{model}",
    operation_id = "tfserving_status",
    tag = "tf-serving",
    summary = "TF-Serving model status (`/v1/models/emotion`)",
    params(("model" = String, Path)),
    responses(
        (status = 200, description = "status", body = Object),
        (status = 404, description = "unknown model", body = crate::tfserving::TfError),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security((), ("api_key" = [])),
)]
pub async fn status(Path(model): Path<String>) -> Response {
    if model != MODEL_NAME {
        return not_found(&model);
    }
    Json(json!({
        "model_version_status": [{
            "version": MODEL_VERSION,
            "state": "AVAILABLE",
            "status": { "error_code": "OK", "error_message": "" }
        }]
    }))
    .into_response()
}

/// The range of each input channel the model was trained on: pixels 0 to 255 through the
/// model file's normalisation (`value = pixel * scale + offset`).
pub fn input_range(spec: &InputSpec) -> Vec<(f32, f32)> {
    spec.normalisation
        .affine(spec.channels())
        .into_iter()
        .map(|(scale, offset)| {
            let (a, b) = (offset, 255.0 * scale + offset);
            (a.min(b), a.max(b))
        })
        .collect()
}

/// The range as the metadata and the errors state it: one `{min, max}` per channel.
fn range_json(range: &[(f32, f32)]) -> Value {
    json!(range
        .iter()
        .map(|(lo, hi)| json!({ "min": lo, "max": hi }))
        .collect::<Vec<_>>())
}

/// Refuses values outside the model's input range (beyond rounding): an instance in 0-255 sent
/// to a model that takes 0-1 would otherwise get a confident, meaningless answer.
fn check_range(vals: &[f32], at: usize, range: &[(f32, f32)]) -> Result<(), ServerError> {
    let c = range.len().max(1);
    for (ch, &(lo, hi)) in range.iter().enumerate() {
        let slack = 1e-3 * (hi - lo).max(1e-6);
        let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
        for x in vals.iter().skip(ch).step_by(c) {
            min = min.min(*x);
            max = max.max(*x);
        }
        if min < lo - slack || max > hi + slack {
            let which = if c > 1 {
                format!(" in channel {ch}")
            } else {
                String::new()
            };
            return Err(ServerError::BadRequest(format!(
                "instance {at} has values from {min} to {max}{which}, outside this model's input range [{lo}, {hi}] (pixels 0-255 normalised as the model file says; GET /v1/models/{MODEL_NAME}/metadata states it as `input_range`): scale the values into the range, or send {{\"b64\": <encoded image>}}"
            )));
        }
    }
    Ok(())
}

fn dim(v: i64) -> Value {
    json!({ "size": v.to_string(), "name": "" })
}

/// `GET /v1/models/emotion/metadata`: the serving signature, from the model file.
#[utoipa::path(
    get,
    path = "/v1/models/{model}/metadata",
    operation_id = "tfserving_metadata",
    tag = "tf-serving",
    summary = "TF-Serving signature metadata",
    params(("model" = String, Path)),
    responses(
        (status = 200, description = "metadata", body = Object),
        (status = 404, description = "unknown model", body = crate::tfserving::TfError),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security((), ("api_key" = [])),
)]
pub async fn metadata(State(state): State<SharedState>, Path(model): Path<String>) -> Response {
    if model != MODEL_NAME {
        return not_found(&model);
    }
    let meta = state.meta();
    let i = &meta.input;
    Json(json!({
        "model_spec": { "name": MODEL_NAME, "signature_name": "", "version": MODEL_VERSION },
        "metadata": { "signature_def": {
            "signature_def": { "serving_default": {
                "inputs": { "input": {
                    "dtype": "DT_FLOAT",
                    "tensor_shape": { "dim": [dim(-1), dim(i.height as i64), dim(i.width as i64), dim(i.channels() as i64)], "unknown_rank": false },
                    "name": "serving_default_input:0"
                }},
                "outputs": { "probabilities": {
                    "dtype": "DT_FLOAT",
                    "tensor_shape": { "dim": [dim(-1), dim(meta.classes.len() as i64)], "unknown_rank": false },
                    "name": "StatefulPartitionedCall:0"
                }},
                "method_name": "tensorflow/serving/predict"
            }}
        }},
        "emolens": {
            "classes": meta.classes,
            "colour_mode": i.colour_mode,
            "normalisation": i.normalisation,
            // Numeric instances outside this range (per channel) are refused with 400.
            "input_range": range_json(&input_range(i)),
        }
    }))
    .into_response()
}

/// One instance to the model's planar input.
fn instance_input(
    inst: Instance,
    at: usize,
    spec: &InputSpec,
    pre: &Preprocessor,
    state: &SharedState,
) -> Result<Vec<f32>, ServerError> {
    let bad = |m: String| ServerError::BadRequest(m);
    let (vals, shape) = match inst {
        Instance::Image(bytes) => {
            let img = decode_image(
                &bytes,
                &format!("instance {at}"),
                &state.config.decode_limits(),
            )?;
            return Ok(pre.prepare(&img, None));
        }
        Instance::Numbers { values, shape } => (values, shape),
    };
    let (h, w, c) = (spec.height as usize, spec.width as usize, spec.channels());
    let ok_shape = shape == [h, w, c] || (c == 1 && shape == [h, w]);
    if !ok_shape {
        return Err(bad(format!(
            "instance {at} has shape {shape:?}; this model takes [{h}, {w}, {c}] (height, width, channels){}, values normalised as the model's metadata says, or {{\"b64\": <encoded image>}}",
            if c == 1 { format!(" or [{h}, {w}]") } else { String::new() }
        )));
    }
    check_range(&vals, at, &input_range(spec))?;
    // Channels-last (Keras) to the planar layout the classifier takes.
    let plane = h * w;
    let mut planar = vec![0.0; c * plane];
    for (i, x) in vals.iter().enumerate() {
        planar[(i % c) * plane + i / c] = *x;
    }
    Ok(planar)
}

/// An instance ready for the blocking pool: numbers, or an image's bytes.
enum Instance {
    Numbers { values: Vec<f32>, shape: Vec<usize> },
    Image(Vec<u8>),
}

/// Most instances in one request.
pub fn max_instances(state: &SharedState) -> usize {
    state.config.max_files.max(1) * 10
}

/// `POST /v1/models/emotion:predict` with `{"instances": [...]}` (row format, answered with
/// `predictions`) or `{"inputs": [...]}` (columnar, answered with `outputs`). The body is read
/// within the body limit and parsed instance by instance ([`crate::tfparse`]); encoded images
/// reserve their decode memory before they are decoded.
#[utoipa::path(
    post,
    path = "/v1/models/{model}",
    operation_id = "tfserving_predict",
    tag = "tf-serving",
    summary = "TF-Serving predict (`POST /v1/models/emotion:predict`)",
    description = "Body `{\"instances\": [...]}` with H x W (x C) arrays of model inputs (normalised as the model's metadata says) or `{\"b64\": <encoded image>}`; answers `{\"predictions\": [[p...]]}`. Columnar `{\"inputs\": ...}` answers `{\"outputs\": ...}`. Errors `{\"error\": ...}`.",
    params(("model" = String, Path)),
    request_body(content = Object, description = "TF-Serving `instances` (or `inputs`): model inputs, or `{\"b64\": ...}` encoded images", content_type = "application/json"),
    responses(
        (status = 200, description = "predictions", body = Object),
        (status = 400, description = "bad instances", body = crate::tfserving::TfError),
        (status = 404, description = "unknown model", body = crate::tfserving::TfError),
        (status = 408, response = crate::error::RequestTimeout),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security((), ("api_key" = [])),
)]
pub async fn predict(
    State(state): State<SharedState>,
    Path(model): Path<String>,
    body: Bytes,
) -> Response {
    let Some((name, verb)) = model.split_once(':') else {
        return tf_error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("POST /v1/models/{model} needs a verb: use /v1/models/{MODEL_NAME}:predict"),
        );
    };
    if name != MODEL_NAME {
        return not_found(name);
    }
    if verb != "predict" {
        return tf_error(
            StatusCode::BAD_REQUEST,
            format!("unsupported verb '{verb}': this server implements :predict"),
        );
    }
    let spec = state.meta().input.clone();
    let limit = max_instances(&state);
    let parsed = match tfparse::parse_predict(&body, limit, spec.len()) {
        Ok(p) => p,
        Err(ParseError::TooMany { limit }) => {
            return tf_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("more than {limit} instances in one request (the limit); send them in smaller batches"),
            )
        }
        Err(ParseError::Bad(m)) => return tf_error(StatusCode::BAD_REQUEST, m),
    };
    drop(body);
    let columnar = parsed.columnar;
    let n = parsed.instances.len();
    // Images are decoded one at a time: reserve the decode memory of the largest.
    let mut instances = Vec::with_capacity(n);
    let mut largest: Option<(u64, String)> = None;
    for (at, inst) in parsed.instances.into_iter().enumerate() {
        instances.push(match inst {
            tfparse::Instance::Numbers { values, shape } => Instance::Numbers { values, shape },
            tfparse::Instance::Image(b64) => {
                let name = format!("instance {at}");
                let bytes = match decode_b64(&b64) {
                    Ok(b) => b,
                    Err(e) => {
                        return tf_error(
                            StatusCode::BAD_REQUEST,
                            format!("{name}: `b64` is not valid base64 ({e})"),
                        )
                    }
                };
                match state.decode_cost(&bytes, &name) {
                    Ok(cost) if largest.as_ref().is_none_or(|(c, _)| cost > *c) => {
                        largest = Some((cost, name))
                    }
                    Ok(_) => {}
                    Err(e) => return tf_error(e.status(), e.to_string()),
                }
                Instance::Image(bytes)
            }
        });
    }
    let result = async {
        let slot = state.analysis_slot().await?;
        let memory = match &largest {
            Some((cost, name)) => Some(state.reserve_decode(*cost, name).await?),
            None => None,
        };
        let st = state.clone();
        state
            .run_blocking((slot, memory), move || {
                let pre = Preprocessor::new(spec.clone());
                let mut inputs = Vec::with_capacity(n * spec.len());
                for (i, inst) in instances.into_iter().enumerate() {
                    inputs.extend(instance_input(inst, i, &spec, &pre, &st)?);
                }
                st.crop.predict_tensors(&inputs, n)
            })
            .await
    }
    .await;
    match result {
        Ok(rows) => {
            state.metrics.faces(n as u64);
            let key = if columnar { "outputs" } else { "predictions" };
            Json(json!({ key: rows })).into_response()
        }
        Err(e) => {
            let mut resp = tf_error(e.status(), e.to_string());
            if let ServerError::Busy(_) = e {
                resp.headers_mut()
                    .insert("retry-after", axum::http::HeaderValue::from_static("1"));
            }
            resp
        }
    }
}
