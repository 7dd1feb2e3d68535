//! ONNX export of a model file (`emolens model export FILE --format onnx`): the network that
//! emolens' compiled inference plans run, written as an ONNX graph (opset 17) that ONNX Runtime,
//! TensorRT, onnxruntime-web and the rest can load.
//!
//! The graph is built from [`crate::Network::to_frozen_blocks`], the freezing the oneDNN plans
//! compile ([`crate::Network::to_frozen`]), with residual blocks kept as branches and an `Add`:
//! batch norms folded into the convolution or dense weights before them (or kept as a
//! per-channel `Mul` and `Add` where emolens keeps them as a scale and shift: after an
//! activation or a residual block), activations after their layer, dropout gone. It ends in a
//! `Softmax` whose output `probabilities` is `[N, classes]` in the model file's class order; the
//! input `input` is `[N, C, H, W]` float with a dynamic batch. A network emolens cannot freeze
//! (an activation or batch norm that does not follow a layer with weights or a residual block)
//! is refused with the layer's path, type and reason.
//!
//! Everything needed to prepare a face is in the ONNX `metadata_props` (keys in [`keys`]): the
//! classes in output order, input size and layout, colour mode with the exact luma formula,
//! resize filter, normalisation as the model file states it and as per-channel scale and offset,
//! flip test-time augmentation, and the source model's name, format version and SHA-256.

pub mod proto;

use std::collections::BTreeMap;

use burn::tensor::Device;
use emolens_core::{ColourMode, ModelMeta};
use prost::Message;

use crate::arch::Act;
use crate::error::ModelError;
use crate::file::ModelFile;
use crate::frozen::{Block, PostOp, Step};
use proto::{attribute_type, AttributeProto, NodeProto, TensorProto};

/// The ONNX operator set the graph uses (every op here is in opset 13 or earlier; 17 is what
/// ONNX Runtime 1.12 and later, and onnxruntime-web, run natively).
pub const OPSET: i64 = 17;
/// The graph's input: `[N, C, H, W]` float, the model's preprocessed faces.
pub const INPUT: &str = "input";
/// The graph's output: `[N, classes]` softmax probabilities, in the metadata's class order.
pub const OUTPUT: &str = "probabilities";

/// The `metadata_props` keys the export writes.
pub mod keys {
    /// JSON list of class names, in output order.
    pub const CLASSES: &str = "emolens.classes";
    /// JSON `{"layout": "NCHW", "channels", "height", "width"}`.
    pub const INPUT: &str = "emolens.input";
    /// `grayscale` or `rgb`.
    pub const COLOUR_MODE: &str = "emolens.colour_mode";
    /// JSON: the model file's normalisation (`{"kind": "unit"}` or `{"kind": "standard",
    /// "mean": [..], "std": [..]}`).
    pub const NORMALISATION: &str = "emolens.normalisation";
    /// JSON: every preprocessing step, machine-readable (see [`super::preprocessing`]).
    pub const PREPROCESSING: &str = "emolens.preprocessing";
    /// `true` or `false`: whether emolens averages each face's probabilities with its mirror
    /// image's.
    pub const FLIP_TTA: &str = "emolens.flip_tta";
    /// With flip TTA, the top probability below which a face also runs mirrored; `none`: every
    /// face.
    pub const FLIP_TTA_BELOW: &str = "emolens.flip_tta_below";
    pub const MODEL_NAME: &str = "emolens.model_name";
    /// SHA-256 (hex) of the `.emolens` file exported.
    pub const MODEL_SHA256: &str = "emolens.model_sha256";
    pub const MODEL_FORMAT_VERSION: &str = "emolens.model_format_version";
    /// JSON: the model file's headline metrics.
    pub const METRICS: &str = "emolens.metrics";
    /// The emolens version that wrote the file.
    pub const EMOLENS_VERSION: &str = "emolens.version";
}

/// An exported model: the ONNX bytes and what the graph holds, for the command's report.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    pub bytes: Vec<u8>,
    /// Operator type to count, e.g. `Conv: 8`.
    pub ops: BTreeMap<String, usize>,
    /// Float values in the initializers (folded weights and constants).
    pub parameters: usize,
    pub metadata: Vec<(String, String)>,
}

fn export_error(source_name: &str, detail: impl Into<String>) -> ModelError {
    ModelError::Export {
        source_name: source_name.to_string(),
        detail: detail.into(),
    }
}

/// Exports the model file `bytes` (`source_name` names it in errors) to ONNX.
pub fn export(bytes: &[u8], source_name: &str) -> Result<OnnxModel, ModelError> {
    let file = ModelFile::decode(bytes, source_name)?;
    let spec = &file.meta.input;
    let input = [spec.channels(), spec.height as usize, spec.width as usize];
    let net = file.network(&Device::flex())?;
    let blocks = net.to_frozen_blocks().map_err(|reason| {
        export_error(
            source_name,
            format!("{reason}: the export writes the network in the frozen form emolens' compiled inference plans run (batch norms folded into the layer with weights before them), which this layer has not; move it after a convolution or dense layer"),
        )
    })?;
    let sha256 = emolens_core::fingerprint::sha256_hex(bytes);
    let metadata = metadata(&file.meta, &sha256);
    let mut graph = Graph::default();
    let logits = graph.blocks(&blocks, INPUT.to_string(), &mut true, "");
    graph.node(
        "Softmax",
        "softmax",
        vec![logits],
        vec![int("axis", 1)],
        Some(OUTPUT.to_string()),
    );
    let classes = file.meta.classes.len();
    let [c, h, w] = input;
    let ops = graph.nodes.iter().fold(BTreeMap::new(), |mut m, n| {
        *m.entry(n.op_type.clone()).or_insert(0) += 1;
        m
    });
    let parameters = graph.parameters;
    let model = proto::ModelProto {
        ir_version: proto::IR_VERSION,
        producer_name: "emolens".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: "emolens".into(),
        model_version: 1,
        doc_string: format!(
            "emolens model {:?} ({}): facial expression probabilities over {} classes. Input `{INPUT}`: [N, {c}, {h}, {w}] float, faces prepared as the metadata key {} states. Output `{OUTPUT}`: [N, {classes}] softmax probabilities in the order of {}.",
            file.meta.name,
            file.arch.name,
            classes,
            keys::PREPROCESSING,
            keys::CLASSES
        ),
        graph: Some(proto::GraphProto {
            node: graph.nodes,
            name: format!("emolens_{}", file.arch.name),
            initializer: graph.initializers,
            doc_string: String::new(),
            input: vec![value_info(
                INPUT,
                &[Dim::Batch, Dim::Fixed(c), Dim::Fixed(h), Dim::Fixed(w)],
            )],
            output: vec![value_info(OUTPUT, &[Dim::Batch, Dim::Fixed(classes)])],
        }),
        opset_import: vec![proto::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: metadata
            .iter()
            .map(|(k, v)| proto::StringStringEntryProto {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
    };
    Ok(OnnxModel {
        bytes: model.encode_to_vec(),
        ops,
        parameters,
        metadata,
    })
}

/// The preprocessing emolens applies (`emolens_core::preprocess`), as data: what a consumer of
/// the ONNX file must do to a face before `input`.
pub fn preprocessing(meta: &ModelMeta) -> serde_json::Value {
    let channels = meta.input.channels();
    let affine = meta.input.normalisation.affine(channels);
    serde_json::json!({
        "decode": "by content (not the file name); EXIF orientation applied; first frame of an animation",
        "colour_mode": meta.input.colour_mode.name(),
        "grayscale": match meta.input.colour_mode {
            ColourMode::Grayscale => "luma = floor((2126 R + 7152 G + 722 B) / 10000) on 8-bit RGB (Rec. 709 weights); alpha dropped; grayscale sources as they are",
            ColourMode::Rgb => "not used: RGB channels in order R, G, B; grayscale sources repeated over three channels; alpha dropped",
        },
        "luma_weights": [2126, 7152, 722],
        "luma_divisor": 10000,
        "resize": {
            "height": meta.input.height,
            "width": meta.input.width,
            "filter": "triangle",
            "antialias": true,
            "when": "only when the image is not already this size (FER2013 crops are 48x48)",
        },
        "layout": "NCHW",
        "normalisation": meta.input.normalisation,
        "formula": "value[c] = pixel[c] * scale[c] + offset[c], pixel in 0..=255",
        "scale": affine.iter().map(|a| a.0).collect::<Vec<f32>>(),
        "offset": affine.iter().map(|a| a.1).collect::<Vec<f32>>(),
        "flip_tta": meta.flip_tta,
        "flip_tta_below": meta.flip_tta_below,
        "flip_tta_rule": "with flip_tta, a face whose top probability is below flip_tta_below (every face when null) also runs mirrored left-right, and its answer is the mean of the two probability vectors",
    })
}

/// The `metadata_props` entries for a model file with digest `sha256`.
pub fn metadata(meta: &ModelMeta, sha256: &str) -> Vec<(String, String)> {
    let input = serde_json::json!({
        "layout": "NCHW",
        "channels": meta.input.channels(),
        "height": meta.input.height,
        "width": meta.input.width,
    });
    let json = |v: serde_json::Value| v.to_string();
    vec![
        (keys::CLASSES, json(serde_json::json!(meta.classes))),
        (keys::INPUT, json(input)),
        (keys::COLOUR_MODE, meta.input.colour_mode.name().to_string()),
        (
            keys::NORMALISATION,
            json(serde_json::json!(meta.input.normalisation)),
        ),
        (keys::PREPROCESSING, json(preprocessing(meta))),
        (keys::FLIP_TTA, meta.flip_tta.to_string()),
        (
            keys::FLIP_TTA_BELOW,
            meta.flip_tta_below
                .map_or_else(|| "none".to_string(), |t| t.to_string()),
        ),
        (keys::MODEL_NAME, meta.name.clone()),
        (keys::MODEL_SHA256, sha256.to_string()),
        (keys::MODEL_FORMAT_VERSION, meta.format_version.to_string()),
        (keys::METRICS, json(serde_json::json!(meta.metrics))),
        (keys::EMOLENS_VERSION, env!("CARGO_PKG_VERSION").to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

enum Dim {
    Batch,
    Fixed(usize),
}

fn value_info(name: &str, dims: &[Dim]) -> proto::ValueInfoProto {
    use proto::{dimension, type_proto};
    let dim = dims
        .iter()
        .map(|d| proto::Dimension {
            value: Some(match d {
                Dim::Batch => dimension::Value::DimParam("N".into()),
                Dim::Fixed(n) => dimension::Value::DimValue(*n as i64),
            }),
        })
        .collect();
    proto::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(proto::TypeProto {
            value: Some(type_proto::Value::TensorType(proto::TensorTypeProto {
                elem_type: proto::FLOAT,
                shape: Some(proto::TensorShapeProto { dim }),
            })),
        }),
        doc_string: String::new(),
    }
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: attribute_type::INT,
        ..Default::default()
    }
}

fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f,
        r#type: attribute_type::FLOAT,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.iter().map(|&x| x as i64).collect(),
        r#type: attribute_type::INTS,
        ..Default::default()
    }
}

/// Nodes and initializers under construction; `current` names the latest output.
#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    parameters: usize,
}

impl Graph {
    /// A float initializer named `name`.
    fn constant(&mut self, name: String, dims: &[usize], values: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        self.parameters += values.len();
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: proto::FLOAT,
            name: name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    /// Adds a node named `name`; its output is `output` or `name` itself.
    fn node(
        &mut self,
        op: &str,
        name: &str,
        input: Vec<String>,
        attribute: Vec<AttributeProto>,
        output: Option<String>,
    ) -> String {
        let out = output.unwrap_or_else(|| name.to_string());
        self.nodes.push(NodeProto {
            input,
            output: vec![out.clone()],
            name: name.to_string(),
            op_type: op.to_string(),
            attribute,
            ..Default::default()
        });
        out
    }

    /// The blocks applied to `x` (`image`: whether it is 4-D; updated); returns the name of
    /// the result. Names start with `prefix`.
    fn blocks(
        &mut self,
        blocks: &[Block],
        mut x: String,
        image: &mut bool,
        prefix: &str,
    ) -> String {
        for (i, block) in blocks.iter().enumerate() {
            let at = format!("{prefix}step{i}");
            let step = match block {
                Block::Step(step) => step,
                Block::Residual {
                    body,
                    shortcut,
                    post,
                } => {
                    let mut short_image = *image;
                    let b = self.blocks(body, x.clone(), image, &format!("{at}.body."));
                    let s = self.blocks(shortcut, x, &mut short_image, &format!("{at}.shortcut."));
                    let y = self.node("Add", &format!("{at}.add"), vec![b, s], vec![], None);
                    x = self.post(&at, y, post, *image);
                    continue;
                }
            };
            x = match step {
                Step::Conv {
                    out_channels,
                    kernel,
                    stride,
                    pad_l,
                    pad_r,
                    groups,
                    weight,
                    bias,
                    post,
                } => {
                    let per_group = weight.len() / (out_channels * kernel[0] * kernel[1]);
                    let dims = [*out_channels, per_group, kernel[0], kernel[1]];
                    let mut inputs = vec![x, self.constant(format!("{at}.weight"), &dims, weight)];
                    if let Some(b) = bias {
                        inputs.push(self.constant(format!("{at}.bias"), &[b.len()], b));
                    }
                    let attrs = vec![
                        ints("kernel_shape", kernel),
                        ints("strides", stride),
                        ints("pads", &[pad_l[0], pad_l[1], pad_r[0], pad_r[1]]),
                        ints("dilations", &[1, 1]),
                        int("group", *groups as i64),
                    ];
                    let y = self.node("Conv", &format!("{at}.conv"), inputs, attrs, None);
                    self.post(&at, y, post, *image)
                }
                Step::Dense {
                    units,
                    weight,
                    bias,
                    post,
                } => {
                    let inputs_n = weight.len() / units;
                    let mut inputs = vec![
                        x,
                        self.constant(format!("{at}.weight"), &[inputs_n, *units], weight),
                    ];
                    if let Some(b) = bias {
                        inputs.push(self.constant(format!("{at}.bias"), &[*units], b));
                    }
                    let y = self.node("Gemm", &format!("{at}.dense"), inputs, vec![], None);
                    self.post(&at, y, post, *image)
                }
                Step::Pool {
                    kernel,
                    stride,
                    pad_l,
                    pad_r,
                    max,
                } => {
                    let mut attrs = vec![
                        ints("kernel_shape", kernel),
                        ints("strides", stride),
                        ints("pads", &[pad_l[0], pad_l[1], pad_r[0], pad_r[1]]),
                    ];
                    let op = if *max {
                        "MaxPool"
                    } else {
                        // Padding is not counted in the mean, as emolens' pooling.
                        attrs.push(int("count_include_pad", 0));
                        "AveragePool"
                    };
                    self.node(op, &format!("{at}.pool"), vec![x], attrs, None)
                }
                Step::GlobalPool { max } => {
                    let op = if *max {
                        "GlobalMaxPool"
                    } else {
                        "GlobalAveragePool"
                    };
                    let y = self.node(op, &format!("{at}.pool"), vec![x], vec![], None);
                    *image = false;
                    self.node(
                        "Flatten",
                        &format!("{at}.flatten"),
                        vec![y],
                        vec![int("axis", 1)],
                        None,
                    )
                }
                Step::Flatten => {
                    *image = false;
                    // Channels-first order, the order the dense weights expect.
                    self.node(
                        "Flatten",
                        &format!("{at}.flatten"),
                        vec![x],
                        vec![int("axis", 1)],
                        None,
                    )
                }
            };
        }
        x
    }

    /// A layer's or block's post-ops on its output `x` (`image`: 4-D).
    fn post(&mut self, at: &str, mut x: String, post: &[PostOp], image: bool) -> String {
        for (j, op) in post.iter().enumerate() {
            let name = format!("{at}.post{j}");
            x = match op {
                PostOp::Affine { scale, shift } => {
                    // Per channel: [C, 1, 1] broadcasts over an image's height and width.
                    let shape: Vec<usize> = if image {
                        vec![scale.len(), 1, 1]
                    } else {
                        vec![scale.len()]
                    };
                    let s = self.constant(format!("{name}.scale"), &shape, scale);
                    let t = self.constant(format!("{name}.shift"), &shape, shift);
                    let y = self.node("Mul", &format!("{name}.mul"), vec![x, s], vec![], None);
                    self.node("Add", &format!("{name}.add"), vec![y, t], vec![], None)
                }
                PostOp::Act(a) => self.activation(&name, x, *a),
            };
        }
        x
    }

    /// One activation, as emolens computes it (leaky ReLU's slope 0.2, ELU's alpha 1, GELU with
    /// erf, as burn's and oneDNN's).
    fn activation(&mut self, name: &str, x: String, a: Act) -> String {
        match a {
            Act::Relu => self.node("Relu", name, vec![x], vec![], None),
            Act::LeakyRelu => {
                self.node("LeakyRelu", name, vec![x], vec![float("alpha", 0.2)], None)
            }
            Act::Elu => self.node("Elu", name, vec![x], vec![float("alpha", 1.0)], None),
            Act::Sigmoid => self.node("Sigmoid", name, vec![x], vec![], None),
            Act::Tanh => self.node("Tanh", name, vec![x], vec![], None),
            Act::Relu6 => {
                let lo = self.constant(format!("{name}.min"), &[], &[0.0]);
                let hi = self.constant(format!("{name}.max"), &[], &[6.0]);
                self.node("Clip", name, vec![x, lo, hi], vec![], None)
            }
            Act::Silu => {
                let s = self.node(
                    "Sigmoid",
                    &format!("{name}.sigmoid"),
                    vec![x.clone()],
                    vec![],
                    None,
                );
                self.node("Mul", name, vec![x, s], vec![], None)
            }
            Act::Gelu => {
                // x * 0.5 * (1 + erf(x / sqrt(2)))
                let root2 =
                    self.constant(format!("{name}.sqrt2"), &[], &[std::f32::consts::SQRT_2]);
                let one = self.constant(format!("{name}.one"), &[], &[1.0]);
                let half = self.constant(format!("{name}.half"), &[], &[0.5]);
                let d = self.node(
                    "Div",
                    &format!("{name}.div"),
                    vec![x.clone(), root2],
                    vec![],
                    None,
                );
                let e = self.node("Erf", &format!("{name}.erf"), vec![d], vec![], None);
                let p = self.node("Add", &format!("{name}.add"), vec![e, one], vec![], None);
                let m = self.node("Mul", &format!("{name}.mul"), vec![x, p], vec![], None);
                self.node("Mul", name, vec![m, half], vec![], None)
            }
            // Never attached by the freezer (logits stay logits); nothing to do.
            Act::Linear | Act::Softmax => x,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_states_the_preprocessing() {
        let meta = ModelMeta {
            format_version: 1,
            name: "m".into(),
            classes: vec!["a".into(), "b".into()],
            input: emolens_core::InputSpec {
                height: 64,
                width: 48,
                colour_mode: ColourMode::Rgb,
                normalisation: emolens_core::Normalisation::Standard {
                    mean: vec![0.5, 0.4, 0.3],
                    std: vec![0.25, 0.2, 0.1],
                },
            },
            architecture: serde_json::Value::Null,
            training: serde_json::Value::Null,
            data_fingerprint: None,
            metrics: Default::default(),
            flip_tta: true,
            flip_tta_below: None,
            int8: None,
        };
        let m: BTreeMap<String, String> = metadata(&meta, "ab").into_iter().collect();
        assert_eq!(m[keys::CLASSES], r#"["a","b"]"#);
        assert_eq!(m[keys::COLOUR_MODE], "rgb");
        assert_eq!(m[keys::FLIP_TTA_BELOW], "none");
        let p: serde_json::Value = serde_json::from_str(&m[keys::PREPROCESSING]).unwrap();
        // value = pixel * scale + offset reproduces (x / 255 - mean) / std.
        let (scale, offset) = (
            p["scale"][2].as_f64().unwrap(),
            p["offset"][2].as_f64().unwrap(),
        );
        let want = (200.0 / 255.0 - 0.3) / 0.1;
        assert!((200.0 * scale + offset - want).abs() < 1e-4);
        assert_eq!(p["resize"]["height"], 64);
        let input: serde_json::Value = serde_json::from_str(&m[keys::INPUT]).unwrap();
        assert_eq!(input["channels"], 3);
    }
}
