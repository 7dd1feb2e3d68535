//! Fused Adam: burn's [`Adam`] (L2 weight decay, no AMSGrad) as one in-place pass, with burn's
//! own state.

use emolens_model::burn;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{Adam, AdamConfig, AdamState, LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

use super::adaptive::{adaptive_fusable, adaptive_step, AdamStep};

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
