//! TensorFlow Serving's REST shape (`/v1/models/emotion`, `.../metadata`, `...:predict`), so
//! TF-Serving clients work unchanged. Errors are `{"error": "..."}` as TF Serving sends them.
//!
//! Numeric instances are model inputs as the Keras model took them: `H x W` or `H x W x C`
//! arrays (channels last) already normalised as the model file says (for the bundled model,
//! pixel / 255). `{"b64": ...}` instances are encoded images, prepared by the one preprocessing
//! path.

use crate::error::ServerError;
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

fn tf_error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

fn not_found(name: &str) -> Response {
    tf_error(
        StatusCode::NOT_FOUND,
        format!("Servable not found for request: Latest({name}); this server serves the model '{MODEL_NAME}'"),
    )
}

/// `GET /v1/models/emotion`: model status.
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

/// Flattens a nested numeric array, returning its values and shape; ragged arrays and
/// non-numbers are errors naming the instance.
fn flatten(
    v: &Value,
    out: &mut Vec<f32>,
    shape: &mut Vec<usize>,
    depth: usize,
    at: usize,
) -> Result<(), String> {
    match v {
        Value::Array(items) => {
            if shape.len() == depth {
                shape.push(items.len());
            } else if shape[depth] != items.len() {
                return Err(format!(
                    "instance {at} is ragged: rows of different lengths at depth {depth}"
                ));
            }
            for it in items {
                flatten(it, out, shape, depth + 1, at)?;
            }
            Ok(())
        }
        Value::Number(n) => {
            if shape.len() != depth {
                return Err(format!(
                    "instance {at} mixes numbers and arrays at depth {depth}"
                ));
            }
            let x = n
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("instance {at} has a non-finite number"))?;
            out.push(x as f32);
            Ok(())
        }
        other => Err(format!(
            "instance {at}: expected a number or an array, got {}",
            type_name(other)
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One instance to the model's planar input.
fn instance_input(
    v: &Value,
    at: usize,
    spec: &InputSpec,
    pre: &Preprocessor,
    state: &SharedState,
) -> Result<Vec<f32>, ServerError> {
    let bad = |m: String| ServerError::BadRequest(m);
    // Named inputs (`{"input": ...}`) as TF Serving's row format allows, with a single input.
    let v = match v {
        Value::Object(m) if !m.contains_key("b64") => {
            if m.len() != 1 {
                return Err(bad(format!("instance {at}: this model has one input; send the instance itself or {{\"input\": ...}}")));
            }
            m.values().next().unwrap_or(&Value::Null)
        }
        other => other,
    };
    if let Value::Object(m) = v {
        let b64 = m
            .get("b64")
            .and_then(|b| b.as_str())
            .ok_or_else(|| bad(format!("instance {at}: `b64` must be a string")))?;
        let bytes = decode_b64(b64)
            .map_err(|e| bad(format!("instance {at}: `b64` is not valid base64 ({e})")))?;
        let img = decode_image(
            &bytes,
            &format!("instance {at}"),
            &state.config.decode_limits(),
        )?;
        return Ok(pre.prepare(&img, None));
    }
    let (h, w, c) = (spec.height as usize, spec.width as usize, spec.channels());
    let mut vals = Vec::with_capacity(h * w * c);
    let mut shape = Vec::new();
    flatten(v, &mut vals, &mut shape, 0, at).map_err(bad)?;
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

/// `POST /v1/models/emotion:predict` with `{"instances": [...]}` (row format, answered with
/// `predictions`) or `{"inputs": [...]}` (columnar, answered with `outputs`).
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
    if body.is_empty() {
        return tf_error(
            StatusCode::BAD_REQUEST,
            "empty request body: send {\"instances\": [...]}",
        );
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return tf_error(StatusCode::BAD_REQUEST, format!("JSON Parse error: {e}")),
    };
    if let Some(sig) = req.get("signature_name").and_then(|s| s.as_str()) {
        if sig != "serving_default" && !sig.is_empty() {
            return tf_error(StatusCode::BAD_REQUEST, format!("Serving signature name: \"{sig}\" not found in signature def; use serving_default"));
        }
    }
    let (instances, columnar) = match (req.get("instances"), req.get("inputs")) {
        (Some(Value::Array(a)), None) => (a.clone(), false),
        (None, Some(Value::Array(a))) => (a.clone(), true),
        (None, Some(v @ Value::Object(_))) => match v.as_object().and_then(|m| m.values().next()) {
            Some(Value::Array(a)) if v.as_object().map(|m| m.len()) == Some(1) => (a.clone(), true),
            _ => {
                return tf_error(
                    StatusCode::BAD_REQUEST,
                    "`inputs` must be a list, or an object with the one input's list",
                )
            }
        },
        (Some(_), Some(_)) => {
            return tf_error(
                StatusCode::BAD_REQUEST,
                "send either `instances` or `inputs`, not both",
            )
        }
        _ => {
            return tf_error(
                StatusCode::BAD_REQUEST,
                "missing 'instances' (a list) in the request body",
            )
        }
    };
    if instances.is_empty() {
        return tf_error(StatusCode::BAD_REQUEST, "`instances` is empty");
    }
    if instances.len() > state.config.max_files.max(1) * 10 {
        return tf_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} instances in one request; the limit is {}",
                instances.len(),
                state.config.max_files.max(1) * 10
            ),
        );
    }
    let n = instances.len();
    let st = state.clone();
    let result = state
        .blocking(move || {
            let spec = st.meta().input.clone();
            let pre = Preprocessor::new(spec.clone());
            let mut inputs = Vec::with_capacity(n * spec.len());
            for (i, inst) in instances.iter().enumerate() {
                inputs.extend(instance_input(inst, i, &spec, &pre, &st)?);
            }
            st.crop.predict_tensors(&inputs, n)
        })
        .await;
    match result {
        Ok(rows) => {
            state.metrics.faces(n as u64);
            let key = if columnar { "outputs" } else { "predictions" };
            Json(json!({ key: rows })).into_response()
        }
        Err(e) => tf_error(e.status(), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_reports_shape_and_raggedness() {
        let mut out = Vec::new();
        let mut shape = Vec::new();
        flatten(&json!([[1, 2], [3, 4], [5, 6]]), &mut out, &mut shape, 0, 0).unwrap();
        assert_eq!(shape, vec![3, 2]);
        assert_eq!(out, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let mut shape = Vec::new();
        assert!(
            flatten(&json!([[1, 2], [3]]), &mut Vec::new(), &mut shape, 0, 0)
                .unwrap_err()
                .contains("ragged")
        );
        let mut shape = Vec::new();
        assert!(flatten(&json!([["a"]]), &mut Vec::new(), &mut shape, 0, 0)
            .unwrap_err()
            .contains("string"));
    }
}
