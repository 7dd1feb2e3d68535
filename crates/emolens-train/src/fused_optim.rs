//! Fused, in-place optimiser steps.
//!
//! burn's optimisers update a parameter as a chain of element-wise tensor operations, each one
//! a pass over memory and most of them allocating a fresh tensor; over a model's ~15 M
//! parameters that is a fifth of a training step. The optimisers here compute burn's update
//! with the same formulas in the same operation order (so the same `f32` results), in one pass
//! over the parameter, its gradient and its state, writing in place into buffers nobody else
//! holds. They keep burn's state record layout, so `ModuleOptimizer::into_bytes`/`from_bytes`
//! files (the trainer's `optimizer.bin`) are interchangeable with burn's in both directions.
//!
//! Only Flex `f32` contiguous tensors of matching sizes take the fused path; anything else
//! (another backend or dtype, a strided view) goes to burn's own optimiser, so behaviour never
//! changes. Wrap one in a `ModuleOptimizer` with `ModuleOptimizer::from`.

use emolens_model::burn;

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::Flex;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    join_path, Adam, AdamConfig, AdamState, AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState,
    CenteredState, LearningRate, Optimizer, RecordState, RmsProp, RmsPropConfig, Sgd, SgdConfig,
    SquareAvgState, StateSink, StateSource,
};
use burn::tensor::{Bytes, DType, Device, Tensor};
use rayon::prelude::*;

/// Elements per rayon task: 64 KiB of each buffer, enough to amortise the task.
const CHUNK: usize = 1 << 14;
/// Tensors smaller than this are updated on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;

// ---------------------------------------------------------------------------------------------
// Flex buffers.

/// Whether `t` can take the fused path: a Flex `f32` tensor stored contiguously.
fn fusable<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == DType::F32
        && t.clone()
            .try_into_primitive::<Flex>()
            .is_ok_and(|p| p.as_slice::<f32>().is_some())
}

/// The Flex primitive of a tensor [`fusable`] accepted.
fn into_flex<const D: usize>(t: Tensor<D>) -> FlexTensor {
    t.try_into_primitive::<Flex>()
        .expect("checked by `fusable`")
}

fn from_flex<const D: usize>(t: FlexTensor) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(t)
}

fn len(t: &FlexTensor) -> usize {
    t.layout().num_elements()
}

fn read(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("checked by `fusable`")
}

/// The elements of `t` to write, in place when `t` is the only holder of its buffer; a shared
/// buffer (someone else still holds the tensor) is first copied so that holder sees no change.
fn write(t: &mut FlexTensor) -> &mut [f32] {
    if t.try_storage_mut::<f32>().is_none() {
        *t = FlexTensor::new(
            Bytes::from_elems(read(t).to_vec()),
            Layout::contiguous(t.layout().shape().clone()),
            DType::F32,
        );
    }
    let (start, end) = t
        .layout()
        .contiguous_offsets()
        .expect("checked by `fusable`");
    &mut t.try_storage_mut::<f32>().expect("owned after the copy")[start..end]
}

/// A new state buffer shaped like `like`. Zeroed memory comes from the allocator's zero pages,
/// so this costs no pass of its own.
fn new_buffer(like: &FlexTensor) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(vec![0f32; len(like)]),
        Layout::contiguous(like.layout().shape().clone()),
        DType::F32,
    )
}

fn sequential() -> bool {
    rayon::current_num_threads() == 1
}

/// Runs `f` over matching chunks of a parameter and its gradient, on rayon's pool when large.
fn zip2(p: &mut [f32], g: &[f32], f: impl Fn(&mut [f32], &[f32]) + Sync) {
    if p.len() < PARALLEL_MIN || sequential() {
        return f(p, g);
    }
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .for_each(|(p, g)| f(p, g));
}

/// [`zip2`] with one state buffer.
fn zip3(
    p: &mut [f32],
    g: &[f32],
    a: &mut [f32],
    f: impl Fn(&mut [f32], &[f32], &mut [f32]) + Sync,
) {
    if p.len() < PARALLEL_MIN || sequential() {
        return f(p, g, a);
    }
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(a.par_chunks_mut(CHUNK))
        .for_each(|((p, g), a)| f(p, g, a));
}

/// [`zip2`] with two state buffers.
fn zip4(
    p: &mut [f32],
    g: &[f32],
    a: &mut [f32],
    b: &mut [f32],
    f: impl Fn(&mut [f32], &[f32], &mut [f32], &mut [f32]) + Sync,
) {
    if p.len() < PARALLEL_MIN || sequential() {
        return f(p, g, a, b);
    }
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(a.par_chunks_mut(CHUNK))
        .zip(b.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), a), b)| f(p, g, a, b));
}

/// Moves a state between two types with the same record layout (burn's state and our mirror
/// of it), through the same flatten/unflatten a save and load would do.
fn convert<A: RecordState, B: RecordState>(state: &A, device: &Device) -> B {
    let mut sink = StateSink::default();
    state.state_flatten("s", &mut sink);
    let mut source = StateSource::new(sink.scalars.into_iter().collect());
    for (name, data) in sink.tensors {
        source.insert_tensor(name, data);
    }
    B::state_unflatten("s", &mut source, device).expect("the two state types share a layout")
}

/// The learning rate as burn's Flex kernels apply a scalar to `f32` data.
fn lr32(lr: LearningRate) -> f32 {
    lr as f32
}

// ---------------------------------------------------------------------------------------------
// SGD.

/// SGD with optional momentum (dampening, Nesterov) and L2 weight decay: burn's [`Sgd`] fused.
#[derive(Clone)]
pub struct FusedSgd {
    momentum: Option<SgdMomentum>,
    penalty: Option<f32>,
    burn: Sgd,
}

#[derive(Clone, Copy)]
struct SgdMomentum {
    momentum: f32,
    /// `1 - dampening`, as burn's kernel applies it.
    keep: f32,
    nesterov: bool,
}

impl FusedSgd {
    /// The optimiser burn's `SgdConfig::new().with_momentum(momentum).with_weight_decay(..)`
    /// builds.
    pub fn new(momentum: Option<MomentumConfig>, weight_decay: Option<WeightDecayConfig>) -> Self {
        let burn = SgdConfig::new()
            .with_momentum(momentum.clone())
            .with_weight_decay(weight_decay.clone())
            .build();
        FusedSgd {
            momentum: momentum.map(|m| SgdMomentum {
                momentum: m.momentum as f32,
                keep: (1.0 - m.dampening) as f32,
                nesterov: m.nesterov,
            }),
            penalty: weight_decay.map(|w| w.penalty),
            burn,
        }
    }
}

/// State of [`FusedSgd`]: burn's `SgdState` with the same record layout. burn's own
/// `MomentumState` keeps its velocity private, so an in-place update cannot reach it.
#[derive(Clone)]
pub struct FusedSgdState<const D: usize> {
    /// The momentum's velocity (record name `momentum.velocity`), once a step has run with
    /// momentum.
    pub momentum: Option<Tensor<D>>,
}

impl<const D: usize> RecordState for FusedSgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(velocity) = &self.momentum {
            let path = join_path(prefix, "momentum");
            out.push_tensor(&path, "velocity", velocity.clone().into_data());
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let path = join_path(prefix, "momentum");
        let momentum = if src.has_under(&path) {
            src.take_tensor(&path, "velocity")
                .map(|data| Tensor::from_data(data, device))
        } else {
            None
        };
        Some(FusedSgdState { momentum })
    }
}

#[derive(Clone, Copy)]
struct SgdStep {
    lr: f32,
    penalty: f32,
    momentum: f32,
    keep: f32,
}

/// `p -= lr * (g + wd * p)`.
fn sgd_plain<const WD: bool>(k: &SgdStep, p: &mut [f32], g: &[f32]) {
    let g = &g[..p.len()];
    for (p, &g) in p.iter_mut().zip(g) {
        let g = if WD { *p * k.penalty + g } else { g };
        *p -= g * k.lr;
    }
}

/// burn's `Momentum::transform`: the velocity starts as the gradient, then
/// `v = g * (1 - dampening) + v * momentum`; Nesterov steps along `v * momentum + g`.
fn sgd_momentum<const WD: bool, const FIRST: bool, const NESTEROV: bool>(
    k: &SgdStep,
    p: &mut [f32],
    g: &[f32],
    v: &mut [f32],
) {
    let n = p.len();
    let (g, v) = (&g[..n], &mut v[..n]);
    for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
        let g = if WD { *p * k.penalty + g } else { g };
        let vel = if FIRST {
            g
        } else {
            g * k.keep + *v * k.momentum
        };
        *v = vel;
        let step = if NESTEROV { vel * k.momentum + g } else { vel };
        *p -= step * k.lr;
    }
}

impl Optimizer for FusedSgd {
    type State<const D: usize> = FusedSgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let velocity = state.and_then(|s| s.momentum);
        let fused = fusable(&tensor)
            && fusable(&grad)
            && velocity.as_ref().is_none_or(fusable)
            && tensor.shape() == grad.shape()
            && velocity
                .as_ref()
                .is_none_or(|v| v.shape() == tensor.shape());
        if !fused {
            let device = tensor.device();
            let state = FusedSgdState { momentum: velocity };
            let state = convert(&state, &device);
            let (tensor, state) = self.burn.step(lr, tensor, grad, Some(state));
            return (tensor, state.map(|s| convert(&s, &device)));
        }

        let mut p = into_flex(tensor);
        let g = into_flex(grad);
        let k = SgdStep {
            lr: lr32(lr),
            penalty: self.penalty.unwrap_or(0.0),
            momentum: self.momentum.map_or(0.0, |m| m.momentum),
            keep: self.momentum.map_or(1.0, |m| m.keep),
        };
        let wd = self.penalty.is_some();
        let Some(m) = self.momentum else {
            let kernel = if wd {
                sgd_plain::<true>
            } else {
                sgd_plain::<false>
            };
            zip2(write(&mut p), read(&g), |p, g| kernel(&k, p, g));
            return (from_flex(p), Some(FusedSgdState { momentum: None }));
        };
        let first = velocity.is_none();
        let mut v = velocity.map_or_else(|| new_buffer(&p), into_flex);
        type Kernel = fn(&SgdStep, &mut [f32], &[f32], &mut [f32]);
        let kernel: Kernel = match (wd, first, m.nesterov) {
            (false, false, false) => sgd_momentum::<false, false, false>,
            (false, false, true) => sgd_momentum::<false, false, true>,
            (false, true, false) => sgd_momentum::<false, true, false>,
            (false, true, true) => sgd_momentum::<false, true, true>,
            (true, false, false) => sgd_momentum::<true, false, false>,
            (true, false, true) => sgd_momentum::<true, false, true>,
            (true, true, false) => sgd_momentum::<true, true, false>,
            (true, true, true) => sgd_momentum::<true, true, true>,
        };
        zip3(write(&mut p), read(&g), write(&mut v), |p, g, v| {
            kernel(&k, p, g, v)
        });
        let state = FusedSgdState {
            momentum: Some(from_flex(v)),
        };
        (from_flex(p), Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        FusedSgdState {
            momentum: state.momentum.map(|v| v.to_device(device)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Adam and AdamW.

#[derive(Clone, Copy)]
struct AdamStep {
    lr: f32,
    beta_1: f32,
    beta_2: f32,
    /// `1 - beta_1`, `1 - beta_2`.
    factor_1: f32,
    factor_2: f32,
    /// Adam: the bias corrections folded as burn folds them.
    combined: f32,
    epsilon_scaled: f32,
    penalty: f32,
    /// AdamW: the bias corrections, epsilon and the decay factor.
    correction_1: f32,
    correction_2: f32,
    epsilon: f32,
    keep: f32,
}

impl AdamStep {
    fn new(lr: LearningRate, beta_1: f32, beta_2: f32, epsilon: f32, time: usize) -> Self {
        // As burn's `AdaptiveMomentum::transform` computes them, in f32.
        let time = time as i32;
        let correction_1 = 1.0 - beta_1.powi(time);
        let correction_2 = 1.0 - beta_2.powi(time);
        let bias_correction2_sqrt = correction_2.sqrt();
        AdamStep {
            lr: lr32(lr),
            beta_1,
            beta_2,
            factor_1: 1.0 - beta_1,
            factor_2: 1.0 - beta_2,
            combined: bias_correction2_sqrt / correction_1,
            epsilon_scaled: epsilon * bias_correction2_sqrt,
            penalty: 0.0,
            correction_1,
            correction_2,
            epsilon,
            keep: 1.0,
        }
    }

    /// The moments after this step's gradient; burn starts them from the first gradient.
    #[inline(always)]
    fn moments<const FIRST: bool>(&self, g: f32, m: &mut f32, v: &mut f32) -> (f32, f32) {
        let (m1, m2) = if FIRST {
            (g * self.factor_1, g * g * self.factor_2)
        } else {
            (
                *m * self.beta_1 + g * self.factor_1,
                *v * self.beta_2 + g * g * self.factor_2,
            )
        };
        *m = m1;
        *v = m2;
        (m1, m2)
    }
}

/// burn's Adam: `p -= lr * m * combined / (sqrt(v) + eps * sqrt(1 - beta_2^t))`, with L2 weight
/// decay added to the gradient first.
fn adam_kernel<const FIRST: bool, const WD: bool>(
    k: &AdamStep,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if WD { *p * k.penalty + g } else { g };
        let (m, v) = k.moments::<FIRST>(g, m, v);
        let update = m * k.combined / (v.sqrt() + k.epsilon_scaled);
        *p -= update * k.lr;
    }
}

/// burn's AdamW: `p = p * (1 - lr * wd) - lr * (m / c1) / (sqrt(v / c2) + eps)`.
fn adamw_kernel<const FIRST: bool, const DECAY: bool>(
    k: &AdamStep,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let (m, v) = k.moments::<FIRST>(g, m, v);
        let update = (m / k.correction_1) / ((v / k.correction_2).sqrt() + k.epsilon);
        let decayed = if DECAY { *p * k.keep } else { *p };
        *p = decayed - update * k.lr;
    }
}

/// Whether an Adam/AdamW step can run fused: every tensor fusable and of the parameter's shape,
/// and no AMSGrad maximum (which only burn's own optimiser keeps).
fn adaptive_fusable<const D: usize>(
    state: &Option<AdaptiveMomentumState<D>>,
    tensor: &Tensor<D>,
    grad: &Tensor<D>,
) -> bool {
    let state_ok = match state {
        None => true,
        Some(s) => {
            s.max_moment_2.is_none()
                && fusable(&s.moment_1)
                && fusable(&s.moment_2)
                && s.moment_1.shape() == tensor.shape()
                && s.moment_2.shape() == tensor.shape()
        }
    };
    state_ok && fusable(tensor) && fusable(grad) && tensor.shape() == grad.shape()
}

/// Runs one in-place adaptive-momentum step; returns the parameter and the new moments.
fn adaptive_step<const D: usize>(
    tensor: Tensor<D>,
    grad: Tensor<D>,
    state: Option<AdaptiveMomentumState<D>>,
    step: impl FnOnce(
        usize,
    ) -> (
        AdamStep,
        fn(&AdamStep, &mut [f32], &[f32], &mut [f32], &mut [f32]),
    ),
) -> (Tensor<D>, AdaptiveMomentumState<D>) {
    let mut p = into_flex(tensor);
    let g = into_flex(grad);
    let (time, mut m, mut v) = match state {
        Some(s) => (s.time + 1, into_flex(s.moment_1), into_flex(s.moment_2)),
        None => (1, new_buffer(&p), new_buffer(&p)),
    };
    let (k, kernel) = step(time);
    zip4(
        write(&mut p),
        read(&g),
        write(&mut m),
        write(&mut v),
        |p, g, m, v| kernel(&k, p, g, m, v),
    );
    let state = AdaptiveMomentumState {
        time,
        moment_1: from_flex(m),
        moment_2: from_flex(v),
        max_moment_2: None,
    };
    (from_flex(p), state)
}

/// Adam with optional L2 weight decay (no AMSGrad): burn's [`Adam`] fused.
#[derive(Clone)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    penalty: Option<f32>,
    burn: Adam,
}

impl FusedAdam {
    /// The optimiser burn's `AdamConfig::new().with_beta_1(..).with_beta_2(..)
    /// .with_epsilon(..).with_weight_decay(..)` builds.
    pub fn new(
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        weight_decay: Option<WeightDecayConfig>,
    ) -> Self {
        let burn = AdamConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay.clone())
            .build();
        FusedAdam {
            beta_1,
            beta_2,
            epsilon,
            penalty: weight_decay.map(|w| w.penalty),
            burn,
        }
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let momentum = state.map(|s| s.momentum);
        if !adaptive_fusable(&momentum, &tensor, &grad) {
            let state = momentum.map(AdamState::new);
            return self.burn.step(lr, tensor, grad, state);
        }
        let (tensor, momentum) = adaptive_step(tensor, grad, momentum, |time| {
            let mut k = AdamStep::new(lr, self.beta_1, self.beta_2, self.epsilon, time);
            k.penalty = self.penalty.unwrap_or(0.0);
            let kernel = match (time == 1, self.penalty.is_some()) {
                (false, false) => adam_kernel::<false, false>,
                (false, true) => adam_kernel::<false, true>,
                (true, false) => adam_kernel::<true, false>,
                (true, true) => adam_kernel::<true, true>,
            };
            (k, kernel)
        });
        (tensor, Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

/// AdamW with decoupled weight decay (no AMSGrad, no cautious decay): burn's [`AdamW`] fused.
#[derive(Clone)]
pub struct FusedAdamW {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    burn: AdamW,
}

impl FusedAdamW {
    /// The optimiser burn's `AdamWConfig::new().with_beta_1(..).with_beta_2(..)
    /// .with_epsilon(..).with_weight_decay(..)` builds.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        let burn = AdamWConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay)
            .build();
        FusedAdamW {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            burn,
        }
    }
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let momentum = state.map(|s| s.momentum);
        if !adaptive_fusable(&momentum, &tensor, &grad) {
            let state = momentum.map(AdamWState::new);
            return self.burn.step(lr, tensor, grad, state);
        }
        // As burn: the decay rate in f64, applied as an f32 factor.
        let decay_rate = lr * self.weight_decay as f64;
        let (tensor, momentum) = adaptive_step(tensor, grad, momentum, |time| {
            let mut k = AdamStep::new(lr, self.beta_1, self.beta_2, self.epsilon, time);
            k.keep = (1.0 - decay_rate) as f32;
            let kernel = match (time == 1, decay_rate != 0.0) {
                (false, false) => adamw_kernel::<false, false>,
                (false, true) => adamw_kernel::<false, true>,
                (true, false) => adamw_kernel::<true, false>,
                (true, true) => adamw_kernel::<true, true>,
            };
            (k, kernel)
        });
        (tensor, Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

// ---------------------------------------------------------------------------------------------
// RMSprop.

/// RMSprop (not centred) with optional momentum and L2 weight decay: burn's [`RmsProp`] fused.
#[derive(Clone)]
pub struct FusedRmsProp {
    alpha: f32,
    momentum: f32,
    epsilon: f32,
    penalty: Option<f32>,
    burn: RmsProp,
}

impl FusedRmsProp {
    /// The optimiser burn's `RmsPropConfig::new().with_alpha(..).with_momentum(..)
    /// .with_epsilon(..).with_weight_decay(..)` builds (`centered` stays false).
    pub fn new(
        alpha: f32,
        momentum: f32,
        epsilon: f32,
        weight_decay: Option<WeightDecayConfig>,
    ) -> Self {
        let burn = RmsPropConfig::new()
            .with_alpha(alpha)
            .with_momentum(momentum)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay.clone())
            .build();
        FusedRmsProp {
            alpha,
            momentum,
            epsilon,
            penalty: weight_decay.map(|w| w.penalty),
            burn,
        }
    }
}

/// State of [`FusedRmsProp`]: burn's `RmsPropState` with the same record layout. burn's own
/// `RmsPropMomentumState` keeps its buffer private, so an in-place update cannot reach it.
#[derive(Clone)]
pub struct FusedRmsPropState<const D: usize> {
    /// Running average of the squared gradient.
    pub square_avg: SquareAvgState<D>,
    /// Not centred: the square average again, as burn records it.
    pub centered: CenteredState<D>,
    /// The momentum buffer (record name `momentum.buf`) when momentum is on.
    pub momentum: Option<Tensor<D>>,
}

impl<const D: usize> RecordState for FusedRmsPropState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        self.square_avg
            .state_flatten(&join_path(prefix, "square_avg"), out);
        self.centered
            .state_flatten(&join_path(prefix, "centered"), out);
        if let Some(buf) = &self.momentum {
            out.push_tensor(
                &join_path(prefix, "momentum"),
                "buf",
                buf.clone().into_data(),
            );
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let square_avg =
            SquareAvgState::state_unflatten(&join_path(prefix, "square_avg"), src, device)?;
        let centered = CenteredState::state_unflatten(&join_path(prefix, "centered"), src, device)?;
        let path = join_path(prefix, "momentum");
        let momentum = if src.has_under(&path) {
            src.take_tensor(&path, "buf")
                .map(|data| Tensor::from_data(data, device))
        } else {
            None
        };
        Some(FusedRmsPropState {
            square_avg,
            centered,
            momentum,
        })
    }
}

#[derive(Clone, Copy)]
struct RmsStep {
    lr: f32,
    alpha: f32,
    /// `1 - alpha`.
    factor: f32,
    epsilon: f32,
    momentum: f32,
    penalty: f32,
}

/// burn's RMSprop: `s = s * alpha + g^2 * (1 - alpha)`, `p -= lr * g / (sqrt(s) + eps)`. The
/// square average starts from zeros, which gives burn's first step exactly (`0 + x == x`).
fn rms_plain<const WD: bool>(k: &RmsStep, p: &mut [f32], g: &[f32], s: &mut [f32]) {
    let n = p.len();
    let (g, s) = (&g[..n], &mut s[..n]);
    for ((p, &g), s) in p.iter_mut().zip(g).zip(s.iter_mut()) {
        let g = if WD { *p * k.penalty + g } else { g };
        let sq = *s * k.alpha + g * g * k.factor;
        *s = sq;
        *p -= g / (sq.sqrt() + k.epsilon) * k.lr;
    }
}

/// [`rms_plain`] with momentum: the buffer starts as the scaled gradient, then
/// `b = b * momentum + g / (sqrt(s) + eps)`.
fn rms_momentum<const WD: bool, const FIRST: bool>(
    k: &RmsStep,
    p: &mut [f32],
    g: &[f32],
    s: &mut [f32],
    b: &mut [f32],
) {
    let n = p.len();
    let (g, s, b) = (&g[..n], &mut s[..n], &mut b[..n]);
    for (((p, &g), s), b) in p.iter_mut().zip(g).zip(s.iter_mut()).zip(b.iter_mut()) {
        let g = if WD { *p * k.penalty + g } else { g };
        let sq = *s * k.alpha + g * g * k.factor;
        *s = sq;
        let scaled = g / (sq.sqrt() + k.epsilon);
        let buf = if FIRST {
            scaled
        } else {
            *b * k.momentum + scaled
        };
        *b = buf;
        *p -= buf * k.lr;
    }
}

impl Optimizer for FusedRmsProp {
    type State<const D: usize> = FusedRmsPropState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let shape = tensor.shape();
        let fits = |t: &Tensor<D>| fusable(t) && t.shape() == shape;
        let fused = fits(&tensor)
            && fits(&grad)
            && state.as_ref().is_none_or(|s| {
                fits(&s.square_avg.square_avg) && s.momentum.as_ref().is_none_or(fits)
            });
        if !fused {
            let device = tensor.device();
            let state = state.map(|s| convert(&s, &device));
            let (tensor, state) = self.burn.step(lr, tensor, grad, state);
            return (tensor, state.map(|s| convert(&s, &device)));
        }

        let (square_avg, buf) = match state {
            Some(s) => {
                // Not centred, `centered.avg` only repeats the square average (and shares its
                // buffer after a step): drop it so the square average is ours to update.
                drop(s.centered);
                (Some(s.square_avg.square_avg), s.momentum)
            }
            None => (None, None),
        };
        let mut p = into_flex(tensor);
        let g = into_flex(grad);
        let mut s = square_avg.map_or_else(|| new_buffer(&p), into_flex);
        let k = RmsStep {
            lr: lr32(lr),
            alpha: self.alpha,
            factor: 1.0 - self.alpha,
            epsilon: self.epsilon,
            momentum: self.momentum,
            penalty: self.penalty.unwrap_or(0.0),
        };
        let wd = self.penalty.is_some();
        let momentum = if self.momentum > 0.0 {
            let first = buf.is_none();
            let mut b = buf.map_or_else(|| new_buffer(&p), into_flex);
            type Kernel = fn(&RmsStep, &mut [f32], &[f32], &mut [f32], &mut [f32]);
            let kernel: Kernel = match (wd, first) {
                (false, false) => rms_momentum::<false, false>,
                (false, true) => rms_momentum::<false, true>,
                (true, false) => rms_momentum::<true, false>,
                (true, true) => rms_momentum::<true, true>,
            };
            zip4(
                write(&mut p),
                read(&g),
                write(&mut s),
                write(&mut b),
                |p, g, s, b| kernel(&k, p, g, s, b),
            );
            Some(from_flex(b))
        } else {
            let kernel = if wd {
                rms_plain::<true>
            } else {
                rms_plain::<false>
            };
            zip3(write(&mut p), read(&g), write(&mut s), |p, g, s| {
                kernel(&k, p, g, s)
            });
            None
        };
        let square_avg: Tensor<D> = from_flex(s);
        let state = FusedRmsPropState {
            square_avg: SquareAvgState::new(square_avg.clone()),
            centered: CenteredState::new(None, square_avg),
            momentum,
        };
        (from_flex(p), Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        FusedRmsPropState {
            square_avg: state.square_avg.to_device(device),
            centered: state.centered.to_device(device),
            momentum: state.momentum.map(|b| b.to_device(device)),
        }
    }
}
