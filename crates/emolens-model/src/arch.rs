//! emolens' own architecture format, and the shape pass that checks it, counts its parameters
//! (the way Keras counts them, batch-norm moving statistics included) and its FLOPs.
//!
//! An architecture file is JSON:
//! ```json
//! { "name": "vgg_s",
//!   "layers": [
//!     {"type": "conv2d", "filters": 32, "kernel": 3, "padding": "same", "bias": false},
//!     {"type": "batch_norm"},
//!     {"type": "activation", "function": "relu"},
//!     {"type": "residual", "body": [ ... ], "shortcut": [ ... ], "activation": "relu"},
//!     {"type": "max_pool2d", "size": 2},
//!     {"type": "global_avg_pool"},
//!     {"type": "dropout", "rate": 0.3},
//!     {"type": "dense", "units": 7}
//!   ] }
//! ```
//! The last layer must be a `dense` whose units equal the number of classes; the network outputs
//! logits and softmax is applied at prediction (a trailing `softmax` activation is accepted and
//! means the same). Input size and channels come from the model's [`InputSpec`]
//! (`emolens_core`), so one file serves grayscale and RGB.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::ModelError;

/// Activation functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    Relu,
    Relu6,
    LeakyRelu,
    Elu,
    Gelu,
    Silu,
    Sigmoid,
    Tanh,
    /// Only as the last layer: the network's logits go through softmax at prediction.
    Softmax,
    /// No activation (Keras' `linear`).
    Linear,
}

/// Spatial padding of a convolution or pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// No padding (Keras' default).
    Valid,
    /// Output size = ceil(input / stride) (Keras' `same`), symmetric where possible.
    Same,
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn valid() -> Padding {
    Padding::Valid
}

/// One layer of an architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    Conv2d {
        filters: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default = "valid")]
        padding: Padding,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<Act>,
    },
    /// Depthwise conv (one filter per channel, `multiplier` outputs each) then a 1x1 pointwise
    /// conv to `filters` channels, as Keras' SeparableConv2D.
    SeparableConv2d {
        filters: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default = "valid")]
        padding: Padding,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<Act>,
    },
    DepthwiseConv2d {
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default = "valid")]
        padding: Padding,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<Act>,
    },
    BatchNorm {
        /// Weight of the new batch in the running statistics (Keras' momentum 0.99 is 0.01 here).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        momentum: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epsilon: Option<f64>,
    },
    Activation {
        function: Act,
    },
    MaxPool2d {
        size: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
        #[serde(default = "valid")]
        padding: Padding,
    },
    AvgPool2d {
        size: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
        #[serde(default = "valid")]
        padding: Padding,
    },
    GlobalAvgPool,
    GlobalMaxPool,
    Dropout {
        rate: f64,
    },
    Flatten,
    Dense {
        units: usize,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<Act>,
    },
    /// `activation(body(x) + shortcut(x))`; an empty or missing shortcut is the identity.
    Residual {
        body: Vec<LayerSpec>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        shortcut: Vec<LayerSpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<Act>,
    },
}

impl LayerSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Conv2d { .. } => "conv2d",
            LayerSpec::SeparableConv2d { .. } => "separable_conv2d",
            LayerSpec::DepthwiseConv2d { .. } => "depthwise_conv2d",
            LayerSpec::BatchNorm { .. } => "batch_norm",
            LayerSpec::Activation { .. } => "activation",
            LayerSpec::MaxPool2d { .. } => "max_pool2d",
            LayerSpec::AvgPool2d { .. } => "avg_pool2d",
            LayerSpec::GlobalAvgPool => "global_avg_pool",
            LayerSpec::GlobalMaxPool => "global_max_pool",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::Flatten => "flatten",
            LayerSpec::Dense { .. } => "dense",
            LayerSpec::Residual { .. } => "residual",
        }
    }
}

/// A network description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub layers: Vec<LayerSpec>,
}

/// Shape of the activations between layers (batch dimension left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Channels, height, width.
    Image(usize, usize, usize),
    Vector(usize),
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Image(c, h, w) => write!(f, "{c}x{h}x{w}"),
            Shape::Vector(n) => write!(f, "{n}"),
        }
    }
}

/// One row of an architecture summary.
#[derive(Debug, Clone, Serialize)]
pub struct LayerSummary {
    /// Path of the layer, e.g. `3` or `5.body.1`.
    pub path: String,
    pub kind: &'static str,
    pub output: String,
    pub params: usize,
    /// Multiply-accumulates for one image, forward.
    pub macs: u64,
}

/// What the shape pass finds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub layers: Vec<LayerSummary>,
    /// Parameters as Keras counts them (batch-norm moving mean and variance included).
    pub params: usize,
    /// Trainable parameters (batch-norm moving statistics excluded).
    pub trainable_params: usize,
    /// Multiply-accumulates per image, forward. FLOPs are about twice this.
    pub macs: u64,
    pub outputs: usize,
}

/// Output size along one axis.
pub fn out_len(input: usize, kernel: usize, stride: usize, padding: Padding) -> Option<usize> {
    match padding {
        Padding::Valid => (input >= kernel).then(|| (input - kernel) / stride + 1),
        Padding::Same => Some(input.div_ceil(stride)),
    }
}

/// Total padding along one axis for `same` (split as Keras/TensorFlow do: the extra pixel at
/// the end).
pub fn same_pad(input: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = input.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(input);
    (total / 2, total - total / 2)
}

impl Architecture {
    /// Parses emolens' own JSON format, with errors naming the bad layer.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ModelError::Architecture(format!("not valid JSON: {e}")))?;
        Self::from_value(value)
    }

    pub fn from_value(value: serde_json::Value) -> Result<Self, ModelError> {
        // Parse layer by layer so an error can say which layer is wrong.
        let obj = value.as_object().ok_or_else(|| {
            ModelError::Architecture(
                "the file must be a JSON object with \"name\" and \"layers\"".into(),
            )
        })?;
        if let Some(k) = obj
            .keys()
            .find(|k| !["name", "description", "layers"].contains(&k.as_str()))
        {
            return Err(ModelError::Architecture(format!(
                "unknown top-level key \"{k}\" (expected name, description, layers)"
            )));
        }
        let name = obj
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("unnamed")
            .to_string();
        let description = obj
            .get("description")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let layers_v = obj
            .get("layers")
            .and_then(|v| v.as_array())
            .ok_or_else(|| ModelError::Architecture("\"layers\" must be a list".into()))?;
        let layers = parse_layers(layers_v, "")?;
        let arch = Architecture {
            name,
            description,
            layers,
        };
        Ok(arch)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("architecture serialises")
    }

    /// Runs the shape pass for an input of `channels x height x width`, checking every layer.
    pub fn summarise(
        &self,
        channels: usize,
        height: usize,
        width: usize,
    ) -> Result<Summary, ModelError> {
        let mut rows = Vec::new();
        let shape = walk(
            &self.layers,
            Shape::Image(channels, height, width),
            "",
            &mut rows,
        )?;
        let outputs = match shape {
            Shape::Vector(n) => n,
            Shape::Image(..) => {
                return Err(ModelError::Architecture(format!(
                    "the network ends with an image-shaped output ({shape}); end with flatten or global pooling and a dense layer"
                )))
            }
        };
        match last_param_layer(&self.layers) {
            Some(LayerSpec::Dense { .. }) => {}
            _ => {
                return Err(ModelError::Architecture(
                    "the last layer with weights must be a dense layer giving one output per class"
                        .into(),
                ))
            }
        }
        let bn_stats: usize = count_bn_stats(&self.layers, Shape::Image(channels, height, width));
        let params: usize = rows.iter().map(|r| r.params).sum();
        let macs = rows.iter().map(|r| r.macs).sum();
        Ok(Summary {
            layers: rows,
            params,
            trainable_params: params - bn_stats,
            macs,
            outputs,
        })
    }
}

fn last_param_layer(layers: &[LayerSpec]) -> Option<&LayerSpec> {
    layers.iter().rev().find(|l| {
        !matches!(
            l,
            LayerSpec::Activation { .. } | LayerSpec::Dropout { .. } | LayerSpec::Flatten
        )
    })
}

fn parse_layers(values: &[serde_json::Value], prefix: &str) -> Result<Vec<LayerSpec>, ModelError> {
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let path = format!("{prefix}{i}");
        let kind = v
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("?")
            .to_string();
        // Residual blocks: parse the inner lists recursively for precise paths.
        if kind == "residual" {
            let body =
                v.get("body")
                    .and_then(|b| b.as_array())
                    .ok_or_else(|| ModelError::Layer {
                        layer: format!("{path} (residual)"),
                        reason: "\"body\" must be a list of layers".into(),
                    })?;
            let body = parse_layers(body, &format!("{path}.body."))?;
            let shortcut = match v.get("shortcut") {
                None | Some(serde_json::Value::Null) => Vec::new(),
                Some(s) => parse_layers(
                    s.as_array().ok_or_else(|| ModelError::Layer {
                        layer: format!("{path} (residual)"),
                        reason: "\"shortcut\" must be a list of layers".into(),
                    })?,
                    &format!("{path}.shortcut."),
                )?,
            };
            let activation = match v.get("activation") {
                None | Some(serde_json::Value::Null) => None,
                Some(a) => {
                    Some(
                        serde_json::from_value(a.clone()).map_err(|e| ModelError::Layer {
                            layer: format!("{path} (residual)"),
                            reason: format!("bad activation: {e}"),
                        })?,
                    )
                }
            };
            out.push(LayerSpec::Residual {
                body,
                shortcut,
                activation,
            });
            continue;
        }
        let layer: LayerSpec =
            serde_json::from_value(v.clone()).map_err(|e| ModelError::Layer {
                layer: format!("{path} ({kind})"),
                reason: e.to_string(),
            })?;
        out.push(layer);
    }
    Ok(out)
}

fn bad(path: &str, kind: &str, reason: impl Into<String>) -> ModelError {
    ModelError::Layer {
        layer: format!("{path} ({kind})"),
        reason: reason.into(),
    }
}

fn check_act(path: &str, kind: &str, act: Option<Act>, last: bool) -> Result<(), ModelError> {
    if act == Some(Act::Softmax) && !last {
        return Err(bad(path, kind, "softmax is only allowed on the last layer"));
    }
    Ok(())
}

/// Most filters or units a layer may have.
const MAX_WIDTH: usize = 1 << 16;
/// Largest kernel, pooling window or stride.
const MAX_WINDOW: usize = 256;

/// Why a layer's sizes are out of range (so that the products of shapes cannot overflow:
/// found by fuzzing, `fuzz/` target `architecture`), or `None`.
fn size_problem(layer: &LayerSpec) -> Option<String> {
    let (width, windows) = match layer {
        LayerSpec::Conv2d {
            filters,
            kernel,
            stride,
            ..
        }
        | LayerSpec::SeparableConv2d {
            filters,
            kernel,
            stride,
            ..
        } => (*filters, vec![*kernel, *stride]),
        LayerSpec::DepthwiseConv2d { kernel, stride, .. } => (0, vec![*kernel, *stride]),
        LayerSpec::MaxPool2d { size, stride, .. } | LayerSpec::AvgPool2d { size, stride, .. } => {
            (0, vec![*size, stride.unwrap_or(0)])
        }
        LayerSpec::Dense { units, .. } => (*units, vec![]),
        _ => (0, vec![]),
    };
    if width > MAX_WIDTH {
        return Some(format!("{width} filters or units; at most {MAX_WIDTH}"));
    }
    windows
        .iter()
        .find(|&&w| w > MAX_WINDOW)
        .map(|w| format!("a kernel, pooling window or stride of {w}; at most {MAX_WINDOW}"))
}

/// Multiply-accumulates of a product of sizes, saturating instead of overflowing.
fn macs(factors: &[usize]) -> u64 {
    factors
        .iter()
        .try_fold(1u64, |a, &f| a.checked_mul(f as u64))
        .unwrap_or(u64::MAX)
}

fn walk(
    layers: &[LayerSpec],
    mut shape: Shape,
    prefix: &str,
    rows: &mut Vec<LayerSummary>,
) -> Result<Shape, ModelError> {
    let n = layers.len();
    for (i, layer) in layers.iter().enumerate() {
        let path = format!("{prefix}{i}");
        let kind = layer.kind();
        if let Some(problem) = size_problem(layer) {
            return Err(bad(&path, kind, problem));
        }
        let last = prefix.is_empty() && i + 1 == n;
        let (next, params, macs) = match (layer, shape) {
            (
                LayerSpec::Conv2d { filters, kernel, stride, padding, bias, activation },
                Shape::Image(c, h, w),
            ) => {
                check_act(&path, kind, *activation, last)?;
                if *filters == 0 || *kernel == 0 || *stride == 0 {
                    return Err(bad(&path, kind, "filters, kernel and stride must be positive"));
                }
                let (oh, ow) = spatial(&path, kind, h, w, *kernel, *stride, *padding)?;
                let p = c * kernel * kernel * filters + if *bias { *filters } else { 0 };
                let m = macs(&[oh, ow, *filters, c, *kernel, *kernel]);
                (Shape::Image(*filters, oh, ow), p, m)
            }
            (
                LayerSpec::SeparableConv2d { filters, kernel, stride, padding, bias, activation },
                Shape::Image(c, h, w),
            ) => {
                check_act(&path, kind, *activation, last)?;
                if *filters == 0 || *kernel == 0 || *stride == 0 {
                    return Err(bad(&path, kind, "filters, kernel and stride must be positive"));
                }
                let (oh, ow) = spatial(&path, kind, h, w, *kernel, *stride, *padding)?;
                let p = c * kernel * kernel + c * filters + if *bias { *filters } else { 0 };
                let m = macs(&[oh, ow, c, *kernel, *kernel]).saturating_add(macs(&[oh, ow, c, *filters]));
                (Shape::Image(*filters, oh, ow), p, m)
            }
            (LayerSpec::DepthwiseConv2d { kernel, stride, padding, bias, activation }, Shape::Image(c, h, w)) => {
                check_act(&path, kind, *activation, last)?;
                if *kernel == 0 || *stride == 0 {
                    return Err(bad(&path, kind, "kernel and stride must be positive"));
                }
                let (oh, ow) = spatial(&path, kind, h, w, *kernel, *stride, *padding)?;
                let p = c * kernel * kernel + if *bias { c } else { 0 };
                let m = macs(&[oh, ow, c, *kernel, *kernel]);
                (Shape::Image(c, oh, ow), p, m)
            }
            (LayerSpec::BatchNorm { momentum, epsilon }, s) => {
                if let Some(m) = momentum {
                    if !(0.0..=1.0).contains(m) {
                        return Err(bad(&path, kind, format!("momentum {m} is outside [0, 1]")));
                    }
                }
                if let Some(e) = epsilon {
                    if e.is_nan() || *e <= 0.0 {
                        return Err(bad(&path, kind, format!("epsilon {e} must be positive")));
                    }
                }
                let f = match s {
                    Shape::Image(c, ..) => c,
                    Shape::Vector(n) => n,
                };
                (s, 4 * f, 0)
            }
            (LayerSpec::Activation { function }, s) => {
                check_act(&path, kind, Some(*function), last)?;
                (s, 0, 0)
            }
            (LayerSpec::MaxPool2d { size, stride, padding }, Shape::Image(c, h, w))
            | (LayerSpec::AvgPool2d { size, stride, padding }, Shape::Image(c, h, w)) => {
                let st = stride.unwrap_or(*size);
                if *size == 0 || st == 0 {
                    return Err(bad(&path, kind, "size and stride must be positive"));
                }
                let (oh, ow) = spatial(&path, kind, h, w, *size, st, *padding)?;
                (Shape::Image(c, oh, ow), 0, 0)
            }
            (LayerSpec::GlobalAvgPool, Shape::Image(c, ..)) | (LayerSpec::GlobalMaxPool, Shape::Image(c, ..)) => {
                (Shape::Vector(c), 0, 0)
            }
            (LayerSpec::Dropout { rate }, s) => {
                if !(0.0..1.0).contains(rate) {
                    return Err(bad(&path, kind, format!("rate {rate} must be in [0, 1)")));
                }
                (s, 0, 0)
            }
            (LayerSpec::Flatten, Shape::Image(c, h, w)) => (Shape::Vector(c * h * w), 0, 0),
            (LayerSpec::Flatten, s @ Shape::Vector(_)) => (s, 0, 0),
            (LayerSpec::Dense { units, bias, activation }, Shape::Vector(n)) => {
                check_act(&path, kind, *activation, last)?;
                if *units == 0 {
                    return Err(bad(&path, kind, "units must be positive"));
                }
                (Shape::Vector(*units), n * units + if *bias { *units } else { 0 }, macs(&[n, *units]))
            }
            (LayerSpec::Residual { body, shortcut, activation }, s) => {
                check_act(&path, kind, *activation, false)?;
                let mut inner = Vec::new();
                let a = walk(body, s, &format!("{path}.body."), &mut inner)?;
                let b = walk(shortcut, s, &format!("{path}.shortcut."), &mut inner)?;
                if a != b {
                    return Err(bad(
                        &path,
                        kind,
                        format!("body gives {a} but shortcut gives {b}; they must match to be added (add a 1x1 conv shortcut)"),
                    ));
                }
                let p = inner.iter().map(|r| r.params).sum();
                let m = inner.iter().fold(0u64, |a, r| a.saturating_add(r.macs));
                (a, p, m)
            }
            (LayerSpec::Dense { .. }, Shape::Image(..)) => {
                return Err(bad(&path, kind, format!("needs a vector input but gets an image ({shape}); add flatten or global pooling before it")))
            }
            (_, Shape::Vector(_)) => {
                return Err(bad(&path, kind, format!("needs an image input but gets a vector ({shape})")))
            }
        };
        rows.push(LayerSummary {
            path,
            kind,
            output: next.to_string(),
            params,
            macs,
        });
        shape = next;
    }
    Ok(shape)
}

fn spatial(
    path: &str,
    kind: &str,
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    p: Padding,
) -> Result<(usize, usize), ModelError> {
    match (out_len(h, k, s, p), out_len(w, k, s, p)) {
        (Some(oh), Some(ow)) if oh > 0 && ow > 0 => Ok((oh, ow)),
        _ => Err(bad(
            path,
            kind,
            format!("window {k}x{k} does not fit the {h}x{w} input; use padding \"same\" or a smaller window"),
        )),
    }
}

fn count_bn_stats(layers: &[LayerSpec], input: Shape) -> usize {
    // Moving mean and variance: half of each batch norm's 4*features count.
    let mut rows = Vec::new();
    if walk(layers, input, "", &mut rows).is_err() {
        return 0;
    }
    rows.iter()
        .filter(|r| r.kind == "batch_norm")
        .map(|r| r.params / 2)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residual_shapes_and_counts() {
        let a = Architecture::from_json(
            r#"{"name":"t","layers":[
            {"type":"conv2d","filters":8,"kernel":3,"padding":"same","bias":false},
            {"type":"batch_norm"},{"type":"activation","function":"relu"},
            {"type":"residual","body":[
               {"type":"conv2d","filters":16,"kernel":3,"stride":2,"padding":"same"},
               {"type":"conv2d","filters":16,"kernel":3,"padding":"same"}],
             "shortcut":[{"type":"conv2d","filters":16,"kernel":1,"stride":2}],
             "activation":"relu"},
            {"type":"separable_conv2d","filters":32,"kernel":3,"padding":"same"},
            {"type":"global_avg_pool"},{"type":"dropout","rate":0.2},
            {"type":"dense","units":7}]}"#,
        )
        .unwrap();
        let s = a.summarise(1, 48, 48).unwrap();
        let expect = 72
            + 32
            + (8 * 9 * 16 + 16)
            + (16 * 9 * 16 + 16)
            + (8 * 16 + 16)
            + (16 * 9 + 16 * 32 + 32)
            + (32 * 7 + 7);
        assert_eq!(s.params, expect);
        assert_eq!(s.trainable_params, expect - 16);
        assert_eq!(s.outputs, 7);
    }

    #[test]
    fn errors_name_the_layer() {
        let e = Architecture::from_json(r#"{"name":"t","layers":[{"type":"conv2d","filters":8}]}"#)
            .unwrap_err();
        assert!(
            e.to_string().contains("layer 0 (conv2d)") && e.to_string().contains("kernel"),
            "{e}"
        );
        let e = Architecture::from_json(r#"{"name":"t","layers":[{"type":"warp"}]}"#).unwrap_err();
        assert!(e.to_string().contains("layer 0 (warp)"), "{e}");
        let a = Architecture::from_json(
            r#"{"name":"t","layers":[{"type":"conv2d","filters":8,"kernel":3},{"type":"dense","units":7}]}"#,
        )
        .unwrap();
        let e = a.summarise(1, 48, 48).unwrap_err();
        assert!(
            e.to_string().contains("layer 1 (dense)") && e.to_string().contains("flatten"),
            "{e}"
        );
        let a = Architecture::from_json(
            r#"{"name":"t","layers":[{"type":"conv2d","filters":8,"kernel":60},{"type":"flatten"},{"type":"dense","units":7}]}"#,
        )
        .unwrap();
        let e = a.summarise(1, 48, 48).unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
    }

    #[test]
    fn same_padding_matches_tensorflow() {
        assert_eq!(same_pad(48, 3, 1), (1, 1));
        assert_eq!(same_pad(48, 3, 2), (0, 1));
        assert_eq!(same_pad(47, 3, 2), (1, 1));
        assert_eq!(out_len(48, 3, 1, Padding::Valid), Some(46));
        assert_eq!(out_len(23, 2, 2, Padding::Valid), Some(11));
    }
}
