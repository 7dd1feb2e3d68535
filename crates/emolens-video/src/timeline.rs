//! Per viewer and per second of video time: the mean probabilities of the emotions, valence,
//! how many frames were sampled and the share of them that show the viewer's face.
//!
//! A face counts towards the means when it was classified (its box reached the minimum face
//! size), whether or not it passed the quality gate: averaging the probabilities already weighs
//! an unsure face's spread-out answer, and dropping such faces would bias a timeline towards
//! the expressions the classifier is sure of. `uncertain_faces` says how many were unsure.

use crate::analyze::FrameResult;
use emolens_core::Emotion;
use emolens_faces::ClassProb;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One second of one viewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewerSecond {
    /// Second of video time (`second` <= t < `second + 1`).
    pub second: u32,
    /// Frames sampled in this second (with or without this viewer).
    pub frames: usize,
    /// Sampled frames in which this viewer's face was found.
    pub frames_with_face: usize,
    /// `frames_with_face / frames` (0 when no frame was sampled in the second).
    pub face_share: f64,
    /// Faces that were classified (the means are over these).
    pub classified_faces: usize,
    /// Classified faces the quality gate marked uncertain (included in the means).
    pub uncertain_faces: usize,
    /// Mean probabilities in model order; empty when no face was classified this second.
    pub probabilities: Vec<ClassProb>,
    /// Mean valence (P(positive) - P(negative), `Emotion::valence`), -1..1; `None` without faces.
    pub valence: Option<f64>,
    /// The emotion with the highest mean probability; `None` without faces.
    pub top_emotion: Option<String>,
}

/// One viewer over the video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewerTimeline {
    pub viewer: u32,
    /// Time of the first and last frame with this viewer, seconds.
    pub first_s: f64,
    pub last_s: f64,
    /// Sampled frames with this viewer's face.
    pub frames_with_face: usize,
    /// Mean probabilities over all of this viewer's classified faces.
    pub mean_probabilities: Vec<ClassProb>,
    pub valence: Option<f64>,
    pub top_emotion: Option<String>,
    /// Every second from the viewer's first to their last.
    pub seconds: Vec<ViewerSecond>,
}

/// The valence sign of each class (unknown class names count as 0).
pub fn valence_signs(classes: &[String]) -> Vec<f64> {
    classes
        .iter()
        .map(|c| Emotion::from_label(c).map_or(0.0, |e| e.valence() as f64))
        .collect()
}

#[derive(Default)]
struct Acc {
    faces: usize,
    classified: usize,
    uncertain: usize,
    sums: Vec<f64>,
}

impl Acc {
    fn add(&mut self, probs: &[ClassProb], uncertain: bool) {
        self.faces += 1;
        if probs.is_empty() {
            return;
        }
        if self.sums.len() != probs.len() {
            self.sums = vec![0.0; probs.len()];
        }
        for (s, p) in self.sums.iter_mut().zip(probs) {
            *s += p.probability as f64;
        }
        self.classified += 1;
        if uncertain {
            self.uncertain += 1;
        }
    }

    fn means(
        &self,
        classes: &[String],
        signs: &[f64],
    ) -> (Vec<ClassProb>, Option<f64>, Option<String>) {
        if self.classified == 0 {
            return (Vec::new(), None, None);
        }
        let n = self.classified as f64;
        let means: Vec<f64> = self.sums.iter().map(|s| s / n).collect();
        let valence = means.iter().zip(signs).map(|(p, s)| p * s).sum();
        let top = means
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| classes[i].clone());
        let probs = classes
            .iter()
            .zip(&means)
            .map(|(c, &p)| ClassProb {
                emotion: c.clone(),
                probability: p as f32,
            })
            .collect();
        (probs, Some(valence), top)
    }
}

/// Builds the per-viewer, per-second timelines from the tracked frames.
pub fn viewer_timelines(frames: &[FrameResult], classes: &[String]) -> Vec<ViewerTimeline> {
    let signs = valence_signs(classes);
    let second_of = |t: f64| t.max(0.0).floor() as u32;
    let mut frames_per_second: BTreeMap<u32, usize> = BTreeMap::new();
    for f in frames {
        *frames_per_second.entry(second_of(f.time_s)).or_default() += 1;
    }
    struct V {
        first: f64,
        last: f64,
        total: Acc,
        per_second: BTreeMap<u32, Acc>,
    }
    let mut viewers: BTreeMap<u32, V> = BTreeMap::new();
    for f in frames {
        for face in &f.faces {
            let v = viewers.entry(face.viewer).or_insert_with(|| V {
                first: f.time_s,
                last: f.time_s,
                total: Acc::default(),
                per_second: BTreeMap::new(),
            });
            v.last = f.time_s;
            v.total.add(&face.face.probabilities, face.face.uncertain);
            v.per_second
                .entry(second_of(f.time_s))
                .or_default()
                .add(&face.face.probabilities, face.face.uncertain);
        }
    }
    viewers
        .into_iter()
        .map(|(viewer, v)| {
            let seconds = (second_of(v.first)..=second_of(v.last))
                .map(|second| {
                    let frames = frames_per_second.get(&second).copied().unwrap_or(0);
                    let empty = Acc::default();
                    let acc = v.per_second.get(&second).unwrap_or(&empty);
                    let (probabilities, valence, top_emotion) = acc.means(classes, &signs);
                    ViewerSecond {
                        second,
                        frames,
                        frames_with_face: acc.faces,
                        face_share: if frames == 0 {
                            0.0
                        } else {
                            acc.faces as f64 / frames as f64
                        },
                        classified_faces: acc.classified,
                        uncertain_faces: acc.uncertain,
                        probabilities,
                        valence,
                        top_emotion,
                    }
                })
                .collect();
            let (mean_probabilities, valence, top_emotion) = v.total.means(classes, &signs);
            ViewerTimeline {
                viewer,
                first_s: v.first,
                last_s: v.last,
                frames_with_face: v.total.faces,
                mean_probabilities,
                valence,
                top_emotion,
                seconds,
            }
        })
        .collect()
}
