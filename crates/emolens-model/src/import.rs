//! Readers for the original design's architecture files: its own layer-name format (an ordered
//! JSON object of `LayerType_N` to Keras layer arguments) and Keras' `model.to_json()`.
//! Both become an emolens [`Architecture`]; Keras defaults apply where an argument is missing.

use crate::arch::{Act, Architecture, LayerSpec, Padding};
use crate::error::ModelError;
use serde_json::{Map, Value};
use std::path::Path;

/// An architecture read from a file, with the input shape the file declares, if any.
#[derive(Debug, Clone)]
pub struct Imported {
    pub arch: Architecture,
    /// `(height, width, channels)` from `input_shape` / `batch_input_shape`.
    pub input_shape: Option<(usize, usize, usize)>,
    /// Which format the file was in.
    pub format: &'static str,
}

/// Reads any supported architecture file, telling the formats apart by content.
pub fn read_architecture_file(path: &Path) -> Result<Imported, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string();
    parse_architecture(&text, &name).map_err(|e| match e {
        ModelError::Architecture(m) => ModelError::Architecture(format!("{}: {m}", path.display())),
        ModelError::Layer { layer, reason } => ModelError::Layer {
            layer: format!("{} of {}", layer, path.display()),
            reason,
        },
        other => other,
    })
}

/// Parses architecture JSON in any supported format; `name` is used where the file has none.
pub fn parse_architecture(text: &str, name: &str) -> Result<Imported, ModelError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ModelError::Architecture(format!("not valid JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| ModelError::Architecture("expected a JSON object".into()))?;
    if obj.contains_key("layers") && obj.contains_key("name") && !obj.contains_key("class_name") {
        let arch = Architecture::from_value(value)?;
        return Ok(Imported {
            arch,
            input_shape: None,
            format: "emolens",
        });
    }
    if obj.get("class_name").and_then(Value::as_str).is_some() && obj.contains_key("config") {
        return keras_model_json(obj, name);
    }
    original_format(obj, name)
}

/// The original's format: `{"Conv2D_1": {...}, "BatchNormalization_1": {}, ...}`.
fn original_format(obj: &Map<String, Value>, name: &str) -> Result<Imported, ModelError> {
    let mut layers = Vec::new();
    let mut input_shape = None;
    for (key, args) in obj {
        let class = key.split('_').next().unwrap_or(key);
        let args = args.as_object().ok_or_else(|| ModelError::Layer {
            layer: key.clone(),
            reason: "layer arguments must be a JSON object".into(),
        })?;
        if let Some(shape) = args
            .get("input_shape")
            .or_else(|| args.get("batch_input_shape"))
        {
            input_shape = Some(parse_input_shape(key, shape)?);
        }
        layers.extend(keras_layer(key, class, args)?);
    }
    finish(name, layers, input_shape, "original")
}

/// Keras `model.to_json()` of a Sequential model.
fn keras_model_json(obj: &Map<String, Value>, name: &str) -> Result<Imported, ModelError> {
    let class = obj.get("class_name").and_then(Value::as_str).unwrap_or("");
    if class != "Sequential" {
        return Err(ModelError::Architecture(format!(
            "Keras model class '{class}' is not supported; only Sequential models can be read"
        )));
    }
    let config = obj
        .get("config")
        .and_then(Value::as_object)
        .ok_or_else(|| ModelError::Architecture("Keras JSON has no \"config\" object".into()))?;
    let model_name = config.get("name").and_then(Value::as_str).unwrap_or(name);
    let list = config
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ModelError::Architecture("Keras JSON config has no \"layers\" list".into())
        })?;
    let mut layers = Vec::new();
    let mut input_shape = None;
    for (i, l) in list.iter().enumerate() {
        let class = l.get("class_name").and_then(Value::as_str).unwrap_or("?");
        let args = l
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let key = format!(
            "{i}:{}",
            args.get("name").and_then(Value::as_str).unwrap_or(class)
        );
        if let Some(shape) = args
            .get("batch_input_shape")
            .or_else(|| args.get("input_shape"))
        {
            input_shape = Some(parse_input_shape(&key, shape)?);
        }
        if class == "InputLayer" {
            continue;
        }
        if let Some(fmt) = args.get("data_format").and_then(Value::as_str) {
            if fmt != "channels_last" {
                return Err(ModelError::Layer {
                    layer: key,
                    reason: format!("data_format '{fmt}' is not supported (channels_last only)"),
                });
            }
        }
        layers.extend(keras_layer(&key, class, &args)?);
    }
    finish(model_name, layers, input_shape, "keras")
}

fn finish(
    name: &str,
    mut layers: Vec<LayerSpec>,
    input_shape: Option<(usize, usize, usize)>,
    format: &'static str,
) -> Result<Imported, ModelError> {
    // A final softmax is how Keras models end; emolens nets output logits and apply softmax at
    // prediction, so the flag is dropped from the last dense layer.
    if let Some(LayerSpec::Dense { activation, .. }) = layers.last_mut() {
        if *activation == Some(Act::Softmax) {
            *activation = None;
        }
    }
    if layers.is_empty() {
        return Err(ModelError::Architecture(
            "the file describes no layers".into(),
        ));
    }
    Ok(Imported {
        arch: Architecture {
            name: name.to_string(),
            description: String::new(),
            layers,
        },
        input_shape,
        format,
    })
}

fn parse_input_shape(key: &str, v: &Value) -> Result<(usize, usize, usize), ModelError> {
    let dims: Vec<usize> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_u64)
                .map(|d| d as usize)
                .collect()
        })
        .unwrap_or_default();
    match dims.as_slice() {
        [h, w, c] => Ok((*h, *w, *c)),
        _ => Err(ModelError::Layer {
            layer: key.to_string(),
            reason: format!("input shape {v} must be [height, width, channels]"),
        }),
    }
}

fn square(key: &str, what: &str, v: Option<&Value>, default: usize) -> Result<usize, ModelError> {
    let err = || ModelError::Layer {
        layer: key.to_string(),
        reason: format!(
            "{what} must be a positive integer or a square [n, n] pair, got {}",
            v.unwrap()
        ),
    };
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or_else(err),
        Some(Value::Array(a)) => match a.as_slice() {
            [x, y] if x == y => x
                .as_u64()
                .filter(|&n| n > 0)
                .map(|n| n as usize)
                .ok_or_else(err),
            _ => Err(err()),
        },
        Some(_) => Err(err()),
    }
}

fn padding(key: &str, v: Option<&Value>) -> Result<Padding, ModelError> {
    match v.and_then(Value::as_str).unwrap_or("valid") {
        "valid" => Ok(Padding::Valid),
        "same" => Ok(Padding::Same),
        other => Err(ModelError::Layer {
            layer: key.to_string(),
            reason: format!("padding '{other}' is not supported (valid or same)"),
        }),
    }
}

fn activation(key: &str, v: Option<&Value>) -> Result<Option<Act>, ModelError> {
    let name = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(ModelError::Layer {
                layer: key.to_string(),
                reason: format!("activation must be a name, got {other}"),
            })
        }
    };
    Ok(Some(match name {
        "relu" => Act::Relu,
        "relu6" => Act::Relu6,
        "elu" => Act::Elu,
        "gelu" => Act::Gelu,
        "swish" | "silu" => Act::Silu,
        "sigmoid" => Act::Sigmoid,
        "tanh" => Act::Tanh,
        "softmax" => Act::Softmax,
        "leaky_relu" => Act::LeakyRelu,
        "linear" => return Ok(None),
        other => {
            return Err(ModelError::Layer {
                layer: key.to_string(),
                reason: format!("activation '{other}' is not supported"),
            })
        }
    }))
}

fn bool_arg(args: &Map<String, Value>, k: &str, default: bool) -> bool {
    args.get(k).and_then(Value::as_bool).unwrap_or(default)
}

/// One Keras layer (class name + arguments) as emolens layers.
fn keras_layer(
    key: &str,
    class: &str,
    args: &Map<String, Value>,
) -> Result<Vec<LayerSpec>, ModelError> {
    let l = match class {
        "Conv2D" => {
            let filters = args
                .get("filters")
                .and_then(Value::as_u64)
                .filter(|&f| f > 0)
                .ok_or_else(|| ModelError::Layer {
                    layer: key.to_string(),
                    reason: "Conv2D needs a positive integer \"filters\"".into(),
                })? as usize;
            if !args.contains_key("kernel_size") {
                return Err(ModelError::Layer {
                    layer: key.to_string(),
                    reason: "Conv2D needs \"kernel_size\"".into(),
                });
            }
            LayerSpec::Conv2d {
                filters,
                kernel: square(key, "kernel_size", args.get("kernel_size"), 0)?,
                stride: square(key, "strides", args.get("strides"), 1)?,
                padding: padding(key, args.get("padding"))?,
                bias: bool_arg(args, "use_bias", true),
                activation: activation(key, args.get("activation"))?,
            }
        }
        "SeparableConv2D" => LayerSpec::SeparableConv2d {
            filters: args.get("filters").and_then(Value::as_u64).unwrap_or(0) as usize,
            kernel: square(key, "kernel_size", args.get("kernel_size"), 0)?,
            stride: square(key, "strides", args.get("strides"), 1)?,
            padding: padding(key, args.get("padding"))?,
            bias: bool_arg(args, "use_bias", true),
            activation: activation(key, args.get("activation"))?,
        },
        "BatchNormalization" => {
            if !bool_arg(args, "center", true) || !bool_arg(args, "scale", true) {
                return Err(ModelError::Layer {
                    layer: key.to_string(),
                    reason: "BatchNormalization without center or scale is not supported".into(),
                });
            }
            let keras_momentum = args.get("momentum").and_then(Value::as_f64).unwrap_or(0.99);
            LayerSpec::BatchNorm {
                momentum: Some(1.0 - keras_momentum),
                epsilon: Some(args.get("epsilon").and_then(Value::as_f64).unwrap_or(1e-3)),
            }
        }
        "MaxPooling2D" | "AveragePooling2D" => {
            let size = square(key, "pool_size", args.get("pool_size"), 2)?;
            let stride = square(key, "strides", args.get("strides"), size)?;
            let padding = padding(key, args.get("padding"))?;
            let stride = Some(stride);
            if class == "MaxPooling2D" {
                LayerSpec::MaxPool2d { size, stride, padding }
            } else {
                LayerSpec::AvgPool2d { size, stride, padding }
            }
        }
        "GlobalAveragePooling2D" => LayerSpec::GlobalAvgPool,
        "GlobalMaxPooling2D" => LayerSpec::GlobalMaxPool,
        "Dropout" => LayerSpec::Dropout {
            rate: args.get("rate").and_then(Value::as_f64).ok_or_else(|| ModelError::Layer {
                layer: key.to_string(),
                reason: "Dropout needs a numeric \"rate\"".into(),
            })?,
        },
        "Flatten" => LayerSpec::Flatten,
        "Dense" => LayerSpec::Dense {
            units: args
                .get("units")
                .and_then(Value::as_u64)
                .filter(|&u| u > 0)
                .ok_or_else(|| ModelError::Layer {
                    layer: key.to_string(),
                    reason: "Dense needs a positive integer \"units\"".into(),
                })? as usize,
            bias: bool_arg(args, "use_bias", true),
            activation: activation(key, args.get("activation"))?,
        },
        "Activation" => match activation(key, args.get("activation"))? {
            Some(function) => LayerSpec::Activation { function },
            None => return Ok(vec![]),
        },
        "ReLU" => LayerSpec::Activation { function: Act::Relu },
        other => {
            return Err(ModelError::Layer {
                layer: key.to_string(),
                reason: format!(
                    "layer type '{other}' is not supported (Conv2D, SeparableConv2D, BatchNormalization, MaxPooling2D, AveragePooling2D, Global*Pooling2D, Dropout, Flatten, Dense, Activation)"
                ),
            })
        }
    };
    Ok(vec![l])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_format_keeps_order_and_defaults() {
        let t = r#"{"Conv2D_1":{"filters":4,"kernel_size":3,"activation":"relu","input_shape":[48,48,3]},
                    "MaxPooling2D_1":{"pool_size":2},"Flatten":{},"Dense_1":{"units":7,"activation":"softmax"}}"#;
        let im = parse_architecture(t, "m").unwrap();
        assert_eq!(im.format, "original");
        assert_eq!(im.input_shape, Some((48, 48, 3)));
        assert!(matches!(
            im.arch.layers[0],
            LayerSpec::Conv2d {
                padding: Padding::Valid,
                stride: 1,
                ..
            }
        ));
        assert!(matches!(
            im.arch.layers[1],
            LayerSpec::MaxPool2d {
                size: 2,
                stride: Some(2),
                ..
            }
        ));
        assert!(matches!(
            im.arch.layers[3],
            LayerSpec::Dense {
                units: 7,
                activation: None,
                ..
            }
        ));
        let s = im.arch.summarise(3, 48, 48).unwrap();
        assert_eq!(s.params, (3 * 9 * 4 + 4) + (23 * 23 * 4 * 7 + 7));
    }

    #[test]
    fn bad_layers_are_named() {
        let e = parse_architecture(r#"{"Conv2D_1":{"filters":4}}"#, "m").unwrap_err();
        assert!(
            e.to_string().contains("Conv2D_1") && e.to_string().contains("kernel_size"),
            "{e}"
        );
        let e = parse_architecture(r#"{"LSTM_1":{"units":4}}"#, "m").unwrap_err();
        assert!(
            e.to_string().contains("LSTM_1") && e.to_string().contains("not supported"),
            "{e}"
        );
        let e = parse_architecture(r#"{"Dense_1":{"units":4,"activation":"wiggle"}}"#, "m")
            .unwrap_err();
        assert!(e.to_string().contains("wiggle"), "{e}");
    }
}
