//! Choosing a model file's flip test-time-augmentation gate on validation images (`emolens
//! model tune-tta`): every image is classified once as it is and once mirrored, and each gate
//! ("mirror the faces the model is less than `t` sure of") is scored from those two passes.
//! The chosen gate is the lowest whose accuracy is within a tolerance of mirroring every face.

use std::path::PathBuf;

use emolens_core::{mirror_rows, EmotionClassifier, Preprocessor};

use crate::EvalError;

/// One gate's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateRow {
    /// Mirror the faces whose top probability is below this; `None`: mirror every face.
    pub below: Option<f32>,
    pub accuracy: f64,
    /// Share of the images that were mirrored.
    pub mirrored: f64,
}

/// The gates tried and the one chosen.
#[derive(Debug, Clone)]
pub struct GateTuning {
    pub rows: Vec<GateRow>,
    /// Index into `rows`.
    pub chosen: usize,
    /// Validation images used.
    pub images: usize,
}

impl GateTuning {
    pub fn chosen(&self) -> GateRow {
        self.rows[self.chosen]
    }
}

/// The gates tried: 0, 0.05, ..., 1, then "always".
pub fn default_gates() -> Vec<Option<f32>> {
    (0..=20)
        .map(|i| Some(i as f32 * 0.05))
        .chain([None])
        .collect()
}

/// Accuracy and mirrored share of each gate, from every image's own (`p`) and mirrored (`q`)
/// probabilities, `k` classes a row.
pub fn gate_table(
    p: &[f32],
    q: &[f32],
    labels: &[usize],
    k: usize,
    gates: &[Option<f32>],
) -> Vec<GateRow> {
    let top = |row: &[f32]| {
        (0..k)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap_or(0)
    };
    let n = labels.len().max(1);
    gates
        .iter()
        .map(|&below| {
            let t = below.unwrap_or(f32::INFINITY);
            let (mut right, mut mirrored) = (0usize, 0usize);
            for (i, &label) in labels.iter().enumerate() {
                let own = &p[i * k..(i + 1) * k];
                let answer = if own.iter().copied().fold(f32::MIN, f32::max) < t {
                    mirrored += 1;
                    let mean: Vec<f32> = own
                        .iter()
                        .zip(&q[i * k..(i + 1) * k])
                        .map(|(a, b)| a + b)
                        .collect();
                    top(&mean)
                } else {
                    top(own)
                };
                right += usize::from(answer == label);
            }
            GateRow {
                below,
                accuracy: right as f64 / n as f64,
                mirrored: mirrored as f64 / n as f64,
            }
        })
        .collect()
}

/// Scores every gate of [`default_gates`] on `samples` (image file, index of its class in the
/// model's classes) and chooses the lowest gate within `tolerance` of mirroring every face.
/// `classifier` must run without test-time augmentation (one pass per call). Unreadable images
/// are logged and left out; `on_progress` gets the number of samples done.
pub fn tune_flip_gate(
    classifier: &dyn EmotionClassifier,
    samples: &[(PathBuf, usize)],
    tolerance: f64,
    on_progress: &mut dyn FnMut(usize),
) -> Result<GateTuning, EvalError> {
    let meta = classifier.meta();
    if meta.flip_tta {
        return Err(EvalError::Input(
            "tuning the flip gate needs the model without test-time augmentation".into(),
        ));
    }
    let pre = Preprocessor::new(meta.input.clone());
    let width = meta.input.width as usize;
    let k = meta.classes.len();
    let (mut p, mut q, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    let mut done = 0;
    for chunk in samples.chunks(64) {
        let (mut x, mut rows) = (Vec::new(), 0);
        for (path, label) in chunk {
            let prepared = std::fs::read(path)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|b| {
                    pre.prepare_bytes(&b, &path.display().to_string())
                        .map_err(|e| e.to_string())
                });
            match prepared {
                Ok(v) => {
                    x.extend(v);
                    labels.push(*label);
                    rows += 1;
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "skipped a validation image")
                }
            }
        }
        done += chunk.len();
        on_progress(done);
        if rows == 0 {
            continue;
        }
        let mirrored = mirror_rows(&x, width);
        p.extend(classifier.predict(&x, rows)?.into_iter().flatten());
        q.extend(classifier.predict(&mirrored, rows)?.into_iter().flatten());
    }
    if labels.is_empty() {
        return Err(EvalError::Input(
            "none of the validation images could be read".into(),
        ));
    }
    let rows = gate_table(&p, &q, &labels, k, &default_gates());
    let always = rows.last().expect("gates end with always").accuracy;
    let chosen = rows
        .iter()
        .position(|r| r.accuracy >= always - tolerance)
        .expect("mirroring everything meets its own accuracy");
    Ok(GateTuning {
        rows,
        chosen,
        images: labels.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_score_the_mean_of_the_two_passes_below_the_threshold() {
        // Two classes, three images. Image 0: sure and right; image 1: unsure, wrong alone,
        // right with its mirror; image 2: unsure and right alone, wrong with its mirror.
        let p = [0.9, 0.1, 0.45, 0.55, 0.6, 0.4];
        let q = [0.9, 0.1, 0.9, 0.1, 0.1, 0.9];
        let labels = [0, 0, 0];
        let rows = gate_table(
            &p,
            &q,
            &labels,
            2,
            &[Some(0.0), Some(0.58), Some(0.7), None],
        );
        let acc: Vec<f64> = rows.iter().map(|r| r.accuracy).collect();
        let mirrored: Vec<f64> = rows.iter().map(|r| r.mirrored).collect();
        assert_eq!(acc, [2.0 / 3.0, 1.0, 2.0 / 3.0, 2.0 / 3.0]);
        assert_eq!(mirrored, [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0]);
    }
}
