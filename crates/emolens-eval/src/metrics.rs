//! Classification metrics on a model's probabilities: the numbers scikit-learn's
//! `classification_report`, `confusion_matrix`, `roc_auc_score` and `top_k_accuracy_score` give,
//! plus calibration and baselines. Pure functions; no I/O.

use crate::error::EvalError;
use emolens_core::Emotion;
use serde::{Deserialize, Serialize};

/// Number of equal-width confidence bins used for the expected calibration error.
pub const ECE_BINS: usize = 15;
/// How many confidently wrong predictions are kept per true class.
pub const WRONG_PER_CLASS: usize = 8;

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// An averaged precision/recall/F1 (macro, weighted or micro) over all classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Average {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// A ROC curve (false-positive rate, true-positive rate), with its area.
/// `auc` is `None` when the class has no positives or no negatives (undefined).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    pub name: String,
    pub auc: Option<f64>,
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
}

/// One-vs-rest ROC: a curve per class, the micro curve over all (sample, class) pairs, and the
/// macro curve (per-class TPR interpolated on a common FPR grid and averaged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocSummary {
    pub per_class: Vec<RocCurve>,
    pub micro: RocCurve,
    /// Unweighted mean of the defined per-class AUCs (scikit-learn's `average='macro'`).
    pub macro_auc: Option<f64>,
    pub macro_curve: RocCurve,
}

/// One confidence bin of the reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    /// Mean top-1 confidence in the bin (0 when empty).
    pub mean_confidence: f64,
    /// Fraction of correct top-1 predictions in the bin (0 when empty).
    pub accuracy: f64,
}

/// Expected calibration error over [`ECE_BINS`] equal-width bins of top-1 confidence, with the
/// bins for the reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub ece: f64,
    pub bins: Vec<CalibrationBin>,
}

/// A trivial predictor's scores beside the model's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub name: String,
    pub description: String,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub weighted_f1: f64,
}

/// A prediction that was wrong with high confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WrongPrediction {
    /// Index of the sample in the evaluated order.
    pub index: usize,
    pub true_class: String,
    pub predicted_class: String,
    /// The probability the model gave its (wrong) top class.
    pub confidence: f64,
    /// The probability the model gave the true class.
    pub true_class_probability: f64,
}

/// How the model reads neutral faces: neutral's recall and the share of neutral faces read as
/// a negative emotion (angry, disgust, fear or sad), which pulls an ad's average reaction
/// negative. Taken from the confusion matrix; classes are recognised by emotion name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeutralReading {
    /// The model class recognised as neutral.
    pub neutral_class: String,
    /// Neutral faces evaluated (the neutral row's total).
    pub support: u64,
    /// Neutral faces read as neutral, over `support` (0 with no neutral faces).
    pub recall: f64,
    /// The model classes counted as negative (those whose emotion has negative valence).
    pub negative_classes: Vec<String>,
    /// Neutral faces read as one of `negative_classes`.
    pub as_negative: u64,
    /// `as_negative / support` (0 with no neutral faces).
    pub as_negative_share: f64,
}

/// Everything `evaluate` measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub classes: Vec<String>,
    pub n_samples: usize,
    pub accuracy: f64,
    pub top2_accuracy: f64,
    pub per_class: Vec<ClassMetrics>,
    pub macro_avg: Average,
    pub weighted_avg: Average,
    pub micro_avg: Average,
    /// Counts; rows are true classes, columns predicted classes.
    pub confusion: Vec<Vec<u64>>,
    /// Each row divided by its support (a row of zeros for an empty class).
    pub confusion_normalised: Vec<Vec<f64>>,
    pub roc: RocSummary,
    pub calibration: Calibration,
    pub baselines: Vec<Baseline>,
    /// Per true class, its most confidently wrong predictions, most confident first.
    pub confidently_wrong: Vec<Vec<WrongPrediction>>,
    /// Neutral faces read as negative emotions; `None` when the model has no neutral class.
    #[serde(default)]
    pub neutral: Option<NeutralReading>,
}

/// Validates the inputs shared by every metric here.
fn check_inputs(labels: &[usize], probs: &[Vec<f32>], k: usize) -> Result<(), EvalError> {
    if k < 2 {
        return Err(EvalError::Input(format!(
            "need at least two classes, got {k}"
        )));
    }
    if labels.len() != probs.len() {
        return Err(EvalError::Input(format!(
            "{} labels but {} probability rows",
            labels.len(),
            probs.len()
        )));
    }
    if labels.is_empty() {
        return Err(EvalError::Input(
            "no samples to evaluate; check that the data folder holds labelled images".into(),
        ));
    }
    for (i, (&y, row)) in labels.iter().zip(probs).enumerate() {
        if y >= k {
            return Err(EvalError::Input(format!(
                "sample {i}: label index {y} is out of range for {k} classes"
            )));
        }
        if row.len() != k {
            return Err(EvalError::Input(format!(
                "sample {i}: {} probabilities for {k} classes",
                row.len()
            )));
        }
        if row.iter().any(|p| !p.is_finite()) {
            return Err(EvalError::Input(format!(
                "sample {i}: non-finite probability {row:?}"
            )));
        }
    }
    Ok(())
}

/// Index of the largest value; the first on ties (as numpy's `argmax`).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    best
}

/// Fraction of samples whose true class is among the `k` highest scores. Ties are ranked as
/// scikit-learn's `top_k_accuracy_score` does (a stable ascending sort, reversed: among equal
/// scores the higher class index ranks first).
pub fn top_k_accuracy(labels: &[usize], probs: &[Vec<f32>], k: usize) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    let hits = labels
        .iter()
        .zip(probs)
        .filter(|(&y, row)| {
            let s = row[y];
            let rank = row
                .iter()
                .enumerate()
                .filter(|&(j, &v)| v > s || (v == s && j > y))
                .count();
            rank < k
        })
        .count();
    hits as f64 / labels.len() as f64
}

/// Divides, giving 0 for a zero denominator (scikit-learn's `zero_division=0`).
fn safe_div(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// Per-class precision/recall/F1 and the three averages from a (possibly fractional, for
/// expected-value baselines) confusion matrix.
fn prf_from_confusion(
    confusion: &[Vec<f64>],
    classes: &[String],
) -> (Vec<ClassMetrics>, Average, Average, Average) {
    let k = classes.len();
    let mut per_class = Vec::with_capacity(k);
    let (mut tp_sum, mut pred_sum, mut true_sum) = (0.0, 0.0, 0.0);
    for c in 0..k {
        let tp = confusion[c][c];
        let support: f64 = confusion[c].iter().sum();
        let predicted: f64 = confusion.iter().map(|row| row[c]).sum();
        let fp = predicted - tp;
        let fn_ = support - tp;
        tp_sum += tp;
        pred_sum += predicted;
        true_sum += support;
        per_class.push(ClassMetrics {
            class: classes[c].clone(),
            precision: safe_div(tp, predicted),
            recall: safe_div(tp, support),
            // The count form scikit-learn uses since 1.3; 0 when tp + fp + fn is 0.
            f1: safe_div(2.0 * tp, 2.0 * tp + fp + fn_),
            support: support.round() as u64,
        });
    }
    let total: u64 = per_class.iter().map(|m| m.support).sum();
    let mean = |f: fn(&ClassMetrics) -> f64| per_class.iter().map(f).sum::<f64>() / k as f64;
    let macro_avg = Average {
        precision: mean(|m| m.precision),
        recall: mean(|m| m.recall),
        f1: mean(|m| m.f1),
        support: total,
    };
    let weighted = |f: fn(&ClassMetrics) -> f64| {
        safe_div(
            per_class
                .iter()
                .map(|m| f(m) * m.support as f64)
                .sum::<f64>(),
            total as f64,
        )
    };
    let weighted_avg = Average {
        precision: weighted(|m| m.precision),
        recall: weighted(|m| m.recall),
        f1: weighted(|m| m.f1),
        support: total,
    };
    let micro_p = safe_div(tp_sum, pred_sum);
    let micro_r = safe_div(tp_sum, true_sum);
    let micro_avg = Average {
        precision: micro_p,
        recall: micro_r,
        f1: safe_div(2.0 * tp_sum, pred_sum + true_sum),
        support: total,
    };
    (per_class, macro_avg, weighted_avg, micro_avg)
}

/// Confusion matrix in counts from true and predicted class indices.
pub fn confusion_matrix(labels: &[usize], predicted: &[usize], k: usize) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0u64; k]; k];
    for (&y, &p) in labels.iter().zip(predicted) {
        m[y][p] += 1;
    }
    m
}

/// ROC curve of binary targets against scores: the points where the threshold passes each
/// distinct score, starting at (0, 0), and the trapezoidal area under it (ties give a diagonal
/// segment, as in scikit-learn). Collinear intermediate points are dropped from the returned
/// curve (scikit-learn's `drop_intermediate`), not from the area.
pub fn roc_curve(name: &str, positives: &[bool], scores: &[f64]) -> RocCurve {
    let n_pos = positives.iter().filter(|&&p| p).count() as f64;
    let n_neg = positives.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return RocCurve {
            name: name.to_string(),
            auc: None,
            fpr: Vec::new(),
            tpr: Vec::new(),
        };
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tps, mut fps) = (vec![0.0f64], vec![0.0f64]);
    let (mut tp, mut fp) = (0.0, 0.0);
    for (pos, &i) in order.iter().enumerate() {
        if positives[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order
            .get(pos + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if last_of_tie {
            tps.push(tp);
            fps.push(fp);
        }
    }
    let mut auc = 0.0;
    for w in 1..tps.len() {
        auc += (fps[w] - fps[w - 1]) * (tps[w] + tps[w - 1]) / 2.0;
    }
    auc /= n_pos * n_neg;
    // Keep the ends and every point where the curve changes direction.
    let mut fpr = Vec::new();
    let mut tpr = Vec::new();
    for i in 0..tps.len() {
        let keep = i == 0
            || i + 1 == tps.len()
            || (fps[i + 1] - 2.0 * fps[i] + fps[i - 1]) != 0.0
            || (tps[i + 1] - 2.0 * tps[i] + tps[i - 1]) != 0.0;
        if keep {
            fpr.push(fps[i] / n_neg);
            tpr.push(tps[i] / n_pos);
        }
    }
    RocCurve {
        name: name.to_string(),
        auc: Some(auc),
        fpr,
        tpr,
    }
}

/// Linear interpolation of a monotone curve at `x` (the right-most value on vertical steps).
fn interp(x: f64, xs: &[f64], ys: &[f64]) -> f64 {
    let idx = xs.partition_point(|&v| v <= x);
    if idx == 0 {
        return ys[0];
    }
    if idx >= xs.len() {
        return ys[ys.len() - 1];
    }
    let (x0, x1, y0, y1) = (xs[idx - 1], xs[idx], ys[idx - 1], ys[idx]);
    if x1 == x0 {
        y1
    } else {
        y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    }
}

fn roc_summary(labels: &[usize], probs: &[Vec<f32>], classes: &[String]) -> RocSummary {
    let k = classes.len();
    let per_class: Vec<RocCurve> = (0..k)
        .map(|c| {
            let pos: Vec<bool> = labels.iter().map(|&y| y == c).collect();
            let scores: Vec<f64> = probs.iter().map(|r| r[c] as f64).collect();
            roc_curve(&classes[c], &pos, &scores)
        })
        .collect();
    let mut pos = Vec::with_capacity(labels.len() * k);
    let mut scores = Vec::with_capacity(labels.len() * k);
    for (&y, row) in labels.iter().zip(probs) {
        for (c, &p) in row.iter().enumerate() {
            pos.push(y == c);
            scores.push(p as f64);
        }
    }
    let micro = roc_curve("micro-average", &pos, &scores);
    let defined: Vec<&RocCurve> = per_class.iter().filter(|c| c.auc.is_some()).collect();
    let macro_auc = if defined.is_empty() {
        None
    } else {
        Some(defined.iter().filter_map(|c| c.auc).sum::<f64>() / defined.len() as f64)
    };
    let mut grid: Vec<f64> = defined.iter().flat_map(|c| c.fpr.iter().copied()).collect();
    grid.sort_unstable_by(f64::total_cmp);
    grid.dedup();
    let macro_tpr: Vec<f64> = grid
        .iter()
        .map(|&x| {
            defined
                .iter()
                .map(|c| interp(x, &c.fpr, &c.tpr))
                .sum::<f64>()
                / defined.len() as f64
        })
        .collect();
    RocSummary {
        per_class,
        micro,
        macro_auc,
        macro_curve: RocCurve {
            name: "macro-average".into(),
            auc: macro_auc,
            fpr: grid,
            tpr: macro_tpr,
        },
    }
}

/// Expected calibration error of top-1 confidence over `n_bins` equal-width bins `(lo, hi]`.
pub fn calibration(labels: &[usize], probs: &[Vec<f32>], n_bins: usize) -> Calibration {
    let mut count = vec![0u64; n_bins];
    let mut conf_sum = vec![0.0f64; n_bins];
    let mut correct = vec![0u64; n_bins];
    for (&y, row) in labels.iter().zip(probs) {
        let pred = argmax(row);
        let conf = row[pred] as f64;
        let bin = ((conf * n_bins as f64).ceil() as usize).clamp(1, n_bins) - 1;
        count[bin] += 1;
        conf_sum[bin] += conf;
        correct[bin] += u64::from(pred == y);
    }
    let n = labels.len() as f64;
    let mut ece = 0.0;
    let bins = (0..n_bins)
        .map(|b| {
            let c = count[b] as f64;
            let mean_confidence = safe_div(conf_sum[b], c);
            let accuracy = safe_div(correct[b] as f64, c);
            ece += (c / n) * (accuracy - mean_confidence).abs();
            CalibrationBin {
                lower: b as f64 / n_bins as f64,
                upper: (b + 1) as f64 / n_bins as f64,
                count: count[b],
                mean_confidence,
                accuracy,
            }
        })
        .collect();
    Calibration { ece, bins }
}

fn baselines(labels: &[usize], classes: &[String]) -> Vec<Baseline> {
    let k = classes.len();
    let n = labels.len() as f64;
    let mut support = vec![0f64; k];
    for &y in labels {
        support[y] += 1.0;
    }
    let majority = (0..k)
        .max_by(|&a, &b| support[a].total_cmp(&support[b]).then(b.cmp(&a)))
        .unwrap_or(0);
    let mut maj_conf = vec![vec![0f64; k]; k];
    for c in 0..k {
        maj_conf[c][majority] = support[c];
    }
    let (_, maj_macro, maj_weighted, maj_micro) = prf_from_confusion(&maj_conf, classes);
    // Expected confusion of a predictor that picks uniformly at random.
    let uni_conf: Vec<Vec<f64>> = (0..k).map(|c| vec![support[c] / k as f64; k]).collect();
    let (_, uni_macro, uni_weighted, _) = prf_from_confusion(&uni_conf, classes);
    vec![
        Baseline {
            name: "majority class".into(),
            description: format!(
                "always predicts '{}', the most frequent class of the evaluated data ({:.1} %)",
                classes[majority],
                100.0 * support[majority] / n
            ),
            accuracy: maj_micro.f1,
            macro_f1: maj_macro.f1,
            weighted_f1: maj_weighted.f1,
        },
        Baseline {
            name: "uniform random".into(),
            description: format!(
                "picks one of the {k} classes uniformly at random (expected values)"
            ),
            accuracy: 1.0 / k as f64,
            macro_f1: uni_macro.f1,
            weighted_f1: uni_weighted.f1,
        },
    ]
}

fn confidently_wrong(
    labels: &[usize],
    probs: &[Vec<f32>],
    classes: &[String],
    per_class: usize,
) -> Vec<Vec<WrongPrediction>> {
    let mut out: Vec<Vec<WrongPrediction>> = vec![Vec::new(); classes.len()];
    for (i, (&y, row)) in labels.iter().zip(probs).enumerate() {
        let p = argmax(row);
        if p != y {
            out[y].push(WrongPrediction {
                index: i,
                true_class: classes[y].clone(),
                predicted_class: classes[p].clone(),
                confidence: row[p] as f64,
                true_class_probability: row[y] as f64,
            });
        }
    }
    for list in &mut out {
        list.sort_by(|a, b| {
            b.confidence
                .total_cmp(&a.confidence)
                .then(a.index.cmp(&b.index))
        });
        list.truncate(per_class);
    }
    out
}

/// Neutral's recall and the neutral faces read as angry, disgust, fear or sad, from a count
/// confusion matrix (rows true, columns predicted) over `classes`. `None` when no class is
/// neutral by name (synonyms included, e.g. `calm`).
pub fn neutral_reading(confusion: &[Vec<u64>], classes: &[String]) -> Option<NeutralReading> {
    let emotion = |c: &String| Emotion::from_label(c);
    let n = classes
        .iter()
        .position(|c| emotion(c) == Some(Emotion::Neutral))?;
    let negative: Vec<usize> = (0..classes.len())
        .filter(|&c| emotion(&classes[c]).is_some_and(|e| e.valence() < 0))
        .collect();
    let row = &confusion[n];
    let support: u64 = row.iter().sum();
    let as_negative: u64 = negative.iter().map(|&c| row[c]).sum();
    Some(NeutralReading {
        neutral_class: classes[n].clone(),
        support,
        recall: safe_div(row[n] as f64, support as f64),
        negative_classes: negative.iter().map(|&c| classes[c].clone()).collect(),
        as_negative,
        as_negative_share: safe_div(as_negative as f64, support as f64),
    })
}

/// Evaluates class probabilities against true labels.
///
/// `labels[i]` is the true class index of sample `i` into `classes`; `probs[i]` its
/// probabilities in the same class order. Classes with no samples are reported with zero
/// support and zero scores (no division by zero).
pub fn evaluate(
    labels: &[usize],
    probs: &[Vec<f32>],
    classes: &[String],
) -> Result<EvalReport, EvalError> {
    let k = classes.len();
    check_inputs(labels, probs, k)?;
    let predicted: Vec<usize> = probs.iter().map(|r| argmax(r)).collect();
    let confusion = confusion_matrix(labels, &predicted, k);
    let conf_f: Vec<Vec<f64>> = confusion
        .iter()
        .map(|r| r.iter().map(|&v| v as f64).collect())
        .collect();
    let (per_class, macro_avg, weighted_avg, micro_avg) = prf_from_confusion(&conf_f, classes);
    let correct: u64 = (0..k).map(|c| confusion[c][c]).sum();
    let confusion_normalised = confusion
        .iter()
        .map(|row| {
            let s: u64 = row.iter().sum();
            row.iter().map(|&v| safe_div(v as f64, s as f64)).collect()
        })
        .collect();
    Ok(EvalReport {
        classes: classes.to_vec(),
        n_samples: labels.len(),
        accuracy: correct as f64 / labels.len() as f64,
        top2_accuracy: top_k_accuracy(labels, probs, 2),
        per_class,
        macro_avg,
        weighted_avg,
        micro_avg,
        confusion_normalised,
        roc: roc_summary(labels, probs, classes),
        calibration: calibration(labels, probs, ECE_BINS),
        baselines: baselines(labels, classes),
        confidently_wrong: confidently_wrong(labels, probs, classes, WRONG_PER_CLASS),
        neutral: neutral_reading(&confusion, classes),
        confusion,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn perfect_predictions_score_one_and_empty_class_scores_zero() {
        let labels = vec![0, 1, 1, 0];
        let probs = vec![
            vec![0.9, 0.05, 0.05],
            vec![0.1, 0.8, 0.1],
            vec![0.2, 0.7, 0.1],
            vec![0.6, 0.3, 0.1],
        ];
        let r = evaluate(&labels, &probs, &names(3)).unwrap();
        assert_eq!(r.accuracy, 1.0);
        assert_eq!(r.per_class[2].support, 0);
        assert_eq!(r.per_class[2].precision, 0.0);
        assert_eq!(r.per_class[2].f1, 0.0);
        assert!((r.macro_avg.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.weighted_avg.f1, 1.0);
        assert_eq!(r.roc.per_class[2].auc, None);
        assert_eq!(r.roc.per_class[0].auc, Some(1.0));
        assert_eq!(r.confusion_normalised[2], vec![0.0; 3]);
    }

    #[test]
    fn roc_auc_counts_ties_as_half() {
        // One positive and one negative with the same score: AUC 0.5.
        let c = roc_curve("t", &[true, false], &[0.5, 0.5]);
        assert_eq!(c.auc, Some(0.5));
        // Positive above negative: 1; below: 0.
        assert_eq!(roc_curve("t", &[true, false], &[0.9, 0.1]).auc, Some(1.0));
        assert_eq!(roc_curve("t", &[true, false], &[0.1, 0.9]).auc, Some(0.0));
    }

    #[test]
    fn ece_of_hand_made_bins() {
        // Two samples at confidence 0.9 (one right), two at 0.5 (both right).
        let labels = vec![0, 1, 0, 1];
        let probs = vec![
            vec![0.9, 0.1],
            vec![0.9, 0.1],
            vec![0.5, 0.5],
            vec![0.5, 0.5],
        ];
        // Sample 3: tie -> argmax picks class 0, wrong. Bin of 0.5: acc 0.5, conf 0.5 -> 0.
        // Bin of 0.9: acc 0.5, conf 0.9 -> 0.4 * 2/4 = 0.2.
        let c = calibration(&labels, &probs, 15);
        assert!((c.ece - 0.2).abs() < 1e-6, "{}", c.ece);
        assert_eq!(c.bins.iter().map(|b| b.count).sum::<u64>(), 4);
        assert_eq!(c.bins[7].count, 2); // 0.5 lies in (7/15, 8/15]
        assert_eq!(c.bins[13].count, 2); // 0.9 lies in (13/15, 14/15]
    }

    #[test]
    fn top_k_ties_follow_sklearn() {
        // Equal scores: the higher index ranks first, so class 0 is 3rd for k=2.
        let probs = vec![vec![0.3, 0.3, 0.3, 0.1]];
        assert_eq!(top_k_accuracy(&[0], &probs, 2), 0.0);
        assert_eq!(top_k_accuracy(&[2], &probs, 2), 1.0);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let p = vec![vec![0.5, 0.5]];
        assert!(evaluate(&[2], &p, &names(2)).is_err());
        assert!(evaluate(&[0, 1], &p, &names(2)).is_err());
        assert!(evaluate(&[], &[], &names(2)).is_err());
        assert!(evaluate(&[0], &[vec![f32::NAN, 0.5]], &names(2)).is_err());
        assert!(evaluate(&[0], &[vec![0.5, 0.3, 0.2]], &names(2)).is_err());
    }

    #[test]
    fn neutral_reading_counts_negative_columns_by_emotion() {
        // A model in another order with synonyms: anger, happiness, calm, sadness, surprise.
        let classes: Vec<String> = ["anger", "happiness", "calm", "sadness", "surprise"]
            .map(String::from)
            .to_vec();
        let cm = vec![
            vec![5, 0, 0, 0, 0],
            vec![0, 5, 0, 0, 0],
            vec![3, 1, 10, 4, 2],
            vec![0, 0, 0, 5, 0],
            vec![0, 0, 0, 0, 5],
        ];
        let r = neutral_reading(&cm, &classes).unwrap();
        assert_eq!(r.neutral_class, "calm");
        assert_eq!(r.support, 20);
        assert_eq!(r.negative_classes, vec!["anger", "sadness"]);
        assert_eq!(r.as_negative, 7);
        assert!((r.as_negative_share - 0.35).abs() < 1e-12);
        assert!((r.recall - 0.5).abs() < 1e-12);
        // No neutral class, no reading; no neutral faces, zero shares.
        assert!(neutral_reading(&cm, &names(5)).is_none());
        let mut empty = cm.clone();
        empty[2] = vec![0; 5];
        let r = neutral_reading(&empty, &classes).unwrap();
        assert_eq!((r.support, r.recall, r.as_negative_share), (0, 0.0, 0.0));
    }

    #[test]
    fn baselines_match_hand_computation() {
        let labels = vec![0, 0, 0, 1];
        let probs = vec![vec![0.6, 0.4]; 4];
        let r = evaluate(&labels, &probs, &names(2)).unwrap();
        let maj = &r.baselines[0];
        assert_eq!(maj.accuracy, 0.75);
        // Class 0: P=0.75, R=1, F1=6/7; class 1: 0.
        assert!((maj.macro_f1 - 3.0 / 7.0).abs() < 1e-12);
        assert_eq!(r.baselines[1].accuracy, 0.5);
    }
}
