//! What Adam and AdamW share: the constants of a step as burn computes them, the moment update,
//! whether a step can run fused (no AMSGrad), and the in-place adaptive-momentum step that runs
//! either one's kernel.

use emolens_model::burn;

use burn::optim::{AdaptiveMomentumState, LearningRate};
use burn::tensor::Tensor;

use super::flex::{from_flex, fusable, into_flex, lr32, new_buffer, read, write, zip4};

/// The kernel of an adaptive-momentum step: parameter, gradient, first and second moment.
pub(super) type AdaptiveKernel = fn(&AdamStep, &mut [f32], &[f32], &mut [f32], &mut [f32]);

/// The constants of one Adam or AdamW step.
#[derive(Clone, Copy)]
pub(super) struct AdamStep {
    pub(super) lr: f32,
    pub(super) beta_1: f32,
    pub(super) beta_2: f32,
    /// `1 - beta_1`, `1 - beta_2`.
    pub(super) factor_1: f32,
    pub(super) factor_2: f32,
    /// Adam: the bias corrections folded as burn folds them.
    pub(super) combined: f32,
    pub(super) epsilon_scaled: f32,
    pub(super) penalty: f32,
    /// AdamW: the bias corrections, epsilon and the decay factor.
    pub(super) correction_1: f32,
    pub(super) correction_2: f32,
    pub(super) epsilon: f32,
    pub(super) keep: f32,
}

impl AdamStep {
    pub(super) fn new(
        lr: LearningRate,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        time: usize,
    ) -> Self {
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
    pub(super) fn moments<const FIRST: bool>(
        &self,
        g: f32,
        m: &mut f32,
        v: &mut f32,
    ) -> (f32, f32) {
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

/// Whether an Adam/AdamW step can run fused: every tensor fusable and of the parameter's shape,
/// and no AMSGrad maximum (which only burn's own optimiser keeps).
pub(super) fn adaptive_fusable<const D: usize>(
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
pub(super) fn adaptive_step<const D: usize>(
    tensor: Tensor<D>,
    grad: Tensor<D>,
    state: Option<AdaptiveMomentumState<D>>,
    step: impl FnOnce(usize) -> (AdamStep, AdaptiveKernel),
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
