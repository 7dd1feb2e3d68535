//! Knowledge distillation: a trained model (the teacher) classifies each training batch as the
//! student sees it (after augmentation and mixup), and its probabilities join the targets:
//! `target = (1 - w) x labels + w x softmax(teacher logits / T)`. A large or ensembled model's
//! knowledge thus moves into a smaller, faster network (Hinton et al. 2015).

use std::path::Path;

use emolens_core::{EmotionClassifier, InputSpec};
use emolens_model::{inference_device, BurnClassifier};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::error::TrainError;

/// The teacher of a distillation run, as the run's config records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distill {
    /// The teacher's model file.
    pub teacher: std::path::PathBuf,
    /// Its SHA-256 when the run was configured (a resumed run refuses a changed teacher).
    pub sha256: String,
    /// The teacher's share of each target, in (0, 1].
    pub weight: f32,
    /// Temperature on the teacher's logits (1: its own probabilities; above 1 softer).
    pub temperature: f32,
}

impl Distill {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.weight > 0.0 && self.weight <= 1.0) {
            return Err(format!(
                "--distill-weight must be in (0, 1], got {}",
                self.weight
            ));
        }
        if !(0.25..=20.0).contains(&self.temperature) {
            return Err(format!(
                "--distill-temperature must be in [0.25, 20], got {}",
                self.temperature
            ));
        }
        Ok(())
    }
}

/// A loaded teacher, ready to blend its probabilities into batch targets.
pub struct Teacher {
    net: BurnClassifier,
    classes: usize,
    weight: f32,
    temperature: f32,
}

impl Teacher {
    /// Loads the teacher and checks it against the run: same file as configured (SHA-256), the
    /// same input (channels, size, normalisation) and the same classes in the same order.
    pub fn load(d: &Distill, spec: &InputSpec, classes: &[String]) -> Result<Teacher, TrainError> {
        let bytes = std::fs::read(&d.teacher).map_err(|e| TrainError::io(&d.teacher, e))?;
        let sha = emolens_core::fingerprint::sha256_hex(&bytes);
        if sha != d.sha256 {
            return Err(TrainError::Config(format!(
                "--teacher {}: the file changed since the run was configured (sha256 {sha}, expected {}); restore it or start a new run",
                d.teacher.display(),
                d.sha256
            )));
        }
        let name = d.teacher.display().to_string();
        let net = BurnClassifier::from_bytes(&bytes, &name, &inference_device())?;
        check_compatible(&d.teacher, net.meta(), spec, classes)?;
        info!(
            teacher = %d.teacher.display(),
            runtime = %net.runtime(),
            weight = d.weight,
            temperature = d.temperature,
            "distilling from a teacher model"
        );
        Ok(Teacher {
            net,
            classes: classes.len(),
            weight: d.weight,
            temperature: d.temperature,
        })
    }

    /// Classifies `n` preprocessed images and blends the teacher's tempered probabilities into
    /// their `n x classes` targets.
    pub fn blend(&self, images: &[f32], n: usize, targets: &mut [f32]) -> Result<(), TrainError> {
        let logits = self
            .net
            .logits(images, n)
            .map_err(|e| TrainError::Config(format!("teacher inference failed: {e}")))?;
        blend_into(
            &logits,
            self.classes,
            self.weight,
            self.temperature,
            targets,
        );
        Ok(())
    }
}

fn check_compatible(
    path: &Path,
    meta: &emolens_core::ModelMeta,
    spec: &InputSpec,
    classes: &[String],
) -> Result<(), TrainError> {
    crate::trainer::check_same_input(
        "--teacher",
        path,
        &meta.input,
        spec,
        "; distil into a student with the teacher's input",
    )?;
    if meta.classes != classes {
        return Err(TrainError::Config(format!(
            "--teacher {}: its classes {:?} differ from the data's {:?}",
            path.display(),
            meta.classes,
            classes
        )));
    }
    Ok(())
}

/// `targets = (1 - w) targets + w softmax(logits / t)`, row by row.
fn blend_into(logits: &[f32], k: usize, w: f32, t: f32, targets: &mut [f32]) {
    for (row, target) in logits.chunks(k).zip(targets.chunks_mut(k)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = row.iter().map(|&v| ((v - max) / t).exp()).collect();
        let sum: f32 = e.iter().sum();
        for (o, p) in target.iter_mut().zip(e) {
            *o = (1.0 - w) * *o + w * p / sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blending_mixes_labels_with_tempered_teacher_probabilities() {
        let logits = [2.0f32.ln(), 0.0, 0.0];
        let mut t = vec![0.0, 1.0, 0.0];
        blend_into(&logits, 3, 0.5, 1.0, &mut t);
        // softmax = [0.5, 0.25, 0.25]
        let want = [0.25, 0.625, 0.125];
        for (a, b) in t.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{t:?}");
        }
        // A high temperature flattens the teacher toward uniform.
        let mut t = vec![0.0, 1.0, 0.0];
        blend_into(&logits, 3, 1.0, 1000.0, &mut t);
        assert!(t.iter().all(|&p| (p - 1.0 / 3.0).abs() < 1e-3), "{t:?}");
        let d = Distill {
            teacher: "t.emolens".into(),
            sha256: String::new(),
            weight: 0.0,
            temperature: 1.0,
        };
        assert!(d.validate().is_err());
        assert!(Distill {
            weight: 0.7,
            ..d.clone()
        }
        .validate()
        .is_ok());
        assert!(Distill {
            weight: 0.7,
            temperature: 0.0,
            ..d
        }
        .validate()
        .is_err());
    }
}
