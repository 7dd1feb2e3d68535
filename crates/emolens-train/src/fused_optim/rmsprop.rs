//! Fused RMSprop: burn's [`RmsProp`] (not centred; optional momentum, L2 weight decay) as one
//! in-place pass, with a state of burn's record layout.

use emolens_model::burn;

use burn::backend::flex::FlexTensor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{
    join_path, CenteredState, LearningRate, Optimizer, RecordState, RmsProp, RmsPropConfig,
    SquareAvgState, StateSink, StateSource,
};
use burn::tensor::{Device, Tensor};

use super::flex::{
    convert, from_flex, fusable, into_flex, lr32, new_buffer, read, write, zip3, zip4,
};

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

impl FusedRmsProp {
    /// Whether the step can run fused: every tensor fusable and of the parameter's shape.
    fn fusable<const D: usize>(
        tensor: &Tensor<D>,
        grad: &Tensor<D>,
        state: Option<&FusedRmsPropState<D>>,
    ) -> bool {
        let shape = tensor.shape();
        let fits = |t: &Tensor<D>| fusable(t) && t.shape() == shape;
        fits(tensor)
            && fits(grad)
            && state.is_none_or(|s| {
                fits(&s.square_avg.square_avg) && s.momentum.as_ref().is_none_or(fits)
            })
    }

    /// burn's own step, for tensors the fused path does not take.
    fn burn_step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<FusedRmsPropState<D>>,
    ) -> (Tensor<D>, Option<FusedRmsPropState<D>>) {
        let device = tensor.device();
        let state = state.map(|s| convert(&s, &device));
        let (tensor, state) = self.burn.step(lr, tensor, grad, state);
        (tensor, state.map(|s| convert(&s, &device)))
    }

    /// The step's constants.
    fn constants(&self, lr: LearningRate) -> RmsStep {
        RmsStep {
            lr: lr32(lr),
            alpha: self.alpha,
            factor: 1.0 - self.alpha,
            epsilon: self.epsilon,
            momentum: self.momentum,
            penalty: self.penalty.unwrap_or(0.0),
        }
    }

    /// Updates `p` and the square average `s` in place with momentum, from the momentum buffer
    /// of the last step (none before the first); returns the new buffer.
    fn momentum_pass(
        &self,
        k: &RmsStep,
        p: &mut FlexTensor,
        g: &FlexTensor,
        s: &mut FlexTensor,
        buf: Option<FlexTensor>,
    ) -> FlexTensor {
        let first = buf.is_none();
        let mut b = buf.unwrap_or_else(|| new_buffer(p));
        type Kernel = fn(&RmsStep, &mut [f32], &[f32], &mut [f32], &mut [f32]);
        let kernel: Kernel = match (self.penalty.is_some(), first) {
            (false, false) => rms_momentum::<false, false>,
            (false, true) => rms_momentum::<false, true>,
            (true, false) => rms_momentum::<true, false>,
            (true, true) => rms_momentum::<true, true>,
        };
        zip4(write(p), read(g), write(s), write(&mut b), |p, g, s, b| {
            kernel(k, p, g, s, b)
        });
        b
    }

    /// Updates `p` and the square average `s` in place without momentum.
    fn plain_pass(&self, k: &RmsStep, p: &mut FlexTensor, g: &FlexTensor, s: &mut FlexTensor) {
        let kernel = if self.penalty.is_some() {
            rms_plain::<true>
        } else {
            rms_plain::<false>
        };
        zip3(write(p), read(g), write(s), |p, g, s| kernel(k, p, g, s));
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
        if !Self::fusable(&tensor, &grad, state.as_ref()) {
            return self.burn_step(lr, tensor, grad, state);
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
        let k = self.constants(lr);
        let momentum = if self.momentum > 0.0 {
            let b = self.momentum_pass(&k, &mut p, &g, &mut s, buf.map(into_flex));
            Some(from_flex(b))
        } else {
            self.plain_pass(&k, &mut p, &g, &mut s);
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
