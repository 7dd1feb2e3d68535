//! The burn network built from an [`Architecture`]. One generic module tree serves every
//! architecture file: a list of nodes, each a layer with weights or a stateless operation.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation;
use burn::tensor::{Device, Tensor};

use crate::arch::{out_len, same_pad, Act, Architecture, LayerSpec, Padding, Shape};
use crate::error::ModelError;

/// Stateless operations between layers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Act(Act),
    GlobalAvg,
    GlobalMax,
    Flatten,
}

#[derive(Module, Debug)]
pub struct ConvNode {
    conv: Conv2d,
    /// The 1x1 pointwise half of a separable convolution.
    pointwise: Option<Conv2d>,
    #[module(skip)]
    act: Option<Act>,
}

#[derive(Module, Debug)]
pub struct DenseNode {
    linear: Linear,
    #[module(skip)]
    act: Option<Act>,
}

#[derive(Module, Debug)]
pub struct ResidualNode {
    body: Vec<Node>,
    shortcut: Vec<Node>,
    #[module(skip)]
    act: Option<Act>,
}

/// A stateless operation as a module (no weights).
#[derive(Module, Debug)]
pub struct OpNode {
    #[module(skip)]
    op: Op,
}

// Module derive needs each variant to hold its module directly, so no boxing here; the list
// is short (one node per layer), so the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Node {
    Conv(ConvNode),
    Norm(BatchNorm),
    Dense(DenseNode),
    MaxPool(MaxPool2d),
    AvgPool(AvgPool2d),
    Dropout(Dropout),
    Op(OpNode),
    Residual(ResidualNode),
}

/// A classifier network: image batch `[N, C, H, W]` in, logits `[N, classes]` out.
#[derive(Module, Debug)]
pub struct Network {
    nodes: Vec<Node>,
}

/// Activations flowing between nodes.
enum X {
    Image(Tensor<4>),
    Vector(Tensor<2>),
}

fn act<const D: usize>(a: Option<Act>, x: Tensor<D>) -> Tensor<D> {
    match a {
        None | Some(Act::Linear) | Some(Act::Softmax) => x,
        Some(Act::Relu) => activation::relu(x),
        Some(Act::Relu6) => activation::relu6(x),
        Some(Act::LeakyRelu) => activation::leaky_relu(x, 0.2),
        Some(Act::Elu) => activation::elu(x, 1.0),
        Some(Act::Gelu) => activation::gelu(x),
        Some(Act::Silu) => activation::silu(x),
        Some(Act::Sigmoid) => activation::sigmoid(x),
        Some(Act::Tanh) => activation::tanh(x),
    }
}

fn pad_cfg(padding: Padding, h: usize, w: usize, k: usize, s: usize) -> PaddingConfig2d {
    match padding {
        Padding::Valid => PaddingConfig2d::Valid,
        Padding::Same => {
            let (t, b) = same_pad(h, k, s);
            let (l, r) = same_pad(w, k, s);
            PaddingConfig2d::Explicit(t, l, b, r)
        }
    }
}

/// The window of a convolution: kernel side, stride and padding.
#[derive(Clone, Copy)]
struct Window {
    kernel: usize,
    stride: usize,
    padding: Padding,
}

/// A `kernel x kernel` convolution over an `h x w` input, and the output size it gives.
fn conv2d(
    channels: [usize; 2],
    groups: usize,
    bias: bool,
    win: Window,
    (h, w): (usize, usize),
    device: &Device,
) -> (Conv2d, usize, usize) {
    let conv = Conv2dConfig::new(channels, [win.kernel, win.kernel])
        .with_stride([win.stride, win.stride])
        .with_padding(pad_cfg(win.padding, h, w, win.kernel, win.stride))
        .with_groups(groups)
        .with_bias(bias)
        .init(device);
    let oh = out_len(h, win.kernel, win.stride, win.padding).unwrap_or(0);
    let ow = out_len(w, win.kernel, win.stride, win.padding).unwrap_or(0);
    (conv, oh, ow)
}

fn build(
    layers: &[LayerSpec],
    mut shape: Shape,
    device: &Device,
) -> Result<(Vec<Node>, Shape), ModelError> {
    let mut nodes = Vec::with_capacity(layers.len());
    for layer in layers {
        let (node, next) = match (layer, shape) {
            (
                LayerSpec::Conv2d {
                    filters,
                    kernel,
                    stride,
                    padding,
                    bias,
                    activation,
                },
                Shape::Image(c, h, w),
            ) => {
                let win = Window {
                    kernel: *kernel,
                    stride: *stride,
                    padding: *padding,
                };
                let (conv, oh, ow) = conv2d([c, *filters], 1, *bias, win, (h, w), device);
                (
                    Node::Conv(ConvNode {
                        conv,
                        pointwise: None,
                        act: *activation,
                    }),
                    Shape::Image(*filters, oh, ow),
                )
            }
            (
                LayerSpec::SeparableConv2d {
                    filters,
                    kernel,
                    stride,
                    padding,
                    bias,
                    activation,
                },
                Shape::Image(c, h, w),
            ) => {
                let win = Window {
                    kernel: *kernel,
                    stride: *stride,
                    padding: *padding,
                };
                let (conv, oh, ow) = conv2d([c, c], c, false, win, (h, w), device);
                let pointwise = Conv2dConfig::new([c, *filters], [1, 1])
                    .with_bias(*bias)
                    .init(device);
                (
                    Node::Conv(ConvNode {
                        conv,
                        pointwise: Some(pointwise),
                        act: *activation,
                    }),
                    Shape::Image(*filters, oh, ow),
                )
            }
            (
                LayerSpec::DepthwiseConv2d {
                    kernel,
                    stride,
                    padding,
                    bias,
                    activation,
                },
                Shape::Image(c, h, w),
            ) => {
                let win = Window {
                    kernel: *kernel,
                    stride: *stride,
                    padding: *padding,
                };
                let (conv, oh, ow) = conv2d([c, c], c, *bias, win, (h, w), device);
                (
                    Node::Conv(ConvNode {
                        conv,
                        pointwise: None,
                        act: *activation,
                    }),
                    Shape::Image(c, oh, ow),
                )
            }
            (LayerSpec::BatchNorm { momentum, epsilon }, s) => {
                let f = match s {
                    Shape::Image(c, ..) => c,
                    Shape::Vector(n) => n,
                };
                let mut cfg = BatchNormConfig::new(f);
                if let Some(m) = momentum {
                    cfg = cfg.with_momentum(*m);
                }
                if let Some(e) = epsilon {
                    cfg = cfg.with_epsilon(*e);
                }
                (Node::Norm(cfg.init(device)), s)
            }
            (LayerSpec::Activation { function }, s) => (
                Node::Op(OpNode {
                    op: Op::Act(*function),
                }),
                s,
            ),
            (
                LayerSpec::MaxPool2d {
                    size,
                    stride,
                    padding,
                },
                Shape::Image(c, h, w),
            ) => {
                let st = stride.unwrap_or(*size);
                let pool = MaxPool2dConfig::new([*size, *size])
                    .with_strides([st, st])
                    .with_padding(pad_cfg(*padding, h, w, *size, st))
                    .init();
                let oh = out_len(h, *size, st, *padding).unwrap_or(0);
                let ow = out_len(w, *size, st, *padding).unwrap_or(0);
                (Node::MaxPool(pool), Shape::Image(c, oh, ow))
            }
            (
                LayerSpec::AvgPool2d {
                    size,
                    stride,
                    padding,
                },
                Shape::Image(c, h, w),
            ) => {
                let st = stride.unwrap_or(*size);
                let pool = AvgPool2dConfig::new([*size, *size])
                    .with_strides([st, st])
                    .with_padding(pad_cfg(*padding, h, w, *size, st))
                    .with_count_include_pad(false)
                    .init();
                let oh = out_len(h, *size, st, *padding).unwrap_or(0);
                let ow = out_len(w, *size, st, *padding).unwrap_or(0);
                (Node::AvgPool(pool), Shape::Image(c, oh, ow))
            }
            (LayerSpec::GlobalAvgPool, Shape::Image(c, ..)) => {
                (Node::Op(OpNode { op: Op::GlobalAvg }), Shape::Vector(c))
            }
            (LayerSpec::GlobalMaxPool, Shape::Image(c, ..)) => {
                (Node::Op(OpNode { op: Op::GlobalMax }), Shape::Vector(c))
            }
            (LayerSpec::Dropout { rate }, s) => {
                (Node::Dropout(DropoutConfig::new(*rate).init()), s)
            }
            (LayerSpec::Flatten, Shape::Image(c, h, w)) => (
                Node::Op(OpNode { op: Op::Flatten }),
                Shape::Vector(c * h * w),
            ),
            (LayerSpec::Flatten, s) => (Node::Op(OpNode { op: Op::Flatten }), s),
            (
                LayerSpec::Dense {
                    units,
                    bias,
                    activation,
                },
                Shape::Vector(n),
            ) => {
                let linear = LinearConfig::new(n, *units).with_bias(*bias).init(device);
                (
                    Node::Dense(DenseNode {
                        linear,
                        act: *activation,
                    }),
                    Shape::Vector(*units),
                )
            }
            (
                LayerSpec::Residual {
                    body,
                    shortcut,
                    activation,
                },
                s,
            ) => {
                let (body, out) = build(body, s, device)?;
                let (shortcut, _) = build(shortcut, s, device)?;
                (
                    Node::Residual(ResidualNode {
                        body,
                        shortcut,
                        act: *activation,
                    }),
                    out,
                )
            }
            (l, s) => {
                return Err(ModelError::Architecture(format!(
                    "layer {} cannot take a {s} input (run `emolens arch summary` for details)",
                    l.kind()
                )))
            }
        };
        nodes.push(node);
        shape = next;
    }
    Ok((nodes, shape))
}

fn run(nodes: &[Node], mut x: X) -> X {
    for node in nodes {
        x = match (node, x) {
            (Node::Conv(c), X::Image(t)) => {
                let mut y = c.conv.forward(t);
                if let Some(p) = &c.pointwise {
                    y = p.forward(y);
                }
                X::Image(act(c.act, y))
            }
            (Node::Norm(bn), X::Image(t)) => X::Image(bn.forward(t)),
            (Node::Norm(bn), X::Vector(t)) => X::Vector(bn.forward(t)),
            (Node::Dense(d), X::Vector(t)) => X::Vector(act(d.act, d.linear.forward(t))),
            (Node::MaxPool(p), X::Image(t)) => X::Image(p.forward(t)),
            (Node::AvgPool(p), X::Image(t)) => X::Image(p.forward(t)),
            (Node::Dropout(d), X::Image(t)) => X::Image(d.forward(t)),
            (Node::Dropout(d), X::Vector(t)) => X::Vector(d.forward(t)),
            (Node::Op(op), x) => match (op.op, x) {
                (Op::Act(a), X::Image(t)) => X::Image(act(Some(a), t)),
                (Op::Act(a), X::Vector(t)) => X::Vector(act(Some(a), t)),
                (Op::GlobalAvg, X::Image(t)) => {
                    let [n, c, _, _] = t.dims();
                    X::Vector(t.mean_dim(3).mean_dim(2).reshape([n, c]))
                }
                (Op::GlobalMax, X::Image(t)) => {
                    let [n, c, _, _] = t.dims();
                    X::Vector(t.max_dim(3).max_dim(2).reshape([n, c]))
                }
                (Op::Flatten, X::Image(t)) => X::Vector(t.flatten(1, 3)),
                (_, x) => x,
            },
            (Node::Residual(r), X::Image(t)) => {
                let body = run(&r.body, X::Image(t.clone()));
                let short = run(&r.shortcut, X::Image(t));
                match (body, short) {
                    (X::Image(a), X::Image(b)) => X::Image(act(r.act, a + b)),
                    (X::Vector(a), X::Vector(b)) => X::Vector(act(r.act, a + b)),
                    _ => unreachable!("residual branches were shape-checked at build time"),
                }
            }
            (Node::Residual(r), X::Vector(t)) => {
                let body = run(&r.body, X::Vector(t.clone()));
                let short = run(&r.shortcut, X::Vector(t));
                match (body, short) {
                    (X::Vector(a), X::Vector(b)) => X::Vector(act(r.act, a + b)),
                    _ => unreachable!("residual branches were shape-checked at build time"),
                }
            }
            _ => unreachable!("node shapes were checked when the network was built"),
        };
    }
    x
}

impl Network {
    /// Builds a freshly initialised network for `channels x height x width` inputs. The
    /// architecture is shape-checked first, so errors name the bad layer.
    pub fn new(
        arch: &Architecture,
        channels: usize,
        height: usize,
        width: usize,
        device: &Device,
    ) -> Result<Self, ModelError> {
        arch.summarise(channels, height, width)?;
        let (nodes, _) = build(&arch.layers, Shape::Image(channels, height, width), device)?;
        Ok(Network { nodes })
    }

    /// Logits for a batch of images `[N, C, H, W]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match run(&self.nodes, X::Image(images)) {
            X::Vector(t) => t,
            X::Image(_) => unreachable!("architectures are checked to end in a vector"),
        }
    }
}
