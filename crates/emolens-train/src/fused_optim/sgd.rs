//! Fused SGD: burn's [`Sgd`] (optional momentum with dampening and Nesterov, L2 weight decay)
//! as one in-place pass, with a state of burn's record layout.

use emolens_model::burn;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    join_path, LearningRate, Optimizer, RecordState, Sgd, SgdConfig, StateSink, StateSource,
};
use burn::tensor::{Device, Tensor};

use super::flex::{
    convert, from_flex, fusable, into_flex, lr32, new_buffer, read, write, zip2, zip3,
};

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

/// The momentum kernel for weight decay on or off, a first step or a later one, Nesterov or
/// not.
type MomentumKernel = fn(&SgdStep, &mut [f32], &[f32], &mut [f32]);

fn momentum_kernel(wd: bool, first: bool, nesterov: bool) -> MomentumKernel {
    match (wd, first, nesterov) {
        (false, false, false) => sgd_momentum::<false, false, false>,
        (false, false, true) => sgd_momentum::<false, false, true>,
        (false, true, false) => sgd_momentum::<false, true, false>,
        (false, true, true) => sgd_momentum::<false, true, true>,
        (true, false, false) => sgd_momentum::<true, false, false>,
        (true, false, true) => sgd_momentum::<true, false, true>,
        (true, true, false) => sgd_momentum::<true, true, false>,
        (true, true, true) => sgd_momentum::<true, true, true>,
    }
}

impl FusedSgd {
    /// The step's constants.
    fn constants(&self, lr: LearningRate) -> SgdStep {
        SgdStep {
            lr: lr32(lr),
            penalty: self.penalty.unwrap_or(0.0),
            momentum: self.momentum.map_or(0.0, |m| m.momentum),
            keep: self.momentum.map_or(1.0, |m| m.keep),
        }
    }

    /// burn's own step, for tensors the fused path does not take.
    fn burn_step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        velocity: Option<Tensor<D>>,
    ) -> (Tensor<D>, Option<FusedSgdState<D>>) {
        let device = tensor.device();
        let state = FusedSgdState { momentum: velocity };
        let state = convert(&state, &device);
        let (tensor, state) = self.burn.step(lr, tensor, grad, Some(state));
        (tensor, state.map(|s| convert(&s, &device)))
    }

    /// The fused step without momentum.
    fn plain_step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
    ) -> (Tensor<D>, Option<FusedSgdState<D>>) {
        let mut p = into_flex(tensor);
        let g = into_flex(grad);
        let k = self.constants(lr);
        let kernel = if self.penalty.is_some() {
            sgd_plain::<true>
        } else {
            sgd_plain::<false>
        };
        zip2(write(&mut p), read(&g), |p, g| kernel(&k, p, g));
        (from_flex(p), Some(FusedSgdState { momentum: None }))
    }

    /// The fused step with momentum `m`, from the velocity of the last step (none before the
    /// first).
    fn momentum_step<const D: usize>(
        &self,
        m: SgdMomentum,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        velocity: Option<Tensor<D>>,
    ) -> (Tensor<D>, Option<FusedSgdState<D>>) {
        let mut p = into_flex(tensor);
        let g = into_flex(grad);
        let k = self.constants(lr);
        let first = velocity.is_none();
        let mut v = velocity.map_or_else(|| new_buffer(&p), into_flex);
        let kernel = momentum_kernel(self.penalty.is_some(), first, m.nesterov);
        zip3(write(&mut p), read(&g), write(&mut v), |p, g, v| {
            kernel(&k, p, g, v)
        });
        let state = FusedSgdState {
            momentum: Some(from_flex(v)),
        };
        (from_flex(p), Some(state))
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
            return self.burn_step(lr, tensor, grad, velocity);
        }
        match self.momentum {
            None => self.plain_step(lr, tensor, grad),
            Some(m) => self.momentum_step(m, lr, tensor, grad, velocity),
        }
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        FusedSgdState {
            momentum: state.momentum.map(|v| v.to_device(device)),
        }
    }
}
