//! The steps of an epoch: the training step (forward, loss, backward, optimiser update) over
//! every batch of the epoch's order, with the batches prepared on a second thread; and the
//! validation step (loss and accuracy of the network in validation mode, per source and pooled).

use std::sync::mpsc::sync_channel;

use emolens_core::Preprocessor;
use emolens_data::{AugmentConfig, ImageCache};
use emolens_model::burn::nn::loss::CrossEntropyLossConfig;
use emolens_model::burn::optim::{GradientsParams, ModuleOptimizer};
use emolens_model::burn::tensor::Device;
use emolens_model::Network;
use indicatif::ProgressBar;

use super::batch::{hits, to_tensors, Batch, BatchMaker};
use super::checkpoint::TrainerState;
use super::epoch::Learner;
use crate::error::TrainError;
use crate::loss::targets_tensor;
use crate::schedule::learning_rate;

/// What the training steps of one epoch add up to.
pub(super) struct EpochTotals {
    /// Sum over the images of their batch's loss.
    pub(super) loss_sum: f64,
    /// Images whose largest logit is at their hard label.
    pub(super) correct: i64,
    /// The learning rate of the epoch's last step (the configured rate before any step).
    pub(super) lr: f64,
}

/// What one training step gives back besides the updated network.
struct StepResult {
    loss: f64,
    hits: i64,
    lr: f64,
}

impl Learner<'_> {
    /// What the batch thread needs to build this run's training batches.
    fn batch_maker(&self) -> BatchMaker<'_> {
        BatchMaker {
            cache: &self.data.train,
            targets: Some(&self.data.targets),
            pre: self.pre,
            augment: &self.cfg.augment,
            seed: self.cfg.seed,
            mixup: self.cfg.mixup,
            teacher: self.teacher.as_ref(),
        }
    }

    /// Trains `model` on the images `order` of epoch `epoch`, one optimiser step per batch;
    /// advances `bar` per batch.
    pub(super) fn train_epoch(
        &self,
        model: Network,
        optim: &mut ModuleOptimizer,
        state: &mut TrainerState,
        epoch: usize,
        order: &[usize],
        bar: &ProgressBar,
    ) -> Result<(Network, EpochTotals), TrainError> {
        let batch_size = self.cfg.batch_size;
        let maker = self.batch_maker();
        let mut totals = EpochTotals {
            loss_sum: 0.0,
            correct: 0,
            lr: self.cfg.learning_rate,
        };
        // Batches are prepared on a second thread, one ahead, so the optimiser never waits.
        let model = std::thread::scope(|scope| -> Result<Network, TrainError> {
            let mut model = model;
            let (tx, rx) = sync_channel::<(usize, Result<Batch, TrainError>)>(2);
            scope.spawn(move || {
                for (bi, chunk) in order.chunks(batch_size).enumerate() {
                    let b = maker.make(chunk, epoch, bi * batch_size);
                    if tx.send((bi, b)).is_err() {
                        break;
                    }
                }
            });
            for (bi, batch) in rx {
                let batch = batch?;
                let bsz = batch.labels.len();
                let (next, step) = self.train_step(model, optim, state, epoch, bi, &batch)?;
                model = next;
                totals.lr = step.lr;
                totals.loss_sum += step.loss * bsz as f64;
                totals.correct += step.hits;
                bar.inc(bsz as u64);
                bar.set_message(format!(
                    "loss {:.4} acc {:.4}",
                    totals.loss_sum / bar.position() as f64,
                    totals.correct as f64 / bar.position() as f64
                ));
            }
            Ok(model)
        })?;
        Ok((model, totals))
    }

    /// One optimiser step on batch `bi` of epoch `epoch`: forward, loss (refusing a loss that
    /// is not finite), backward, the scheduled learning rate, the update.
    fn train_step(
        &self,
        model: Network,
        optim: &mut ModuleOptimizer,
        state: &mut TrainerState,
        epoch: usize,
        bi: usize,
        batch: &Batch,
    ) -> Result<(Network, StepResult), TrainError> {
        let cfg = self.cfg;
        let bsz = batch.labels.len();
        let (x, y) = to_tensors(batch, &self.data.train, &self.device);
        let t = targets_tensor(&batch.targets, self.classes.len(), &self.device);
        let logits = model.forward(x);
        let loss = self.loss_fn.forward(logits.clone(), t);
        let loss_v: f64 = loss.clone().into_scalar::<f32>() as f64;
        if !loss_v.is_finite() {
            return Err(TrainError::Diverged {
                epoch: epoch + 1,
                step: bi + 1,
            });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = learning_rate(
            &cfg.schedule,
            cfg.learning_rate,
            epoch,
            state.steps_done,
            self.steps_per_epoch,
            cfg.epochs,
            &state.plateau,
        );
        let model = optim.step(lr, model, grads);
        state.steps_done += 1;
        let hits = hits(logits, y, bsz);
        Ok((
            model,
            StepResult {
                loss: loss_v,
                hits,
                lr,
            },
        ))
    }

    /// Each source's validation `(loss, accuracy, images)` for `valid_net` (the network in
    /// validation mode).
    pub(super) fn validate(&self, valid_net: &Network) -> Vec<(f64, f64, usize)> {
        self.data
            .valid
            .iter()
            .map(|c| {
                let (l, a) = evaluate(valid_net, c, self.pre, &self.opts.device);
                (l, a, c.len())
            })
            .collect()
    }
}

/// Loss and accuracy of `net` (validation mode) on a whole cache.
pub fn evaluate(
    net: &Network,
    cache: &ImageCache,
    pre: &Preprocessor,
    device: &Device,
) -> (f64, f64) {
    if cache.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let order: Vec<usize> = (0..cache.len()).collect();
    let mut loss_sum = 0.0;
    let mut correct = 0i64;
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let none = AugmentConfig::none();
    let maker = BatchMaker {
        cache,
        targets: None,
        pre,
        augment: &none,
        seed: 0,
        mixup: 0.0,
        teacher: None,
    };
    for chunk in order.chunks(256) {
        let b = maker
            .make(chunk, 0, 0)
            .expect("a batch without a teacher cannot fail");
        let (x, y) = to_tensors(&b, cache, device);
        let logits = net.forward(x);
        let loss: f64 = loss_fn
            .forward(logits.clone(), y.clone())
            .into_scalar::<f32>() as f64;
        loss_sum += loss * chunk.len() as f64;
        correct += hits(logits, y, chunk.len());
    }
    (
        loss_sum / cache.len() as f64,
        correct as f64 / cache.len() as f64,
    )
}

/// The run's validation loss and accuracy from each source's `(loss, accuracy, images)`: over
/// the union of the validation sets (the size-weighted mean); a source's own values when only
/// one has validation images; NaN when none has.
pub(super) fn pooled(per_source: &[(f64, f64, usize)]) -> (f64, f64) {
    let used: Vec<&(f64, f64, usize)> = per_source.iter().filter(|x| x.2 > 0).collect();
    match used.as_slice() {
        [] => (f64::NAN, f64::NAN),
        [one] => (one.0, one.1),
        many => {
            let n: usize = many.iter().map(|x| x.2).sum();
            let loss = many.iter().map(|x| x.0 * x.2 as f64).sum::<f64>() / n as f64;
            let acc = many.iter().map(|x| x.1 * x.2 as f64).sum::<f64>() / n as f64;
            (loss, acc)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_validation_is_the_size_weighted_mean() {
        assert_eq!(
            pooled(&[(0.5, 0.25, 10), (f64::NAN, f64::NAN, 0)]),
            (0.5, 0.25)
        );
        let (l, a) = pooled(&[(1.0, 0.5, 30), (2.0, 1.0, 10)]);
        assert!((l - 1.25).abs() < 1e-12 && (a - 0.625).abs() < 1e-12);
        assert!(pooled(&[]).0.is_nan());
    }
}
