//! The statistics of a timeline, from the stored viewer-seconds: each second's viewers, means
//! and intervals, the moments, and two ads compared second by second. Pure functions, no I/O.

use super::{
    AdTimeline, Coverage, Moment, TimelineSecond, ViewerSecondRow, MAX_MOMENTS_PER_KIND,
    MOMENT_WINDOW_S, SMILING,
};
use crate::stats::{mean_difference, mean_estimate, Estimate, MIN_VIEWERS_FOR_INTERVAL};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Number of seconds the timeline shows: the ad's length when set, else up to the last second
/// with data.
fn seconds_shown(duration_s: Option<f64>, rows: &[ViewerSecondRow]) -> i64 {
    match duration_s {
        Some(d) => d.ceil().max(1.0) as i64,
        None => rows.iter().map(|r| r.second + 1).max().unwrap_or(0),
    }
}

/// The values of one second: per classified viewer, valence and whether smiling.
fn second_values(rows: &[&ViewerSecondRow]) -> (Vec<f64>, Vec<f64>) {
    rows.iter()
        .filter(|r| r.classified_faces > 0)
        .filter_map(|r| {
            r.valence.map(|v| {
                let smiling = r.top_emotion.as_deref() == Some(SMILING);
                (v, if smiling { 1.0 } else { 0.0 })
            })
        })
        .unzip()
}

/// Builds an ad's timeline from its viewers' seconds and its videos' spans.
pub fn ad_timeline(
    classes: &[String],
    duration_s: Option<f64>,
    rows: &[ViewerSecondRow],
    coverage: &[Coverage],
    moment_threshold: f64,
) -> AdTimeline {
    let shown = seconds_shown(duration_s, rows);
    let mut notes = Vec::new();
    let beyond = rows.iter().filter(|r| r.second >= shown).count();
    if beyond > 0 {
        notes.push(format!(
            "{beyond} viewer-second(s) after the ad's end ({} s) are not shown (reaction videos running on after the ad)",
            duration_s.unwrap_or(0.0)
        ));
    }
    if duration_s.is_none() && !rows.is_empty() {
        notes.push("the ad's duration is not set: seconds run to the longest reaction video; set it with PATCH /v1/ads/{id} or PUT /v1/ads/{id}/creative".into());
    }
    if !classes.iter().any(|c| c == SMILING) {
        notes.push(format!(
            "the model has no '{SMILING}' class: no smiling share"
        ));
    }
    let mut by_second: BTreeMap<i64, Vec<&ViewerSecondRow>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.second < shown && r.second >= 0) {
        by_second.entry(r.second).or_default().push(r);
    }
    let has_smiling = classes.iter().any(|c| c == SMILING);
    let mut seconds: Vec<TimelineSecond> = (0..shown)
        .map(|s| {
            let here = by_second.get(&s).map(|v| v.as_slice()).unwrap_or(&[]);
            let (vals, smiles) = second_values(here);
            let classified: Vec<&&ViewerSecondRow> = here
                .iter()
                .filter(|r| r.classified_faces > 0 && r.probabilities.is_some())
                .collect();
            let mut mean_probabilities = BTreeMap::new();
            if !classified.is_empty() {
                for c in classes {
                    let m = classified
                        .iter()
                        .map(|r| {
                            r.probabilities
                                .as_ref()
                                .and_then(|p| p.get(c))
                                .copied()
                                .unwrap_or(0.0)
                        })
                        .sum::<f64>()
                        / classified.len() as f64;
                    mean_probabilities.insert(c.clone(), m);
                }
            }
            let top_emotion = mean_probabilities
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(c, _)| c.clone());
            let seed = s as u64;
            TimelineSecond {
                second: s,
                videos: coverage
                    .iter()
                    .filter(|c| c.first_s.floor() as i64 <= s && s <= c.last_s.floor() as i64)
                    .count(),
                viewers_with_face: here.iter().filter(|r| r.frames_with_face > 0).count(),
                viewers: vals.len(),
                mean_probabilities,
                top_emotion,
                valence: mean_estimate(&vals, "viewers", seed),
                smiling_share: if has_smiling {
                    mean_estimate(&smiles, "viewers", seed ^ 0xA11CE)
                } else {
                    None
                },
                moment: None,
            }
        })
        .collect();
    let series: Vec<(i64, f64)> = seconds
        .iter()
        .filter_map(|s| s.valence.as_ref().map(|v| (s.second, v.value)))
        .collect();
    let mean_valence =
        (!series.is_empty()).then(|| mean(&series.iter().map(|x| x.1).collect::<Vec<_>>()));
    let moments = match mean_valence {
        Some(m) => find_moments(&series, m, moment_threshold),
        None => Vec::new(),
    };
    let moments: Vec<Moment> = moments
        .into_iter()
        .map(|(kind, second)| {
            let s = &mut seconds[second as usize];
            s.moment = Some(kind);
            let valence = s.valence.clone().expect("moments have a valence");
            let m = mean_valence.unwrap_or(0.0);
            let stands_out = match (kind, valence.ci_low, valence.ci_high) {
                ("peak", Some(lo), _) => lo > m,
                ("dip", _, Some(hi)) => hi < m,
                _ => false,
            };
            Moment {
                kind,
                second,
                viewers: s.viewers,
                difference_from_mean: valence.value - m,
                valence,
                stands_out,
            }
        })
        .collect();
    let viewers: BTreeSet<i64> = rows.iter().map(|r| r.viewer_id).collect();
    if !series.is_empty() && seconds.iter().all(|s| s.viewers < MIN_VIEWERS_FOR_INTERVAL) {
        notes.push(format!(
            "no second has {MIN_VIEWERS_FOR_INTERVAL} viewers yet: values are shown without intervals, and moments are where the curve turns, not proven differences"
        ));
    }
    AdTimeline {
        duration_s,
        videos: coverage.len(),
        viewers: viewers.len(),
        mean_valence,
        seconds,
        moments,
        notes,
    }
}

/// The peaks and dips of a valence series `(second, value)`: a peak is a second whose value is
/// the highest within [`MOMENT_WINDOW_S`] seconds either side (the earliest on ties) and at
/// least `threshold` above `mean`; a dip likewise below. At most [`MAX_MOMENTS_PER_KIND`] of
/// each, the farthest from the mean first; returned in time order.
pub fn find_moments(series: &[(i64, f64)], mean: f64, threshold: f64) -> Vec<(&'static str, i64)> {
    let mut peaks = Vec::new();
    let mut dips = Vec::new();
    for (i, &(s, v)) in series.iter().enumerate() {
        let near: Vec<(usize, f64)> = series
            .iter()
            .enumerate()
            .filter(|(_, (t, _))| (t - s).abs() <= MOMENT_WINDOW_S)
            .map(|(j, (_, w))| (j, *w))
            .collect();
        let highest = near.iter().all(|&(j, w)| w < v || (w == v && j >= i));
        let lowest = near.iter().all(|&(j, w)| w > v || (w == v && j >= i));
        if highest && v - mean >= threshold {
            peaks.push((v - mean, s));
        }
        if lowest && mean - v >= threshold {
            dips.push((mean - v, s));
        }
    }
    let mut out = Vec::new();
    for (kind, mut found) in [("peak", peaks), ("dip", dips)] {
        found.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        out.extend(
            found
                .into_iter()
                .take(MAX_MOMENTS_PER_KIND)
                .map(|(_, s)| (kind, s)),
        );
    }
    out.sort_by_key(|&(_, s)| s);
    out
}

/// One ad's side of a compared second.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub viewers: usize,
    pub valence: Option<Estimate>,
    pub smiling_share: Option<Estimate>,
}

/// One second of two ads compared.
#[derive(Debug, Clone, Serialize)]
pub struct ComparedSecond {
    pub second: i64,
    pub a: Side,
    pub b: Side,
    /// Valence of B minus valence of A, with a 95 % interval when both have 10 viewers.
    pub valence_difference: Option<Estimate>,
    /// `significant`, `not_significant`, `too_few_viewers`, `no_variation` or `no_viewers`.
    pub valence_significance: String,
    /// Smiling share of B minus that of A, likewise.
    pub smiling_difference: Option<Estimate>,
}

/// Two ads' timelines second by second (B against A).
pub fn compare_timelines(
    classes: &[String],
    a: (&[ViewerSecondRow], Option<f64>),
    b: (&[ViewerSecondRow], Option<f64>),
) -> Vec<ComparedSecond> {
    let shown = seconds_shown(a.1, a.0).max(seconds_shown(b.1, b.0));
    let limit_a = seconds_shown(a.1, a.0);
    let limit_b = seconds_shown(b.1, b.0);
    let group = |rows: &[ViewerSecondRow], limit: i64| {
        let mut m: BTreeMap<i64, Vec<ViewerSecondRow>> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.second >= 0 && r.second < limit) {
            m.entry(r.second).or_default().push(r.clone());
        }
        m
    };
    let (ga, gb) = (group(a.0, limit_a), group(b.0, limit_b));
    let has_smiling = classes.iter().any(|c| c == SMILING);
    (0..shown)
        .map(|s| {
            let values = |g: &BTreeMap<i64, Vec<ViewerSecondRow>>| {
                let rows: Vec<&ViewerSecondRow> =
                    g.get(&s).map(|v| v.iter().collect()).unwrap_or_default();
                second_values(&rows)
            };
            let (va, sa) = values(&ga);
            let (vb, sb) = values(&gb);
            let seed = s as u64;
            let side = |v: &[f64], sm: &[f64]| Side {
                viewers: v.len(),
                valence: mean_estimate(v, "viewers", seed),
                smiling_share: if has_smiling {
                    mean_estimate(sm, "viewers", seed ^ 0xA11CE)
                } else {
                    None
                },
            };
            let (valence_difference, valence_significance) =
                mean_difference(&va, &vb, "viewers", seed);
            let smiling_difference = if has_smiling {
                mean_difference(&sa, &sb, "viewers", seed ^ 0xA11CE).0
            } else {
                None
            };
            ComparedSecond {
                second: s,
                a: side(&va, &sa),
                b: side(&vb, &sb),
                valence_difference,
                valence_significance,
                smiling_difference,
            }
        })
        .collect()
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

    fn row(viewer: i64, second: i64, happy: f64) -> ViewerSecondRow {
        let mut p = BTreeMap::new();
        p.insert("happy".to_string(), happy);
        p.insert("sad".to_string(), 1.0 - happy);
        ViewerSecondRow {
            job_id: viewer,
            file_name: format!("v{viewer}.mp4"),
            viewer: 1,
            viewer_id: viewer,
            second,
            frames: 5,
            frames_with_face: 5,
            classified_faces: 5,
            uncertain_faces: 0,
            valence: Some(happy - (1.0 - happy)),
            top_emotion: Some(if happy > 0.5 { "happy" } else { "sad" }.to_string()),
            probabilities: Some(p),
        }
    }

    #[test]
    fn moments_are_local_extremes_far_enough_from_the_mean() {
        // Flat at 0 with a bump at 5 and a hole at 12.
        let series: Vec<(i64, f64)> = (0..20)
            .map(|s| {
                (
                    s,
                    if s == 5 {
                        0.6
                    } else if s == 12 {
                        -0.5
                    } else {
                        0.0
                    },
                )
            })
            .collect();
        let m = series.iter().map(|x| x.1).sum::<f64>() / 20.0;
        assert_eq!(
            find_moments(&series, m, 0.1),
            vec![("peak", 5), ("dip", 12)]
        );
        // A plateau gives one peak (its first second); the flat stretches, 0.1 under the mean,
        // are dips at the threshold 0.1 (their first seconds in each window) but not at 0.15.
        let plateau: Vec<(i64, f64)> = (0..10)
            .map(|s| (s, if (3..=4).contains(&s) { 0.5 } else { 0.0 }))
            .collect();
        assert_eq!(find_moments(&plateau, 0.1, 0.15), vec![("peak", 3)]);
        assert_eq!(
            find_moments(&plateau, 0.1, 0.1),
            vec![("dip", 0), ("peak", 3), ("dip", 5)]
        );
        assert!(find_moments(&plateau, 0.1, 0.9).is_empty());
        assert!(find_moments(&[], 0.0, 0.1).is_empty());
    }

    #[test]
    fn timeline_counts_each_viewer_once_per_second_and_says_when_intervals_are_missing() {
        // 12 viewers: happy in seconds 0-2, sad in 3-5; the ad lasts 5 s so second 5 is cut.
        let mut rows = Vec::new();
        for v in 0..12 {
            for s in 0..6 {
                let h = if s < 3 {
                    0.7 + 0.02 * v as f64
                } else {
                    0.2 + 0.01 * v as f64
                };
                rows.push(row(v, s, h));
            }
        }
        let cov: Vec<Coverage> = (0..12)
            .map(|_| Coverage {
                first_s: 0.0,
                last_s: 5.9,
            })
            .collect();
        let t = ad_timeline(&classes(), Some(5.0), &rows, &cov, 0.1);
        assert_eq!(t.seconds.len(), 5);
        assert_eq!((t.videos, t.viewers), (12, 12));
        assert!(t.notes[0].contains("after the ad's end"), "{:?}", t.notes);
        let s0 = &t.seconds[0];
        assert_eq!((s0.viewers, s0.viewers_with_face, s0.videos), (12, 12, 12));
        assert_eq!(s0.top_emotion.as_deref(), Some("happy"));
        let smile = s0.smiling_share.as_ref().unwrap();
        assert!((smile.value - 1.0).abs() < 1e-12);
        let v = s0.valence.as_ref().unwrap();
        assert!(
            v.ci_low.unwrap() < v.value && v.value < v.ci_high.unwrap(),
            "{v:?}"
        );
        let s4 = &t.seconds[4];
        assert!(s4.valence.as_ref().unwrap().value < 0.0);
        assert_eq!(s4.smiling_share.as_ref().unwrap().value, 0.0);
        // Three viewers only: values without intervals, and a note saying why.
        let few: Vec<ViewerSecondRow> = rows.iter().filter(|r| r.viewer_id < 3).cloned().collect();
        let t = ad_timeline(&classes(), None, &few, &cov[..3], 0.1);
        assert_eq!(t.seconds.len(), 6);
        let v = t.seconds[0].valence.as_ref().unwrap();
        assert_eq!(v.interval_note.as_deref(), Some("too few viewers (3 < 10)"));
        assert!(t.notes.iter().any(|n| n.contains("duration is not set")));
        assert!(t
            .notes
            .iter()
            .any(|n| n.contains("no second has 10 viewers")));
        // The high seconds give a peak at 0 and the low ones a dip at 3.
        let kinds: Vec<(&str, i64)> = t.moments.iter().map(|m| (m.kind, m.second)).collect();
        assert_eq!(kinds, vec![("peak", 0), ("dip", 3)]);
        assert!(t.moments.iter().all(|m| !m.stands_out));
        assert_eq!(t.seconds[0].moment, Some("peak"));
    }

    #[test]
    fn comparing_two_ads_second_by_second() {
        let happy: Vec<ViewerSecondRow> = (0..12)
            .flat_map(|v| (0..3).map(move |s| row(v, s, 0.8 + 0.01 * v as f64)))
            .collect();
        let sad: Vec<ViewerSecondRow> = (0..12)
            .flat_map(|v| (0..4).map(move |s| row(100 + v, s, 0.2 + 0.01 * v as f64)))
            .collect();
        let c = compare_timelines(&classes(), (&sad, None), (&happy, None));
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].valence_significance, "significant");
        assert!(c[0].valence_difference.as_ref().unwrap().value > 1.0);
        assert!((c[0].smiling_difference.as_ref().unwrap().value - 1.0).abs() < 1e-12);
        // Second 3: only A has viewers.
        assert_eq!(c[3].valence_significance, "no_viewers");
        assert!(c[3].valence_difference.is_none());
        let few = compare_timelines(&classes(), (&sad[..3], None), (&happy, None));
        assert_eq!(few[0].valence_significance, "too_few_viewers");
    }
}
