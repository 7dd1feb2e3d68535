//! burn operations on channels-last (`[N, H, W, C]`) activations backed by the oneDNN kernels,
//! for the Flex backend (inference) and `Autodiff<Flex>` (training, with hand-written backward
//! passes). Callers check [`applies`] first; tensors on any other backend never get here.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Bytes, DType, Shape, Tensor};

use super::kernels::{self, BnSaved, ConvGeom, DenseGeom, PoolGeom};

type Ad = Autodiff<Flex, NoCheckpointing>;
type AdTensor = FloatTensor<Ad>;

/// Whether `x` lives on the backend the oneDNN kernels serve (Flex, with or without autodiff)
/// as `f32`. Each operation then records itself for autodiff when any of its inputs is tracked,
/// as burn's own operations do.
pub fn applies<const D: usize>(x: &Tensor<D>) -> bool {
    kernels::ready()
        && x.dtype() == DType::F32
        && (is_tracked(x) || x.clone().try_into_primitive::<Flex>().is_ok())
}

/// Whether `t` carries an autodiff context (a parameter or an activation on the training
/// device): an operation with such an input must record its backward pass.
pub fn is_tracked<const D: usize>(t: &Tensor<D>) -> bool {
    t.clone().try_into_primitive::<Ad>().is_ok()
}

fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

fn data(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("made contiguous first")
}

fn flex(shape: &[usize], values: Vec<f32>) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(Shape::from(shape.to_vec())),
        DType::F32,
    )
}

/// The Flex primitive of `t`; a parameter can carry an autodiff context even on a plain
/// device, and its gradients are not wanted here.
fn plain<const D: usize>(t: Tensor<D>) -> FlexTensor {
    let p = match t.clone().try_into_primitive::<Flex>() {
        Ok(p) => p,
        Err(_) => t
            .try_into_primitive::<Ad>()
            .expect("checked by `applies`")
            .into_primitive(),
    };
    contiguous(p)
}

/// The autodiff primitive of `t`; a tensor without an autodiff context is a constant.
fn tracked<const D: usize>(t: Tensor<D>) -> AdTensor {
    match t.clone().try_into_primitive::<Ad>() {
        Ok(p) => p,
        Err(_) => AdTensor::new(
            t.try_into_primitive::<Flex>()
                .expect("checked by `applies`"),
        ),
    }
}

fn shape_of(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().to_vec()
}

// --------------------------------------------------------------------------------------------
// Layers with weights: convolution and dense share the forward and backward plumbing.

#[derive(Debug)]
struct LayerBackward;

#[derive(Debug)]
struct LayerBiasBackward;

/// Input, weights and primitive a layer's backward pass needs.
type LayerState = (FlexTensor, FlexTensor, Arc<kernels::Layer>);

fn layer_grads(
    state: LayerState,
    node_x: Option<burn::backend::autodiff::NodeId>,
    node_w: Option<burn::backend::autodiff::NodeId>,
    node_b: Option<burn::backend::autodiff::NodeId>,
    grad: FlexTensor,
    grads: &mut Gradients,
) {
    let (x, w, k) = state;
    let g = contiguous(grad);
    if let Some(id) = node_x {
        let dx = k.backward_data(data(&g), data(&w));
        grads.register::<Flex>(id, flex(&shape_of(&x), dx));
    }
    if node_w.is_some() || node_b.is_some() {
        let (dw, db) = k.backward_weights(data(&x), data(&g));
        if let Some(id) = node_w {
            grads.register::<Flex>(id, flex(&shape_of(&w), dw));
        }
        if let (Some(id), Some(db)) = (node_b, db) {
            grads.register::<Flex>(id, flex(&[k.oc], db));
        }
    }
}

impl Backward<Flex, 2> for LayerBackward {
    type State = LayerState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, nw] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        layer_grads(
            ops.state,
            nx.map(|n| n.id),
            nw.map(|n| n.id),
            None,
            grad,
            grads,
        );
    }
}

impl Backward<Flex, 3> for LayerBiasBackward {
    type State = LayerState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, nw, nb] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        layer_grads(
            ops.state,
            nx.map(|n| n.id),
            nw.map(|n| n.id),
            nb.map(|n| n.id),
            grad,
            grads,
        );
    }
}

fn any_tracked<const D: usize, const W: usize>(
    x: &Tensor<D>,
    w: &Tensor<W>,
    b: &Option<Tensor<1>>,
) -> bool {
    is_tracked(x) || is_tracked(w) || b.as_ref().is_some_and(is_tracked)
}

/// Runs `k` on `x`, `w` and `b` into a tensor of `out_shape`, recording the backward pass when
/// `training` (any input tracked).
fn run_layer<const D: usize, const W: usize>(
    k: Arc<kernels::Layer>,
    x: Tensor<D>,
    w: Tensor<W>,
    b: Option<Tensor<1>>,
    out_shape: [usize; D],
    training: bool,
) -> Tensor<D> {
    if !training {
        let (xp, wp) = (plain(x), plain(w));
        let bp = b.map(plain);
        let y = k.forward(data(&xp), data(&wp), bp.as_ref().map(data));
        return Tensor::from_primitive::<Flex>(flex(&out_shape, y));
    }
    let (xa, wa) = (tracked(x), tracked(w));
    let xp = contiguous(xa.primitive().clone());
    let wp = contiguous(wa.primitive().clone());
    let result = match b {
        None => {
            let y = flex(&out_shape, k.forward(data(&xp), data(&wp), None));
            match LayerBackward
                .prepare::<NoCheckpointing>([xa.node(), wa.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish((xp, wp, k), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            }
        }
        Some(b) => {
            let ba = tracked(b);
            let bp = contiguous(ba.primitive().clone());
            let y = flex(&out_shape, k.forward(data(&xp), data(&wp), Some(data(&bp))));
            match LayerBiasBackward
                .prepare::<NoCheckpointing>([xa.node(), wa.node(), ba.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish((xp, wp, k), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            }
        }
    };
    Tensor::from_primitive::<Ad>(result)
}

/// Output length of a window sliding with `stride` over `input` padded by `pad` on both ends.
fn window_out(input: usize, kernel: usize, stride: usize, pad: (usize, usize)) -> usize {
    (input + pad.0 + pad.1 - kernel) / stride + 1
}

/// Convolution geometry apart from the input's own sizes.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub stride: [usize; 2],
    pub pad_l: [usize; 2],
    pub pad_r: [usize; 2],
    pub groups: usize,
}

/// `x` `[N, H, W, Ci]`, `w` `[Co, Ci/groups, KH, KW]` (burn's layout) -> `[N, OH, OW, Co]`.
/// `None` when oneDNN has no kernel for this shape (the caller falls back).
pub fn conv2d(
    x: Tensor<4>,
    w: Tensor<4>,
    b: Option<Tensor<1>>,
    spec: ConvSpec,
) -> Option<Tensor<4>> {
    let [n, ih, iw, ic] = x.dims();
    let [oc, _, kh, kw] = w.dims();
    let geom = ConvGeom {
        n,
        ic,
        ih,
        iw,
        oc,
        oh: window_out(ih, kh, spec.stride[0], (spec.pad_l[0], spec.pad_r[0])),
        ow: window_out(iw, kw, spec.stride[1], (spec.pad_l[1], spec.pad_r[1])),
        kh,
        kw,
        groups: spec.groups,
        stride: spec.stride,
        pad_l: spec.pad_l,
        pad_r: spec.pad_r,
        bias: b.is_some(),
    };
    let training = any_tracked(&x, &w, &b);
    let k = kernels::conv(geom, training).ok()?;
    Some(run_layer(k, x, w, b, [n, geom.oh, geom.ow, oc], training))
}

/// `x` `[N, in]`, `w` `[in, out]` (burn's Linear layout), `b` `[out]` -> `[N, out]`.
pub fn dense(x: Tensor<2>, w: Tensor<2>, b: Option<Tensor<1>>) -> Option<Tensor<2>> {
    let [n, ic] = x.dims();
    let [_, oc] = w.dims();
    let geom = DenseGeom {
        n,
        ic,
        oc,
        bias: b.is_some(),
    };
    let training = any_tracked(&x, &w, &b);
    let k = kernels::dense(geom, training).ok()?;
    Some(run_layer(k, x, w, b, [n, oc], training))
}

// --------------------------------------------------------------------------------------------
// Batch normalisation

#[derive(Debug)]
struct BnBackward;

type BnState = (
    FlexTensor,
    FlexTensor,
    FlexTensor,
    Arc<BnSaved>,
    Arc<kernels::BatchNorm>,
);

impl Backward<Flex, 3> for BnBackward {
    type State = BnState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, ng, nb] = ops.parents;
        let g = contiguous(grads.consume::<Flex>(&ops.node));
        let (x, gamma, beta, saved, k) = ops.state;
        let (dx, dg, db) = k.backward(data(&x), &saved, data(&g), data(&gamma), data(&beta));
        if let Some(n) = nx {
            grads.register::<Flex>(n.id, flex(&shape_of(&x), dx));
        }
        if let Some(n) = ng {
            grads.register::<Flex>(n.id, flex(&[k.channels], dg));
        }
        if let Some(n) = nb {
            grads.register::<Flex>(n.id, flex(&[k.channels], db));
        }
    }
}

/// Batch norm with the batch's statistics over `[N, H, W, C]` (ReLU fused when `relu`).
/// Returns the output and the batch mean and biased variance, untracked, for the running
/// statistics, untracked. Records the backward pass when any input is tracked.
pub fn batch_norm_train(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> Option<(Tensor<4>, Tensor<1>, Tensor<1>)> {
    let dims = x.dims();
    let k = kernels::batch_norm(dims, epsilon as f32, relu, true).ok()?;
    let (xa, ga, ba) = (tracked(x), tracked(gamma), tracked(beta));
    let xp = contiguous(xa.primitive().clone());
    let gp = contiguous(ga.primitive().clone());
    let bp = contiguous(ba.primitive().clone());
    let (y, saved) = k.forward_training(data(&xp), data(&gp), data(&bp));
    let c = k.channels;
    let mean = Tensor::from_primitive::<Ad>(AdTensor::new(flex(&[c], saved.mean.clone())));
    let var = Tensor::from_primitive::<Ad>(AdTensor::new(flex(&[c], saved.var.clone())));
    let y = flex(&dims, y);
    let out = match BnBackward
        .prepare::<NoCheckpointing>([xa.node(), ga.node(), ba.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((xp, gp, bp, Arc::new(saved), k), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some((Tensor::from_primitive::<Ad>(out), mean, var))
}

/// Batch norm with given (running) statistics, without gradients.
pub fn batch_norm_infer(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    mean: Tensor<1>,
    var: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> Option<Tensor<4>> {
    let dims = x.dims();
    let k = kernels::batch_norm(dims, epsilon as f32, relu, false).ok()?;
    let (xp, gp, bp, mp, vp) = (plain(x), plain(gamma), plain(beta), plain(mean), plain(var));
    let y = k.forward_inference(data(&xp), data(&gp), data(&bp), data(&mp), data(&vp));
    Some(Tensor::from_primitive::<Flex>(flex(&dims, y)))
}

// --------------------------------------------------------------------------------------------
// Pooling

#[derive(Debug)]
struct PoolBackward;

impl Backward<Flex, 1> for PoolBackward {
    type State = (Arc<kernels::Pool>, Arc<Vec<u8>>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx] = ops.parents;
        let g = contiguous(grads.consume::<Flex>(&ops.node));
        let (k, ws) = ops.state;
        if let Some(n) = nx {
            let dx = k.backward(data(&g), &ws);
            let geo = k.geom;
            grads.register::<Flex>(n.id, flex(&[geo.n, geo.ih, geo.iw, geo.c], dx));
        }
    }
}

/// Pooling geometry apart from the input's own sizes.
#[derive(Debug, Clone, Copy)]
pub struct PoolSpec {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad_l: [usize; 2],
    pub pad_r: [usize; 2],
    pub max: bool,
}

/// Max or average (padding excluded) pooling over `[N, H, W, C]`.
pub fn pool2d(x: Tensor<4>, spec: PoolSpec) -> Option<Tensor<4>> {
    let [n, ih, iw, c] = x.dims();
    let geom = PoolGeom {
        n,
        c,
        ih,
        iw,
        oh: window_out(
            ih,
            spec.kernel[0],
            spec.stride[0],
            (spec.pad_l[0], spec.pad_r[0]),
        ),
        ow: window_out(
            iw,
            spec.kernel[1],
            spec.stride[1],
            (spec.pad_l[1], spec.pad_r[1]),
        ),
        kernel: spec.kernel,
        stride: spec.stride,
        pad_l: spec.pad_l,
        pad_r: spec.pad_r,
        max: spec.max,
    };
    let training = is_tracked(&x);
    let k = kernels::pool(geom, training).ok()?;
    let out_shape = [n, geom.oh, geom.ow, c];
    Some(match training {
        false => {
            let xp = plain(x);
            let (y, _) = k.forward(data(&xp), false);
            Tensor::from_primitive::<Flex>(flex(&out_shape, y))
        }
        true => {
            let xa = tracked(x);
            let xp = contiguous(xa.primitive().clone());
            let (y, ws) = k.forward(data(&xp), true);
            let y = flex(&out_shape, y);
            let r = match PoolBackward
                .prepare::<NoCheckpointing>([xa.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish((k, Arc::new(ws)), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            Tensor::from_primitive::<Ad>(r)
        }
    })
}
