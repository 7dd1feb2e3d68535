//! Batches: the training images of one step picked in the epoch's order, augmented, normalised,
//! with their target rows (mixed up and blended with a teacher's when the run says so), and the
//! tensors the network takes.

use emolens_core::Preprocessor;
use emolens_data::{apply_augment, AugmentConfig, ImageCache};
use emolens_model::burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::order::derive_seed;
use crate::distill::Teacher;
use crate::error::TrainError;

/// A batch ready for the network.
pub(super) struct Batch {
    pub(super) images: Vec<f32>,
    pub(super) labels: Vec<i64>,
    /// `[batch, classes]` target rows (training batches only).
    pub(super) targets: Vec<f32>,
}

/// One target distribution per training image, `classes` values each.
pub(super) struct TargetTable {
    pub(super) classes: usize,
    pub(super) rows: Vec<f32>,
}

impl TargetTable {
    pub(super) fn row(&self, i: usize) -> &[f32] {
        &self.rows[i * self.classes..(i + 1) * self.classes]
    }
}

/// Everything that turns a run of cache indices into a [`Batch`]; shared with the thread that
/// prepares the training batches.
#[derive(Clone, Copy)]
pub(super) struct BatchMaker<'a> {
    pub(super) cache: &'a ImageCache,
    /// The target rows (training batches only).
    pub(super) targets: Option<&'a TargetTable>,
    pub(super) pre: &'a Preprocessor,
    pub(super) augment: &'a AugmentConfig,
    pub(super) seed: u64,
    /// Mixup's Beta(alpha, alpha); 0 for none.
    pub(super) mixup: f32,
    pub(super) teacher: Option<&'a Teacher>,
}

impl BatchMaker<'_> {
    /// Builds the batch of the images `order` of `epoch`, the first being the epoch's image
    /// `start`: augments each with its own seeded RNG (so threads never change the result),
    /// normalises them, then mixes and blends the targets.
    pub(super) fn make(
        &self,
        order: &[usize],
        epoch: usize,
        start: usize,
    ) -> Result<Batch, TrainError> {
        let mut images = self.images(order, epoch, start);
        let labels = order.iter().map(|&i| self.cache.labels[i] as i64).collect();
        let mut targets: Vec<f32> = match self.targets {
            Some(t) => order.iter().flat_map(|&i| t.row(i)).copied().collect(),
            None => Vec::new(),
        };
        if self.mixup > 0.0 && !targets.is_empty() && order.len() > 1 {
            let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(
                self.seed,
                epoch,
                MIXUP_STREAM + start as u64,
            ));
            mix_batch(&mut images, &mut targets, order.len(), self.mixup, &mut rng);
        }
        if let Some(t) = self.teacher {
            if !targets.is_empty() {
                t.blend(&images, order.len(), &mut targets)?;
            }
        }
        Ok(Batch {
            images,
            labels,
            targets,
        })
    }

    /// The normalised (and augmented, when the run augments) pixels of the images `order`.
    fn images(&self, order: &[usize], epoch: usize, start: usize) -> Vec<f32> {
        let cache = self.cache;
        let len = cache.image_len();
        let mut images = vec![0f32; order.len() * len];
        let do_aug = !self.augment.is_none();
        images
            .par_chunks_mut(len)
            .zip(order.par_iter().enumerate())
            .for_each(|(out, (k, &idx))| {
                let src = cache.image(idx);
                if do_aug {
                    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(
                        self.seed,
                        epoch,
                        (start + k) as u64,
                    ));
                    let params = self.augment.sample(&mut rng);
                    let mut px = vec![0u8; len];
                    apply_augment(
                        &params,
                        src,
                        cache.channels,
                        cache.height,
                        cache.width,
                        &mut px,
                    );
                    self.pre.normalise_into(&px, out);
                } else {
                    self.pre.normalise_into(src, out);
                }
            });
        images
    }
}

/// The seed stream of mixup draws, apart from the per-image augmentation streams (`start + k`).
const MIXUP_STREAM: u64 = 1 << 40;

/// A draw from Beta(a, a) by Jöhnk's method (exact for any a > 0; accepts often for a <= 1,
/// the range mixup uses).
fn beta_symmetric(a: f32, rng: &mut impl Rng) -> f32 {
    let inv = 1.0 / a as f64;
    loop {
        let x = rng.random::<f64>().powf(inv);
        let y = rng.random::<f64>().powf(inv);
        let s = x + y;
        if s <= 1.0 && s > 0.0 {
            return (x / s) as f32;
        }
    }
}

/// Mixup over one batch: image `k` becomes `l x_k + (1 - l) x_p(k)` for a random partner
/// permutation `p`, its target likewise, with `l` from Beta(alpha, alpha) folded to `l >= 0.5`
/// so each image keeps the larger share (its hard label, used for the running accuracy, stays).
fn mix_batch(images: &mut [f32], targets: &mut [f32], n: usize, alpha: f32, rng: &mut impl Rng) {
    let img_len = images.len() / n;
    let classes = targets.len() / n;
    let mut partner: Vec<usize> = (0..n).collect();
    partner.shuffle(rng);
    let src_images = images.to_vec();
    let src_targets = targets.to_vec();
    for (k, &p) in partner.iter().enumerate() {
        if p == k {
            continue;
        }
        let l = beta_symmetric(alpha, rng);
        let l = l.max(1.0 - l);
        let (a, b) = (l, 1.0 - l);
        let out = &mut images[k * img_len..(k + 1) * img_len];
        let other = &src_images[p * img_len..(p + 1) * img_len];
        for (o, &x) in out.iter_mut().zip(other) {
            *o = a * *o + b * x;
        }
        let out = &mut targets[k * classes..(k + 1) * classes];
        let other = &src_targets[p * classes..(p + 1) * classes];
        for (o, &x) in out.iter_mut().zip(other) {
            *o = a * *o + b * x;
        }
    }
}

/// The batch's images `[N, C, H, W]` and hard labels `[N]` as tensors on `device`.
pub(super) fn to_tensors(
    b: &Batch,
    cache: &ImageCache,
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>) {
    let n = b.labels.len();
    let x = Tensor::from_data(
        TensorData::new(
            b.images.clone(),
            [n, cache.channels, cache.height, cache.width],
        ),
        device,
    );
    let y = Tensor::from_data(TensorData::new(b.labels.clone(), [n]), device);
    (x, y)
}

/// How many of the `n` rows of `logits` have their largest value at the label `y`.
pub(super) fn hits(logits: Tensor<2>, y: Tensor<1, Int>, n: usize) -> i64 {
    logits
        .argmax(1)
        .reshape([n])
        .equal(y)
        .int()
        .sum()
        .into_scalar::<i64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixup_blends_images_and_targets_alike() {
        let n = 8;
        let mut images: Vec<f32> = (0..n * 3).map(|i| (i / 3) as f32).collect();
        let mut targets = vec![0f32; n * 7];
        for k in 0..n {
            targets[k * 7 + k % 7] = 1.0;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        mix_batch(&mut images, &mut targets, n, 0.4, &mut rng);
        let mut mixed = 0;
        for k in 0..n {
            let t = &targets[k * 7..(k + 1) * 7];
            assert!((t.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            // The image keeps the larger share of its own class.
            assert!(t[k % 7] >= 0.5, "{t:?}");
            let px = &images[k * 3..(k + 1) * 3];
            assert!(
                px.iter().all(|&v| v == px[0]),
                "pixels of one image mix alike"
            );
            if t[k % 7] < 1.0 {
                mixed += 1;
                // Pixel = l * k + (1 - l) * partner, with l the target's own share.
                let l = t[k % 7];
                let partner = (px[0] - l * k as f32) / (1.0 - l);
                assert!((partner - partner.round()).abs() < 1e-3, "{partner}");
            }
        }
        assert!(mixed >= n / 2, "most images were mixed ({mixed})");
        for a in [0.2f32, 0.4, 1.0, 2.0] {
            let mean: f32 = (0..4000).map(|_| beta_symmetric(a, &mut rng)).sum::<f32>() / 4000.0;
            assert!((mean - 0.5).abs() < 0.02, "Beta({a},{a}) mean {mean}");
        }
    }
}
