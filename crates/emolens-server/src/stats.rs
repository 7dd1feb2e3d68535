//! Ad-level statistics: the emotion distribution of an ad's faces, its valence score, and the
//! differences between ads with bootstrap confidence intervals.

use emolens_core::Emotion;
use serde::Serialize;
use std::collections::BTreeMap;

/// Bootstrap resamples used for every interval. 2,000 keeps the 2.5 % / 97.5 % quantiles stable
/// to about 0.005 on a few hundred faces while a comparison still takes milliseconds.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;
/// Fixed seed: the same faces always give the same intervals (reports are reproducible).
const BOOTSTRAP_SEED: u64 = 0x0E30_1E45;
/// Fewest counted faces for which an ad gets a 95 % interval, and for which a comparison may be
/// called significant. A percentile bootstrap resamples the faces it has: with n faces it can
/// only produce means of those n values, so for tiny n the interval is far too narrow (two faces
/// give at most three distinct means, and two identical faces a zero-width interval). Around ten
/// observations is the usual floor below which the percentile bootstrap of a mean under-covers
/// badly (Efron & Tibshirani, ch. 13; Davison & Hinkley, 2.7); under it we report the value
/// alone and say why.
pub const MIN_FACES_FOR_INTERVAL: usize = 10;

/// One classified face as the statistics see it.
#[derive(Debug, Clone)]
pub struct FaceSample {
    /// Probabilities in the model's class order.
    pub probabilities: Vec<f32>,
    /// Index of the top class.
    pub top: usize,
    /// Below the confidence or quality threshold: counted apart, left out of the distribution.
    pub uncertain: bool,
}

/// A value with its 95 % bootstrap interval, where the sample allows one.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Estimate {
    pub value: f64,
    /// Interval bounds; both `None` (JSON `null`) when the sample cannot carry an interval.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Why there is no interval (`None` when there is one): `too few faces (2 < 10)`, or
    /// `no variation between faces (...)` when every face gives the same value.
    pub interval_note: Option<String>,
}

impl Estimate {
    /// True when an interval is given and it lies wholly above or below zero.
    pub fn excludes_zero(&self) -> bool {
        matches!((self.ci_low, self.ci_high), (Some(lo), Some(hi)) if lo > 0.0 || hi < 0.0)
    }
}

/// The note for `n` faces under the minimum.
fn too_few(n: usize) -> String {
    format!("too few faces ({n} < {MIN_FACES_FOR_INTERVAL})")
}

/// A value without an interval, and why.
fn point(value: f64, note: String) -> Estimate {
    Estimate {
        value,
        ci_low: None,
        ci_high: None,
        interval_note: Some(note),
    }
}

/// Summary of one ad's faces.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Distribution {
    /// Faces counted in the distribution (not uncertain).
    pub faces: usize,
    /// Faces left out as uncertain.
    pub uncertain_faces: usize,
    /// Mean probability of each class over the counted faces.
    pub mean_probabilities: BTreeMap<String, f64>,
    /// Share of counted faces whose top class is each class, with intervals.
    pub top_share: BTreeMap<String, Estimate>,
    /// Mean valence (P(positive) - P(negative)) per face, in [-1, 1], with interval; `None`
    /// when no face was counted.
    pub valence: Option<Estimate>,
}

/// The valence sign of each class, by name (`Emotion::valence`; unknown names count as 0).
pub fn valence_signs(classes: &[String]) -> Vec<f64> {
    classes
        .iter()
        .map(|c| Emotion::from_label(c).map_or(0.0, |e| e.valence() as f64))
        .collect()
}

/// Valence of one face: sum of probabilities weighted by the classes' signs.
pub fn face_valence(probabilities: &[f32], signs: &[f64]) -> f64 {
    probabilities
        .iter()
        .zip(signs)
        .map(|(p, s)| *p as f64 * s)
        .sum()
}

/// A small, fast, seedable generator (SplitMix64) for resampling; statistical quality is ample
/// for bootstrap indices and it keeps results reproducible without another dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The percentile interval of `draws` around `value`; absent when the draws do not vary (every
/// face gave the same value: nothing to resample, and a zero-width interval would read as
/// certainty).
fn interval(mut draws: Vec<f64>, value: f64, no_variation: &str) -> Estimate {
    draws.sort_by(|a, b| a.total_cmp(b));
    let (lo, hi) = (quantile(&draws, 0.025), quantile(&draws, 0.975));
    let spread = draws.last().zip(draws.first()).map_or(0.0, |(l, f)| l - f);
    if spread.is_nan() || spread <= 1e-12 {
        return point(value, no_variation.to_string());
    }
    Estimate {
        value,
        ci_low: Some(lo),
        ci_high: Some(hi),
        interval_note: None,
    }
}

/// A note for a single ad whose faces all give the same value.
fn same_value(n: usize) -> String {
    format!("no variation between faces (all {n} give the same value)")
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Bootstrap means of `values` (resampling with replacement).
fn bootstrap_means(values: &[f64], rng: &mut SplitMix64) -> Vec<f64> {
    let n = values.len();
    (0..BOOTSTRAP_RESAMPLES)
        .map(|_| (0..n).map(|_| values[rng.below(n)]).sum::<f64>() / n as f64)
        .collect()
}

/// Bootstrap class shares of `tops` (one row of `k` shares per resample).
fn bootstrap_shares(tops: &[usize], k: usize, rng: &mut SplitMix64) -> Vec<Vec<f64>> {
    let n = tops.len();
    (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let mut counts = vec![0usize; k];
            for _ in 0..n {
                counts[tops[rng.below(n)]] += 1;
            }
            counts.iter().map(|&c| c as f64 / n as f64).collect()
        })
        .collect()
}

/// Summarises one ad's faces.
pub fn distribution(classes: &[String], faces: &[FaceSample]) -> Distribution {
    let k = classes.len();
    let signs = valence_signs(classes);
    let counted: Vec<&FaceSample> = faces
        .iter()
        .filter(|f| !f.uncertain && f.probabilities.len() == k && f.top < k)
        .collect();
    let n = counted.len();
    let mut mean_probabilities = BTreeMap::new();
    let mut top_share = BTreeMap::new();
    let mut valence = None;
    if n > 0 {
        let mut rng = SplitMix64(BOOTSTRAP_SEED);
        for (c, name) in classes.iter().enumerate() {
            let m = counted
                .iter()
                .map(|f| f.probabilities[c] as f64)
                .sum::<f64>()
                / n as f64;
            mean_probabilities.insert(name.clone(), m);
        }
        let tops: Vec<usize> = counted.iter().map(|f| f.top).collect();
        let vals: Vec<f64> = counted
            .iter()
            .map(|f| face_valence(&f.probabilities, &signs))
            .collect();
        if n < MIN_FACES_FOR_INTERVAL {
            for (c, name) in classes.iter().enumerate() {
                let share = tops.iter().filter(|&&t| t == c).count() as f64 / n as f64;
                top_share.insert(name.clone(), point(share, too_few(n)));
            }
            valence = Some(point(mean(&vals), too_few(n)));
        } else {
            let note = same_value(n);
            let draws = bootstrap_shares(&tops, k, &mut rng);
            for (c, name) in classes.iter().enumerate() {
                let share = tops.iter().filter(|&&t| t == c).count() as f64 / n as f64;
                let col: Vec<f64> = draws.iter().map(|row| row[c]).collect();
                top_share.insert(name.clone(), interval(col, share, &note));
            }
            let draws = bootstrap_means(&vals, &mut rng);
            valence = Some(interval(draws, mean(&vals), &note));
        }
    }
    Distribution {
        faces: n,
        uncertain_faces: faces.len() - n,
        mean_probabilities,
        top_share,
        valence,
    }
}

/// Difference of one ad against the baseline ad.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// Valence of this ad minus the baseline's, with a 95 % bootstrap interval (the two ads'
    /// faces resampled independently) when both ads have at least [`MIN_FACES_FOR_INTERVAL`]
    /// faces; `None` when either ad has no counted face.
    pub valence: Option<Estimate>,
    /// Difference in top-class share per class.
    pub top_share: BTreeMap<String, Estimate>,
    /// True only when both ads meet the minimum and the valence interval excludes zero.
    pub valence_differs: bool,
    /// The verdict in words, machine-readable: `significant`, `not_significant`,
    /// `too_few_faces`, `no_variation` or `no_faces`.
    pub valence_significance: &'static str,
}

/// Compares `ad` against `baseline`.
pub fn difference(classes: &[String], baseline: &[FaceSample], ad: &[FaceSample]) -> Difference {
    let k = classes.len();
    let signs = valence_signs(classes);
    let keep = |faces: &[FaceSample]| -> Vec<FaceSample> {
        faces
            .iter()
            .filter(|f| !f.uncertain && f.probabilities.len() == k && f.top < k)
            .cloned()
            .collect()
    };
    let (a, b) = (keep(baseline), keep(ad));
    if a.is_empty() || b.is_empty() {
        return Difference {
            valence: None,
            top_share: BTreeMap::new(),
            valence_differs: false,
            valence_significance: "no_faces",
        };
    }
    let fewest = a.len().min(b.len());
    let mut rng = SplitMix64(BOOTSTRAP_SEED ^ 0x5A5A);
    let va: Vec<f64> = a
        .iter()
        .map(|f| face_valence(&f.probabilities, &signs))
        .collect();
    let vb: Vec<f64> = b
        .iter()
        .map(|f| face_valence(&f.probabilities, &signs))
        .collect();
    let ta: Vec<usize> = a.iter().map(|f| f.top).collect();
    let tb: Vec<usize> = b.iter().map(|f| f.top).collect();
    let share =
        |t: &[usize], c: usize| t.iter().filter(|&&x| x == c).count() as f64 / t.len() as f64;
    let value = mean(&vb) - mean(&va);
    let mut top_share = BTreeMap::new();
    if fewest < MIN_FACES_FOR_INTERVAL {
        for (c, name) in classes.iter().enumerate() {
            top_share.insert(
                name.clone(),
                point(share(&tb, c) - share(&ta, c), too_few(fewest)),
            );
        }
        return Difference {
            valence: Some(point(value, too_few(fewest))),
            top_share,
            valence_differs: false,
            valence_significance: "too_few_faces",
        };
    }
    let note = "no variation between faces in either ad";
    let da = bootstrap_means(&va, &mut rng);
    let db = bootstrap_means(&vb, &mut rng);
    let diffs: Vec<f64> = db.iter().zip(&da).map(|(y, x)| y - x).collect();
    let valence = interval(diffs, value, note);
    let sa = bootstrap_shares(&ta, k, &mut rng);
    let sb = bootstrap_shares(&tb, k, &mut rng);
    for (c, name) in classes.iter().enumerate() {
        let col: Vec<f64> = sb.iter().zip(&sa).map(|(y, x)| y[c] - x[c]).collect();
        top_share.insert(
            name.clone(),
            interval(col, share(&tb, c) - share(&ta, c), note),
        );
    }
    let valence_differs = valence.excludes_zero();
    Difference {
        valence_significance: if valence.ci_low.is_none() {
            "no_variation"
        } else if valence_differs {
            "significant"
        } else {
            "not_significant"
        },
        valence_differs,
        valence: Some(valence),
        top_share,
    }
}

/// Fewest viewers in a second of a reaction-video timeline for a 95 % interval (and for a
/// difference between two ads' seconds to be called significant): the same floor, for the same
/// reason, as [`MIN_FACES_FOR_INTERVAL`].
pub const MIN_VIEWERS_FOR_INTERVAL: usize = MIN_FACES_FOR_INTERVAL;

/// The mean of `values` (one per viewer) with its 95 % percentile-bootstrap interval when there
/// are at least [`MIN_VIEWERS_FOR_INTERVAL`] values that vary; otherwise the value alone with
/// why (`too few viewers (3 < 10)`, `no variation between viewers (...)`). `unit` names the
/// values in those notes; `seed` makes each series' resampling its own and reproducible. None
/// for no values.
pub fn mean_estimate(values: &[f64], unit: &str, seed: u64) -> Option<Estimate> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let value = mean(values);
    if n < MIN_VIEWERS_FOR_INTERVAL {
        return Some(point(
            value,
            format!("too few {unit} ({n} < {MIN_VIEWERS_FOR_INTERVAL})"),
        ));
    }
    let mut rng = SplitMix64(BOOTSTRAP_SEED ^ seed.wrapping_mul(0x9E37_79B9));
    let draws = bootstrap_means(values, &mut rng);
    Some(interval(
        draws,
        value,
        &format!("no variation between {unit} (all {n} give the same value)"),
    ))
}

/// `mean(b) - mean(a)` (each value one viewer) with a 95 % bootstrap interval, the two samples
/// resampled independently, when both have at least [`MIN_VIEWERS_FOR_INTERVAL`] values; and
/// the verdict: `significant` (the interval excludes zero), `not_significant`,
/// `too_few_<unit>`, `no_variation` or `no_<unit>` (either sample empty, no estimate).
pub fn mean_difference(a: &[f64], b: &[f64], unit: &str, seed: u64) -> (Option<Estimate>, String) {
    if a.is_empty() || b.is_empty() {
        return (None, format!("no_{unit}"));
    }
    let value = mean(b) - mean(a);
    let fewest = a.len().min(b.len());
    if fewest < MIN_VIEWERS_FOR_INTERVAL {
        return (
            Some(point(
                value,
                format!("too few {unit} ({fewest} < {MIN_VIEWERS_FOR_INTERVAL})"),
            )),
            format!("too_few_{unit}"),
        );
    }
    let mut rng = SplitMix64(BOOTSTRAP_SEED ^ 0x5A5A ^ seed.wrapping_mul(0x9E37_79B9));
    let da = bootstrap_means(a, &mut rng);
    let db = bootstrap_means(b, &mut rng);
    let diffs: Vec<f64> = db.iter().zip(&da).map(|(y, x)| y - x).collect();
    let e = interval(
        diffs,
        value,
        &format!("no variation between {unit} in either ad"),
    );
    let verdict = if e.ci_low.is_none() {
        "no_variation"
    } else if e.excludes_zero() {
        "significant"
    } else {
        "not_significant"
    };
    (Some(e), verdict.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        [
            "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn face(top: usize, p: f32) -> FaceSample {
        let mut probs = vec![(1.0 - p) / 6.0; 7];
        probs[top] = p;
        FaceSample {
            probabilities: probs,
            top,
            uncertain: false,
        }
    }

    #[test]
    fn valence_of_pure_faces() {
        let signs = valence_signs(&classes());
        assert_eq!(signs, vec![-1.0, -1.0, -1.0, 1.0, 0.0, -1.0, 0.0]);
        assert!((face_valence(&face(3, 1.0).probabilities, &signs) - 1.0).abs() < 1e-6);
        assert!((face_valence(&face(0, 1.0).probabilities, &signs) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn distribution_counts_uncertain_apart_and_brackets_value() {
        let mut faces: Vec<FaceSample> = (0..30)
            .map(|i| face(if i < 20 { 3 } else { 5 }, 0.9))
            .collect();
        faces.push(FaceSample {
            uncertain: true,
            ..face(0, 0.3)
        });
        let d = distribution(&classes(), &faces);
        assert_eq!(d.faces, 30);
        assert_eq!(d.uncertain_faces, 1);
        let happy = &d.top_share["happy"];
        assert!((happy.value - 20.0 / 30.0).abs() < 1e-9);
        assert!(happy.ci_low.unwrap() < happy.value && happy.value < happy.ci_high.unwrap());
        let total: f64 = d.mean_probabilities.values().sum();
        assert!((total - 1.0).abs() < 1e-5);
        let v = d.valence.unwrap();
        assert!(v.ci_low.unwrap() <= v.value && v.value <= v.ci_high.unwrap());
        // No one's top class was angry: a share of 0 with nothing to resample has no interval.
        assert!(d.top_share["angry"].ci_low.is_none());
    }

    #[test]
    fn clear_difference_excludes_zero_and_identical_ads_do_not() {
        let happy: Vec<FaceSample> = (0..40)
            .map(|i| face(if i < 32 { 3 } else { 5 }, 0.8))
            .collect();
        let sad: Vec<FaceSample> = (0..40)
            .map(|i| face(if i < 32 { 5 } else { 3 }, 0.8))
            .collect();
        let d = difference(&classes(), &sad, &happy);
        assert!(d.valence_differs, "{:?}", d.valence);
        assert_eq!(d.valence_significance, "significant");
        assert!(d.valence.unwrap().value > 0.5);
        let same = difference(&classes(), &happy, &happy);
        assert!(!same.valence_differs);
        assert_eq!(same.valence_significance, "not_significant");
        assert!(same.valence.unwrap().value.abs() < 1e-12);
    }

    /// Varied faces: `n` faces, alternately happy and sad.
    fn varied(n: usize) -> Vec<FaceSample> {
        (0..n)
            .map(|i| face(if i % 3 == 0 { 5 } else { 3 }, 0.8))
            .collect()
    }

    #[test]
    fn intervals_start_at_the_minimum_number_of_faces() {
        let m = MIN_FACES_FOR_INTERVAL;
        let below = distribution(&classes(), &varied(m - 1));
        let v = below.valence.unwrap();
        assert_eq!((v.ci_low, v.ci_high), (None, None));
        assert_eq!(
            v.interval_note.as_deref(),
            Some(format!("too few faces ({} < {m})", m - 1).as_str())
        );
        assert!(below.top_share["happy"].ci_low.is_none());
        let at = distribution(&classes(), &varied(m));
        let v = at.valence.unwrap();
        assert!(v.ci_high.unwrap() - v.ci_low.unwrap() > 0.0, "{v:?}");
        assert!(v.interval_note.is_none());

        // A clear difference is still only called one when both ads reach the minimum.
        let sad: Vec<FaceSample> = (0..40).map(|_| face(5, 0.9)).collect();
        let d = difference(&classes(), &sad, &varied(m - 1));
        assert!(!d.valence_differs);
        assert_eq!(d.valence_significance, "too_few_faces");
        assert!(d.valence.as_ref().unwrap().ci_low.is_none());
        assert!(d.valence.unwrap().value > 0.5);
        let d = difference(&classes(), &sad, &varied(m));
        assert!(d.valence_differs, "{:?}", d.valence);
        assert_eq!(d.valence_significance, "significant");
    }

    #[test]
    fn identical_faces_give_no_interval_and_no_star() {
        // The finding: two identical faces gave a zero-width interval and a "significant" star.
        let two = vec![face(3, 0.9); 2];
        let sad = vec![face(5, 0.9); 2];
        let v = distribution(&classes(), &two).valence.unwrap();
        assert!(v.ci_low.is_none() && v.ci_high.is_none());
        let d = difference(&classes(), &sad, &two);
        assert!(!d.valence_differs);
        assert_eq!(d.valence_significance, "too_few_faces");
        // Enough faces, but all the same: nothing to resample, so no interval either.
        let many = vec![face(3, 0.9); 50];
        let v = distribution(&classes(), &many).valence.unwrap();
        assert!(v.ci_low.is_none(), "{v:?}");
        assert!(v.interval_note.unwrap().starts_with("no variation"));
        let d = difference(&classes(), &vec![face(5, 0.9); 50], &many);
        assert!(!d.valence_differs);
        assert_eq!(d.valence_significance, "no_variation");
    }

    #[test]
    fn empty_ads_have_no_estimates() {
        let d = distribution(&classes(), &[]);
        assert!(d.valence.is_none() && d.faces == 0);
        assert!(difference(&classes(), &[], &[face(3, 0.9)])
            .valence
            .is_none());
    }

    #[test]
    fn viewer_means_need_ten_varied_viewers() {
        assert!(mean_estimate(&[], "viewers", 1).is_none());
        let few = mean_estimate(&[0.5, 0.1, 0.3], "viewers", 1).unwrap();
        assert!((few.value - 0.3).abs() < 1e-12);
        assert!(few.ci_low.is_none());
        assert_eq!(
            few.interval_note.as_deref(),
            Some("too few viewers (3 < 10)")
        );
        let same = mean_estimate(&[0.2; 12], "viewers", 1).unwrap();
        assert!(same
            .interval_note
            .unwrap()
            .starts_with("no variation between viewers"));
        let vals: Vec<f64> = (0..20)
            .map(|i| if i % 2 == 0 { 0.8 } else { 0.2 })
            .collect();
        let e = mean_estimate(&vals, "viewers", 1).unwrap();
        assert!(e.ci_low.unwrap() < 0.5 && 0.5 < e.ci_high.unwrap(), "{e:?}");
        // Reproducible.
        assert_eq!(e, mean_estimate(&vals, "viewers", 1).unwrap());

        let high: Vec<f64> = (0..12).map(|i| 0.6 + 0.01 * i as f64).collect();
        let low: Vec<f64> = (0..12).map(|i| -0.4 + 0.01 * i as f64).collect();
        let (d, verdict) = mean_difference(&low, &high, "viewers", 3);
        assert_eq!(verdict, "significant");
        assert!((d.unwrap().value - 1.0).abs() < 1e-9);
        let (_, verdict) = mean_difference(&high, &high, "viewers", 3);
        assert_eq!(verdict, "not_significant");
        let (d, verdict) = mean_difference(&low[..4], &high, "viewers", 3);
        assert_eq!(verdict, "too_few_viewers");
        assert!(d.unwrap().ci_low.is_none());
        assert_eq!(mean_difference(&[], &high, "viewers", 3).1, "no_viewers");
    }
}
