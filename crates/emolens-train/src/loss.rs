//! The training loss: cross-entropy against a target distribution per image (soft labels, such
//! as FER+ vote distributions; a hard label is its one-hot), with label smoothing and class
//! weights.
//!
//! For logits `z_i`, target `t_i` (sums to 1), smoothing `a` over `K` classes and class weights
//! `w` (all 1 without weights):
//!
//! ```text
//! t'_ic  = (1 - a) t_ic + a / K                       smoothing mixes in the uniform distribution
//! l_i    = -sum_c w_c t'_ic log_softmax(z_i)_c        each class's term weighted by its weight
//! loss   = sum_i l_i / sum_i (sum_c w_c t_ic)         normalised by each image's expected weight
//! ```
//!
//! Without weights the denominator is the batch size (a plain mean). For one-hot targets this is
//! exactly burn's `CrossEntropyLoss` with the same weights and smoothing (whose normaliser is
//! `sum_i w_{y_i}`), so hard-label runs train as before; the tests check both.

use emolens_model::burn::tensor::activation::log_softmax;
use emolens_model::burn::tensor::{Device, Tensor, TensorData};

/// Soft-target cross-entropy with optional label smoothing and class weights.
#[derive(Debug, Clone)]
pub struct SoftCrossEntropy {
    classes: usize,
    weights: Option<Tensor<1>>,
    smoothing: f32,
}

impl SoftCrossEntropy {
    /// `weights`, when given, has one non-negative weight per class.
    pub fn new(
        classes: usize,
        weights: Option<&[f32]>,
        smoothing: f32,
        device: &Device,
    ) -> SoftCrossEntropy {
        SoftCrossEntropy {
            classes,
            weights: weights.map(|w| {
                assert_eq!(w.len(), classes, "one class weight per class");
                Tensor::from_data(TensorData::new(w.to_vec(), [classes]), device)
            }),
            smoothing,
        }
    }

    /// Mean loss of a batch. `logits` and `targets` are `[batch, classes]`; each target row sums
    /// to 1.
    pub fn forward(&self, logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
        let [batch, classes] = logits.dims();
        assert_eq!(classes, self.classes, "logits have the loss's class count");
        assert_eq!(targets.dims(), [batch, classes], "one target row per image");
        let logp = log_softmax(logits, 1);
        let smoothed = if self.smoothing > 0.0 {
            targets.clone() * (1.0 - self.smoothing) + self.smoothing / classes as f32
        } else {
            targets.clone()
        };
        match &self.weights {
            None => (logp * smoothed).sum_dim(1).mean().neg(),
            Some(w) => {
                let w = w.clone().reshape([1, classes]).repeat_dim(0, batch);
                let num = (logp * smoothed * w.clone()).sum();
                let den = (targets * w).sum();
                num.neg() / den
            }
        }
    }
}

/// A `[batch, classes]` tensor of target rows.
pub fn targets_tensor(rows: &[f32], classes: usize, device: &Device) -> Tensor<2> {
    let batch = rows.len() / classes;
    Tensor::from_data(TensorData::new(rows.to_vec(), [batch, classes]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use emolens_model::burn::nn::loss::CrossEntropyLossConfig;
    use emolens_model::burn::tensor::Int;

    fn logits(d: &Device) -> (Vec<f32>, Tensor<2>) {
        let v = vec![1.0, -0.5, 0.25, 2.0, 0.0, -1.0, 0.3, 0.3, 0.9];
        let t = Tensor::from_data(TensorData::new(v.clone(), [3, 3]), d);
        (v, t)
    }

    fn log_softmax_row(z: &[f32]) -> Vec<f64> {
        let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = m + z.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
        z.iter().map(|&x| x as f64 - lse).collect()
    }

    /// The formula of the module docs, computed by hand in f64.
    fn by_hand(z: &[f32], t: &[f32], w: Option<&[f32]>, a: f32) -> f64 {
        let k = 3;
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..z.len() / k {
            let lp = log_softmax_row(&z[i * k..(i + 1) * k]);
            for c in 0..k {
                let wc = w.map_or(1.0, |w| w[c] as f64);
                let tc = t[i * k + c] as f64;
                let ts = (1.0 - a as f64) * tc + a as f64 / k as f64;
                num -= wc * ts * lp[c];
                den += wc * tc;
            }
        }
        num / den
    }

    #[test]
    fn soft_targets_match_a_hand_computation() {
        let d = Device::flex();
        let (z, zt) = logits(&d);
        let t = vec![0.5, 0.25, 0.25, 0.0, 1.0, 0.0, 0.1, 0.6, 0.3];
        let w = [2.0, 0.5, 1.0];
        for (weights, a) in [
            (None, 0.0),
            (None, 0.1),
            (Some(&w[..]), 0.0),
            (Some(&w[..]), 0.2),
        ] {
            let loss = SoftCrossEntropy::new(3, weights, a, &d)
                .forward(zt.clone(), targets_tensor(&t, 3, &d))
                .into_scalar::<f32>() as f64;
            let want = by_hand(&z, &t, weights, a);
            assert!(
                (loss - want).abs() < 1e-5,
                "weights {weights:?} smoothing {a}: {loss} vs {want}"
            );
        }
        // A soft target gives another loss than its argmax's one-hot: the votes reach the loss.
        let hard = vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0];
        let soft = SoftCrossEntropy::new(3, None, 0.0, &d)
            .forward(zt.clone(), targets_tensor(&t, 3, &d))
            .into_scalar::<f32>();
        let one_hot = SoftCrossEntropy::new(3, None, 0.0, &d)
            .forward(zt, targets_tensor(&hard, 3, &d))
            .into_scalar::<f32>();
        assert!((soft - one_hot).abs() > 0.05, "{soft} vs {one_hot}");
    }

    #[test]
    fn one_hot_targets_equal_burns_cross_entropy() {
        let d = Device::flex();
        let (_, zt) = logits(&d);
        let labels = [0i64, 1, 2];
        let mut hard = vec![0f32; 9];
        for (i, &l) in labels.iter().enumerate() {
            hard[i * 3 + l as usize] = 1.0;
        }
        let w = vec![2.0, 0.5, 1.5];
        for (weights, a) in [
            (None, 0.0),
            (None, 0.1),
            (Some(w.clone()), 0.0),
            (Some(w), 0.1),
        ] {
            let mut cfg = CrossEntropyLossConfig::new();
            if let Some(w) = &weights {
                cfg = cfg.with_weights(Some(w.clone()));
            }
            if a > 0.0 {
                cfg = cfg.with_smoothing(Some(a));
            }
            let y = Tensor::<1, Int>::from_data(TensorData::new(labels.to_vec(), [3]), &d);
            let burn = cfg.init(&d).forward(zt.clone(), y).into_scalar::<f32>();
            let ours = SoftCrossEntropy::new(3, weights.as_deref(), a, &d)
                .forward(zt.clone(), targets_tensor(&hard, 3, &d))
                .into_scalar::<f32>();
            assert!((burn - ours).abs() < 1e-6, "{burn} vs {ours}");
        }
    }
}
