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
use crate::frozen::{batch_norm_affine, Block, FrozenNet, PostOp, Step};

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
    /// Forward multiply-accumulates per image: small passes run on one thread.
    #[module(skip)]
    macs_per_image: u64,
}

/// Activations flowing between nodes.
enum X {
    Image(Tensor<4>),
    Vector(Tensor<2>),
    /// An image batch in channels-last layout `[N, H, W, C]` (the oneDNN path).
    #[cfg_attr(not(emolens_onednn), allow(dead_code))]
    Nhwc(Tensor<4>),
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

impl Window {
    fn new(kernel: usize, stride: usize, padding: Padding) -> Self {
        Window {
            kernel,
            stride,
            padding,
        }
    }
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

/// The nodes of `layers` for a `shape` input, and the shape they give.
fn build(
    layers: &[LayerSpec],
    mut shape: Shape,
    device: &Device,
) -> Result<(Vec<Node>, Shape), ModelError> {
    let mut nodes = Vec::with_capacity(layers.len());
    for layer in layers {
        let (node, next) = build_node(layer, shape, device)?;
        nodes.push(node);
        shape = next;
    }
    Ok((nodes, shape))
}

/// One layer's node for a `shape` input, and its output shape; refuses a layer that cannot
/// take that input.
fn build_node(
    layer: &LayerSpec,
    shape: Shape,
    device: &Device,
) -> Result<(Node, Shape), ModelError> {
    if let Shape::Image(c, h, w) = shape {
        let built = conv_layer(layer, (c, h, w), device).or_else(|| pool_layer(layer, (c, h, w)));
        if let Some(built) = built {
            return Ok(built);
        }
    }
    Ok(match (layer, shape) {
        (LayerSpec::BatchNorm { momentum, epsilon }, s) => {
            (batch_norm_node(*momentum, *epsilon, s, device), s)
        }
        (LayerSpec::Activation { function }, s) => (op_node(Op::Act(*function)), s),
        (LayerSpec::Dropout { rate }, s) => (Node::Dropout(DropoutConfig::new(*rate).init()), s),
        (LayerSpec::Flatten, Shape::Image(c, h, w)) => {
            (op_node(Op::Flatten), Shape::Vector(c * h * w))
        }
        (LayerSpec::Flatten, s) => (op_node(Op::Flatten), s),
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
        ) => residual_node(body, shortcut, *activation, s, device)?,
        (l, s) => {
            return Err(ModelError::Architecture(format!(
                "layer {} cannot take a {s} input (run `emolens arch summary` for details)",
                l.kind()
            )))
        }
    })
}

/// A convolution layer's node (plain, separable or depthwise) for a `(c, h, w)` image, and its
/// output shape; `None` for any other layer.
fn conv_layer(
    layer: &LayerSpec,
    (c, h, w): (usize, usize, usize),
    device: &Device,
) -> Option<(Node, Shape)> {
    Some(match *layer {
        LayerSpec::Conv2d {
            filters,
            kernel,
            stride,
            padding,
            bias,
            activation,
        } => {
            let win = Window::new(kernel, stride, padding);
            let (conv, oh, ow) = conv2d([c, filters], 1, bias, win, (h, w), device);
            (
                conv_node(conv, None, activation),
                Shape::Image(filters, oh, ow),
            )
        }
        LayerSpec::SeparableConv2d {
            filters,
            kernel,
            stride,
            padding,
            bias,
            activation,
        } => {
            let win = Window::new(kernel, stride, padding);
            let (conv, oh, ow) = conv2d([c, c], c, false, win, (h, w), device);
            let pointwise = Conv2dConfig::new([c, filters], [1, 1])
                .with_bias(bias)
                .init(device);
            (
                conv_node(conv, Some(pointwise), activation),
                Shape::Image(filters, oh, ow),
            )
        }
        LayerSpec::DepthwiseConv2d {
            kernel,
            stride,
            padding,
            bias,
            activation,
        } => {
            let win = Window::new(kernel, stride, padding);
            let (conv, oh, ow) = conv2d([c, c], c, bias, win, (h, w), device);
            (conv_node(conv, None, activation), Shape::Image(c, oh, ow))
        }
        _ => return None,
    })
}

/// A pooling layer's node (max, average, global) for a `(c, h, w)` image, and its output shape;
/// `None` for any other layer.
fn pool_layer(layer: &LayerSpec, image: (usize, usize, usize)) -> Option<(Node, Shape)> {
    Some(match *layer {
        LayerSpec::MaxPool2d {
            size,
            stride,
            padding,
        } => pool_node(true, size, stride, padding, image),
        LayerSpec::AvgPool2d {
            size,
            stride,
            padding,
        } => pool_node(false, size, stride, padding, image),
        LayerSpec::GlobalAvgPool => (op_node(Op::GlobalAvg), Shape::Vector(image.0)),
        LayerSpec::GlobalMaxPool => (op_node(Op::GlobalMax), Shape::Vector(image.0)),
        _ => return None,
    })
}

/// A convolution node: `conv`, then the pointwise half of a separable convolution, then the
/// activation.
fn conv_node(conv: Conv2d, pointwise: Option<Conv2d>, act: Option<Act>) -> Node {
    Node::Conv(ConvNode {
        conv,
        pointwise,
        act,
    })
}

/// A stateless operation's node.
fn op_node(op: Op) -> Node {
    Node::Op(OpNode { op })
}

/// A batch norm over the channels of an image or the features of a vector, with burn's
/// momentum and epsilon unless the layer sets them.
fn batch_norm_node(
    momentum: Option<f64>,
    epsilon: Option<f64>,
    shape: Shape,
    device: &Device,
) -> Node {
    let f = match shape {
        Shape::Image(c, ..) => c,
        Shape::Vector(n) => n,
    };
    let mut cfg = BatchNormConfig::new(f);
    if let Some(m) = momentum {
        cfg = cfg.with_momentum(m);
    }
    if let Some(e) = epsilon {
        cfg = cfg.with_epsilon(e);
    }
    Node::Norm(cfg.init(device))
}

/// A `size x size` max (`max`) or average pool (stride `size` unless given; averages leave the
/// padding out) over a `(c, h, w)` image, and its output shape.
fn pool_node(
    max: bool,
    size: usize,
    stride: Option<usize>,
    padding: Padding,
    (c, h, w): (usize, usize, usize),
) -> (Node, Shape) {
    let st = stride.unwrap_or(size);
    let pad = pad_cfg(padding, h, w, size, st);
    let node = if max {
        Node::MaxPool(
            MaxPool2dConfig::new([size, size])
                .with_strides([st, st])
                .with_padding(pad)
                .init(),
        )
    } else {
        Node::AvgPool(
            AvgPool2dConfig::new([size, size])
                .with_strides([st, st])
                .with_padding(pad)
                .with_count_include_pad(false)
                .init(),
        )
    };
    let oh = out_len(h, size, st, padding).unwrap_or(0);
    let ow = out_len(w, size, st, padding).unwrap_or(0);
    (node, Shape::Image(c, oh, ow))
}

/// A residual block: both branches built for the block's input `shape` (the body's output is
/// the block's).
fn residual_node(
    body: &[LayerSpec],
    shortcut: &[LayerSpec],
    act: Option<Act>,
    shape: Shape,
    device: &Device,
) -> Result<(Node, Shape), ModelError> {
    let (body, out) = build(body, shape, device)?;
    let (shortcut, _) = build(shortcut, shape, device)?;
    Ok((
        Node::Residual(ResidualNode {
            body,
            shortcut,
            act,
        }),
        out,
    ))
}

fn run(nodes: &[Node], mut x: X) -> X {
    for node in nodes {
        x = step(node, x);
    }
    x
}

/// One node on channels-first activations.
fn step(node: &Node, x: X) -> X {
    match (node, x) {
        (node, X::Nhwc(t)) => step(node, X::Image(t.permute([0, 3, 1, 2]))),
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
    }
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
        let summary = arch.summarise(channels, height, width)?;
        let (nodes, _) = build(&arch.layers, Shape::Image(channels, height, width), device)?;
        Ok(Network {
            nodes,
            macs_per_image: summary.macs,
        })
    }

    /// Forward multiply-accumulates per image.
    pub fn macs_per_image(&self) -> u64 {
        self.macs_per_image
    }

    /// Logits for a batch of images `[N, C, H, W]`. On the CPU with oneDNN built in, the
    /// network runs channels-last on oneDNN's kernels (see [`crate::onednn`]).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        #[cfg(emolens_onednn)]
        if crate::onednn::ops::applies(&images) {
            let work = images.dims()[0] as u64 * self.macs_per_image;
            let x = X::Nhwc(images.permute([0, 2, 3, 1]));
            return crate::onednn::kernels::threads_for_work(work, || {
                match channels_last::run(&self.nodes, x) {
                    X::Vector(t) => t,
                    _ => unreachable!("architectures are checked to end in a vector"),
                }
            });
        }
        match run(&self.nodes, X::Image(images)) {
            X::Vector(t) => t,
            _ => unreachable!("architectures are checked to end in a vector"),
        }
    }
}

/// ([top, left], [bottom, right]) padding; `None` for burn's `Same`, which emolens never builds
/// (it turns `same` into explicit padding).
fn pads(p: &PaddingConfig2d) -> Option<([usize; 2], [usize; 2])> {
    match *p {
        PaddingConfig2d::Valid => Some(([0, 0], [0, 0])),
        PaddingConfig2d::Explicit(t, l, b, r) => Some(([t, l], [b, r])),
        PaddingConfig2d::Same => None,
    }
}

/// Why a network cannot be frozen (it still runs, on the layer-by-layer path).
fn unsupported(what: &str) -> String {
    format!("{what} has no frozen inference form")
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

fn frozen_conv(c: &Conv2d, post: Vec<PostOp>) -> Result<Step, String> {
    if c.dilation != [1, 1] {
        return Err(unsupported("a dilated convolution"));
    }
    let (pad_l, pad_r) = pads(&c.padding).ok_or_else(|| unsupported("burn's `Same` padding"))?;
    Ok(Step::Conv {
        out_channels: c.weight.dims()[0],
        kernel: c.kernel_size,
        stride: c.stride,
        pad_l,
        pad_r,
        groups: c.groups,
        weight: values(c.weight.val()),
        bias: c.bias.as_ref().map(|b| values(b.val())),
        post,
    })
}

fn frozen_pool(
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: &PaddingConfig2d,
    max: bool,
) -> Result<Step, String> {
    let (pad_l, pad_r) = pads(padding).ok_or_else(|| unsupported("burn's `Same` padding"))?;
    Ok(Step::Pool {
        kernel,
        stride,
        pad_l,
        pad_r,
        max,
    })
}

/// Attaches an activation to the layer that produced the current output.
fn attach_act(steps: &mut [Block], a: Act) -> Result<(), String> {
    if matches!(a, Act::Linear | Act::Softmax) {
        return Ok(()); // logits stay logits; softmax is applied at prediction
    }
    match steps.last_mut().and_then(Block::post_mut) {
        Some(post) => {
            post.push(PostOp::Act(a));
            Ok(())
        }
        None => Err(unsupported(
            "an activation that does not follow a layer with weights",
        )),
    }
}

impl Network {
    /// The network frozen for inference (see [`crate::frozen`]): weights copied out, batch
    /// norms folded. Architectures with residual blocks, or an activation or batch norm that
    /// does not follow a layer with weights, are refused with the reason; they keep running
    /// layer by layer.
    pub fn to_frozen(&self, input: [usize; 3]) -> Result<FrozenNet, String> {
        if let Some(i) = self
            .nodes
            .iter()
            .position(|n| matches!(n, Node::Residual(_)))
        {
            return Err(format!(
                "layer {i} (residual): {}",
                unsupported("a residual block")
            ));
        }
        let steps = self
            .to_frozen_blocks()?
            .into_iter()
            .map(|b| match b {
                Block::Step(s) => s,
                Block::Residual { .. } => unreachable!("residual blocks were refused above"),
            })
            .collect();
        Ok(FrozenNet { input, steps })
    }

    /// The network frozen as [`Network::to_frozen`] freezes it, residual blocks included (their
    /// branches frozen the same way): for exporters, whose formats can branch. Refusals name
    /// the layer (`layer 3 (activation): ...`, `layer 5 (residual): body.0 (batch_norm): ...`).
    pub fn to_frozen_blocks(&self) -> Result<Vec<Block>, String> {
        freeze_nodes(&self.nodes, &mut true, "layer ")
    }
}

/// Freezes a list of nodes; `image`: whether activations are still images (updated);
/// `prefix` starts each refusal's layer path.
fn freeze_nodes(nodes: &[Node], image: &mut bool, prefix: &str) -> Result<Vec<Block>, String> {
    let mut blocks: Vec<Block> = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        freeze_node(node, &mut blocks, image)
            .map_err(|why| format!("{prefix}{i} ({}): {why}", node_kind(node)))?;
    }
    Ok(blocks)
}

/// The architecture's name for the layer a node was built from (`residual`, `batch_norm`, ...),
/// for messages.
fn node_kind(node: &Node) -> &'static str {
    match node {
        Node::Conv(c) if c.pointwise.is_some() => "separable_conv2d",
        Node::Conv(c) if c.conv.groups > 1 => "depthwise_conv2d",
        Node::Conv(_) => "conv2d",
        Node::Norm(_) => "batch_norm",
        Node::Dense(_) => "dense",
        Node::MaxPool(_) => "max_pool2d",
        Node::AvgPool(_) => "avg_pool2d",
        Node::Dropout(_) => "dropout",
        Node::Op(OpNode { op: Op::Act(_) }) => "activation",
        Node::Op(OpNode { op: Op::GlobalAvg }) => "global_avg_pool",
        Node::Op(OpNode { op: Op::GlobalMax }) => "global_max_pool",
        Node::Op(OpNode { op: Op::Flatten }) => "flatten",
        Node::Residual(_) => "residual",
    }
}

/// Appends one top-level node's frozen form to `steps` (`image`: whether activations are
/// still images).
fn freeze_node(node: &Node, steps: &mut Vec<Block>, image: &mut bool) -> Result<(), String> {
    fn push(steps: &mut Vec<Block>, s: Step) {
        steps.push(Block::Step(s));
    }
    match node {
        Node::Conv(c) => {
            match &c.pointwise {
                None => push(steps, frozen_conv(&c.conv, vec![])?),
                Some(p) => {
                    push(steps, frozen_conv(&c.conv, vec![])?);
                    push(steps, frozen_conv(p, vec![])?);
                }
            }
            if let Some(a) = c.act {
                attach_act(steps, a)?;
            }
        }
        Node::Norm(bn) => {
            let (scale, shift) = batch_norm_affine(
                &values(bn.gamma.val()),
                &values(bn.beta.val()),
                &values(bn.running_mean.value()),
                &values(bn.running_var.value()),
                bn.epsilon,
            );
            let last = steps
                .last_mut()
                .ok_or_else(|| unsupported("a batch norm before any layer"))?;
            if !last.fold_affine(&scale, &shift) {
                last.post_mut()
                    .ok_or_else(|| {
                        unsupported("a batch norm that does not follow a layer with weights")
                    })?
                    .push(PostOp::Affine { scale, shift });
            }
        }
        Node::Dense(d) => {
            push(
                steps,
                Step::Dense {
                    units: d.linear.weight.dims()[1],
                    weight: values(d.linear.weight.val()),
                    bias: d.linear.bias.as_ref().map(|b| values(b.val())),
                    post: vec![],
                },
            );
            if let Some(a) = d.act {
                attach_act(steps, a)?;
            }
        }
        Node::MaxPool(p) if p.dilation == [1, 1] && !p.ceil_mode => push(
            steps,
            frozen_pool(p.kernel_size, p.stride, &p.padding, true)?,
        ),
        Node::AvgPool(p) if !p.count_include_pad && !p.ceil_mode => push(
            steps,
            frozen_pool(p.kernel_size, p.stride, &p.padding, false)?,
        ),
        Node::MaxPool(_) | Node::AvgPool(_) => {
            return Err(unsupported("a dilated, ceil-mode or padding-counting pool"))
        }
        Node::Dropout(_) => {}
        Node::Op(OpNode { op }) => match op {
            Op::Act(a) => attach_act(steps, *a)?,
            Op::GlobalAvg | Op::GlobalMax => {
                push(
                    steps,
                    Step::GlobalPool {
                        max: *op == Op::GlobalMax,
                    },
                );
                *image = false;
            }
            Op::Flatten if *image => {
                push(steps, Step::Flatten);
                *image = false;
            }
            Op::Flatten => {}
        },
        Node::Residual(r) => {
            // Both branches start from the block's input; they were shape-checked to agree.
            let mut short_image = *image;
            let body = freeze_nodes(&r.body, image, "body.")?;
            let shortcut = freeze_nodes(&r.shortcut, &mut short_image, "shortcut.")?;
            let post = match r.act {
                None | Some(Act::Linear | Act::Softmax) => vec![],
                Some(a) => vec![PostOp::Act(a)],
            };
            steps.push(Block::Residual {
                body,
                shortcut,
                post,
            });
        }
    }
    Ok(())
}

/// The network on channels-last activations with oneDNN's convolution, batch-norm and pooling
/// kernels. Anything without a kernel here (or a shape oneDNN refuses) runs the channels-first
/// burn path for that node, so every architecture still works.
#[cfg(emolens_onednn)]
mod channels_last {
    use burn::nn::PaddingConfig2d;
    use burn::tensor::Tensor;

    use super::{act, pads, step, Node, Op, OpNode, X};
    use crate::arch::Act;
    use crate::onednn::ops::{self, ConvSpec, PoolSpec};

    fn nchw(t: Tensor<4>) -> Tensor<4> {
        t.permute([0, 3, 1, 2])
    }

    fn nhwc(t: Tensor<4>) -> Tensor<4> {
        t.permute([0, 2, 3, 1])
    }

    fn conv(c: &burn::nn::conv::Conv2d, x: Tensor<4>) -> Option<Tensor<4>> {
        if c.dilation != [1, 1] {
            return None;
        }
        let (pad_l, pad_r) = pads(&c.padding)?;
        let spec = ConvSpec {
            stride: c.stride,
            pad_l,
            pad_r,
            groups: c.groups,
        };
        ops::conv2d(x, c.weight.val(), c.bias.as_ref().map(|b| b.val()), spec)
    }

    /// splitmix64: a counter-based hash, so mask element `i` depends only on the seed and `i`
    /// (the same mask on any number of threads).
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Dropout as burn's (`x * mask / keep` in training, identity otherwise), with the mask
    /// drawn on all cores: burn draws it on one thread, about 4 % of a model_2_best training
    /// step. The mask's seed comes from burn's device RNG, so runs stay reproducible from
    /// `--seed` and resume exactly.
    pub(super) fn dropout<const D: usize>(d: &burn::nn::Dropout, x: Tensor<D>) -> Tensor<D> {
        use burn::tensor::{Distribution, TensorData};
        use rayon::prelude::*;
        if !d.training.is_enabled() || !x.device().is_autodiff() || d.prob == 0.0 {
            return x;
        }
        let device = x.device();
        let draw = Tensor::<1>::random([2], Distribution::Uniform(0.0, 1.0), &device)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>();
        let Ok(draw) = draw else {
            return d.forward(x);
        };
        let seed = (u64::from(draw[0].to_bits()) << 32) | u64::from(draw[1].to_bits());
        let keep = 1.0 - d.prob;
        let scale = (1.0 / keep) as f32;
        // Keep when a uniform 24-bit draw falls under `keep`.
        let threshold = (keep * f64::from(1u32 << 24)) as u64;
        let shape = x.shape();
        let mut mask = vec![0f32; shape.num_elements()];
        mask.par_chunks_mut(1 << 16)
            .enumerate()
            .for_each(|(c, chunk)| {
                let base = (c as u64) << 16;
                for (j, m) in chunk.iter_mut().enumerate() {
                    let r = mix(seed ^ mix(base + j as u64)) >> 40;
                    *m = if r < threshold { scale } else { 0.0 };
                }
            });
        x * Tensor::<D>::from_data(TensorData::new(mask, shape), &device)
    }

    /// Back to channels-first for one node, then channels-last again if it is still an image.
    fn fallback(node: &Node, t: Tensor<4>) -> X {
        match step(node, X::Image(nchw(t))) {
            X::Image(y) => X::Nhwc(nhwc(y)),
            other => other,
        }
    }

    fn batch_norm(bn: &burn::nn::BatchNorm, x: Tensor<4>, relu: bool) -> Option<Tensor<4>> {
        // Batch statistics exactly when burn's BatchNorm would use them.
        let training = x.device().is_autodiff() && bn.training.is_enabled();
        let gamma = bn.gamma.val();
        let tracked = ops::is_tracked(&x) || ops::is_tracked(&gamma);
        match (training, tracked) {
            (true, _) => {
                let (y, mean, var) =
                    ops::batch_norm_train(x, gamma, bn.beta.val(), bn.epsilon, relu)?;
                // Running statistics exactly as burn's BatchNorm keeps them.
                let device = y.device();
                let m = bn.momentum;
                let running_mean = bn
                    .running_mean
                    .value_sync()
                    .to_device(&device)
                    .mul_scalar(1.0 - m)
                    .add(mean.mul_scalar(m));
                let running_var = bn
                    .running_var
                    .value_sync()
                    .to_device(&device)
                    .mul_scalar(1.0 - m)
                    .add(var.mul_scalar(m));
                bn.running_mean.update(running_mean.detach());
                bn.running_var.update(running_var.detach());
                Some(y)
            }
            (false, false) => ops::batch_norm_infer(
                x,
                gamma,
                bn.beta.val(),
                bn.running_mean.value(),
                bn.running_var.value(),
                bn.epsilon,
                relu,
            ),
            // Running statistics with gradients (a frozen layer on the training device): burn's path.
            (false, true) => None,
        }
    }

    fn pool(
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: &PaddingConfig2d,
        max: bool,
        x: Tensor<4>,
    ) -> Option<Tensor<4>> {
        let (pad_l, pad_r) = pads(padding)?;
        ops::pool2d(
            x,
            PoolSpec {
                kernel,
                stride,
                pad_l,
                pad_r,
                max,
            },
        )
    }

    pub(super) fn run(nodes: &[Node], mut x: X) -> X {
        let mut i = 0;
        while i < nodes.len() {
            let node = &nodes[i];
            let relu_next = matches!(
                nodes.get(i + 1),
                Some(Node::Op(OpNode {
                    op: Op::Act(Act::Relu)
                }))
            );
            x = match (node, x) {
                (Node::Conv(c), X::Nhwc(t)) => {
                    let y = conv(&c.conv, t.clone()).and_then(|y| match &c.pointwise {
                        None => Some(y),
                        Some(p) => conv(p, y),
                    });
                    match y {
                        Some(y) => X::Nhwc(act(c.act, y)),
                        None => fallback(node, t),
                    }
                }
                (Node::Norm(bn), X::Nhwc(t)) => {
                    match batch_norm(bn, t.clone(), relu_next) {
                        Some(y) => {
                            if relu_next {
                                i += 1; // the ReLU ran inside the batch norm
                            }
                            X::Nhwc(y)
                        }
                        None => fallback(node, t),
                    }
                }
                (Node::MaxPool(p), X::Nhwc(t)) if p.dilation == [1, 1] && !p.ceil_mode => {
                    match pool(p.kernel_size, p.stride, &p.padding, true, t.clone()) {
                        Some(y) => X::Nhwc(y),
                        None => fallback(node, t),
                    }
                }
                (Node::AvgPool(p), X::Nhwc(t)) if !p.count_include_pad && !p.ceil_mode => {
                    match pool(p.kernel_size, p.stride, &p.padding, false, t.clone()) {
                        Some(y) => X::Nhwc(y),
                        None => fallback(node, t),
                    }
                }
                (Node::Dense(d), X::Vector(t)) => {
                    let l = &d.linear;
                    match ops::dense(t.clone(), l.weight.val(), l.bias.as_ref().map(|b| b.val())) {
                        Some(y) => X::Vector(act(d.act, y)),
                        None => step(node, X::Vector(t)),
                    }
                }
                (Node::Dropout(d), X::Nhwc(t)) => X::Nhwc(dropout(d, t)),
                (Node::Dropout(d), X::Vector(t)) => X::Vector(dropout(d, t)),
                (Node::Op(op), X::Nhwc(t)) => match op.op {
                    Op::Act(a) => X::Nhwc(act(Some(a), t)),
                    Op::GlobalAvg => {
                        let [n, _, _, c] = t.dims();
                        X::Vector(t.mean_dim(2).mean_dim(1).reshape([n, c]))
                    }
                    Op::GlobalMax => {
                        let [n, _, _, c] = t.dims();
                        X::Vector(t.max_dim(2).max_dim(1).reshape([n, c]))
                    }
                    // Channels-first order, so dense weights mean the same on both paths.
                    Op::Flatten => X::Vector(nchw(t).flatten(1, 3)),
                },
                (Node::Residual(r), X::Nhwc(t)) => {
                    let body = run(&r.body, X::Nhwc(t.clone()));
                    let short = run(&r.shortcut, X::Nhwc(t));
                    match (body, short) {
                        (X::Nhwc(a), X::Nhwc(b)) => X::Nhwc(act(r.act, a + b)),
                        (X::Vector(a), X::Vector(b)) => X::Vector(act(r.act, a + b)),
                        (X::Nhwc(a), X::Image(b)) => X::Nhwc(act(r.act, a + nhwc(b))),
                        (X::Image(a), X::Nhwc(b)) => X::Nhwc(act(r.act, nhwc(a) + b)),
                        (X::Image(a), X::Image(b)) => X::Nhwc(act(r.act, nhwc(a + b))),
                        _ => unreachable!("residual branches were shape-checked at build time"),
                    }
                }
                (node, X::Nhwc(t)) => fallback(node, t),
                (node, x) => step(node, x),
            };
            i += 1;
        }
        x
    }
}

#[cfg(all(test, emolens_onednn))]
mod tests {
    use burn::nn::DropoutConfig;
    use burn::tensor::{Device, Tensor};

    #[test]
    fn dropout_keeps_the_expected_share_scaled_and_is_seeded() {
        let d = DropoutConfig::new(0.3).init();
        let device = Device::flex().autodiff();
        let run = |seed| {
            device.seed(seed);
            let x = Tensor::<4>::ones([4, 32, 32, 16], &device);
            super::channels_last::dropout(&d, x)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let a = run(5);
        let zeros = a.iter().filter(|v| **v == 0.0).count() as f64 / a.len() as f64;
        assert!((zeros - 0.3).abs() < 0.01, "dropped share {zeros}");
        assert!(a.iter().all(|v| *v == 0.0 || (*v - 1.0 / 0.7).abs() < 1e-6));
        assert_eq!(a, run(5), "same seed, same mask");
        assert_ne!(a, run(6));
        // Outside training the layer is the identity.
        let plain = Tensor::<4>::ones([1, 2, 2, 3], &Device::flex());
        let y = super::channels_last::dropout(&d, plain)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(y.iter().all(|v| *v == 1.0));
    }
}
