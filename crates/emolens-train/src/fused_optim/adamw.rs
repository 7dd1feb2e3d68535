//! Fused AdamW: burn's [`AdamW`] (decoupled weight decay, no AMSGrad, no cautious decay) as one
//! in-place pass, with burn's own state.

use emolens_model::burn;

use burn::optim::{AdamW, AdamWConfig, AdamWState, LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

use super::adaptive::{adaptive_fusable, adaptive_step, AdamStep};

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
