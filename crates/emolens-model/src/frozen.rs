//! A network frozen for inference: plain `f32` weights, each batch norm folded into the layer
//! before it (or kept as a per-channel scale and shift after that layer's activation, the
//! Keras-style conv -> ReLU -> batch norm), activations attached to their layer, dropout gone.
//! It knows nothing of burn or of any kernel library: inference engines (the oneDNN plan in
//! [`crate::onednn::plan`]) compile it. Built by [`crate::Network::to_frozen`].

use crate::arch::Act;

/// What runs on a layer's output, in order, before the next layer sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum PostOp {
    Act(Act),
    /// `y = x * scale[c] + shift[c]` per channel: an inference-time batch norm.
    Affine {
        scale: Vec<f32>,
        shift: Vec<f32>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Weights `[out, in / groups, kh, kw]` (burn's layout).
    Conv {
        out_channels: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        pad_l: [usize; 2],
        pad_r: [usize; 2],
        groups: usize,
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
        post: Vec<PostOp>,
    },
    /// Max pooling, or average pooling that excludes padding.
    Pool {
        kernel: [usize; 2],
        stride: [usize; 2],
        pad_l: [usize; 2],
        pad_r: [usize; 2],
        max: bool,
    },
    /// Max or mean over the whole image, giving a vector.
    GlobalPool { max: bool },
    /// Image to vector, in channels-first order (the order dense weights expect).
    Flatten,
    /// Weights `[in, out]` (burn's layout).
    Dense {
        units: usize,
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
        post: Vec<PostOp>,
    },
}

/// A step, or a residual block whose branches are frozen the same way: the form
/// [`crate::Network::to_frozen_blocks`] gives for exporters (ONNX), which can branch. The
/// oneDNN plans take the straight [`FrozenNet`] only.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Step(Step),
    /// `post(body(x) + shortcut(x))`; an empty shortcut is the identity. `post` holds the
    /// block's activation and what follows it (a batch norm after the block stays a
    /// per-channel affine map: it cannot fold into two branches).
    Residual {
        body: Vec<Block>,
        shortcut: Vec<Block>,
        post: Vec<PostOp>,
    },
}

impl Block {
    /// See [`Step::fold_affine`]; a residual block never folds.
    pub fn fold_affine(&mut self, scale: &[f32], shift: &[f32]) -> bool {
        match self {
            Block::Step(s) => s.fold_affine(scale, shift),
            Block::Residual { .. } => false,
        }
    }

    /// The post-op list of a layer with weights or of a residual block.
    pub fn post_mut(&mut self) -> Option<&mut Vec<PostOp>> {
        match self {
            Block::Step(s) => s.post_mut(),
            Block::Residual { post, .. } => Some(post),
        }
    }
}

/// The frozen network: input `[channels, height, width]` and its steps.
#[derive(Debug, Clone, PartialEq)]
pub struct FrozenNet {
    pub input: [usize; 3],
    pub steps: Vec<Step>,
}

/// Per-channel `(scale, shift)` of an inference-time batch norm:
/// `(x - mean) / sqrt(var + eps) * gamma + beta`.
pub fn batch_norm_affine(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = gamma
        .iter()
        .zip(var)
        .map(|(g, v)| (f64::from(*g) / (f64::from(*v) + eps).sqrt()) as f32)
        .collect();
    let shift = beta
        .iter()
        .zip(mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    (scale, shift)
}

impl Step {
    /// Folds a per-channel affine map that directly follows this layer (nothing between) into
    /// its weights and bias. Returns `false` (and changes nothing) when it cannot: not a layer
    /// with weights, or the layer already has post-ops.
    pub fn fold_affine(&mut self, scale: &[f32], shift: &[f32]) -> bool {
        match self {
            Step::Conv {
                out_channels,
                weight,
                bias,
                post,
                ..
            } if post.is_empty() && scale.len() == *out_channels => {
                let per_out = weight.len() / *out_channels;
                for (o, chunk) in weight.chunks_mut(per_out).enumerate() {
                    chunk.iter_mut().for_each(|w| *w *= scale[o]);
                }
                *bias = Some(fold_bias(bias.as_deref(), scale, shift));
                true
            }
            Step::Dense {
                units,
                weight,
                bias,
                post,
            } if post.is_empty() && scale.len() == *units => {
                for row in weight.chunks_mut(*units) {
                    row.iter_mut().zip(scale).for_each(|(w, s)| *w *= s);
                }
                *bias = Some(fold_bias(bias.as_deref(), scale, shift));
                true
            }
            _ => false,
        }
    }

    /// The post-op list of a layer with weights.
    pub fn post_mut(&mut self) -> Option<&mut Vec<PostOp>> {
        match self {
            Step::Conv { post, .. } | Step::Dense { post, .. } => Some(post),
            _ => None,
        }
    }
}

fn fold_bias(bias: Option<&[f32]>, scale: &[f32], shift: &[f32]) -> Vec<f32> {
    (0..scale.len())
        .map(|o| bias.map_or(0.0, |b| b[o]) * scale[o] + shift[o])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_a_batch_norm_matches_applying_it() {
        // A 1x1 conv with two outputs over three inputs: y[o] = sum_i w[o, i] x[i] + b[o].
        let weight = vec![0.5, -1.0, 2.0, 1.5, 0.25, -0.75];
        let bias = Some(vec![0.1, -0.2]);
        let mut step = Step::Conv {
            out_channels: 2,
            kernel: [1, 1],
            stride: [1, 1],
            pad_l: [0, 0],
            pad_r: [0, 0],
            groups: 1,
            weight: weight.clone(),
            bias: bias.clone(),
            post: vec![],
        };
        let (scale, shift) =
            batch_norm_affine(&[1.2, 0.7], &[0.3, -0.1], &[0.05, 0.4], &[2.0, 0.5], 1e-5);
        assert!(step.fold_affine(&scale, &shift));
        let x = [0.3f32, -0.6, 1.1];
        let Step::Conv {
            weight: w2,
            bias: Some(b2),
            ..
        } = &step
        else {
            unreachable!()
        };
        for o in 0..2 {
            let plain: f32 =
                (0..3).map(|i| weight[o * 3 + i] * x[i]).sum::<f32>() + bias.as_ref().unwrap()[o];
            let normed = (plain - [0.05, 0.4][o]) / ([2.0f32, 0.5][o] + 1e-5).sqrt()
                * [1.2, 0.7][o]
                + [0.3, -0.1][o];
            let folded: f32 = (0..3).map(|i| w2[o * 3 + i] * x[i]).sum::<f32>() + b2[o];
            assert!((normed - folded).abs() < 1e-5, "{normed} vs {folded}");
        }
        // A second fold is refused once an activation is attached.
        step.post_mut().unwrap().push(PostOp::Act(Act::Relu));
        assert!(!step.fold_affine(&scale, &shift));
    }
}
