//! Per-ad emotion timelines from reaction videos: across every viewer of an ad (each tracked
//! face of each analysed reaction video), per second of ad time, how many viewers showed a
//! face, their mean probabilities, valence with a 95 % interval where the sample allows one,
//! and the share of viewers smiling; the moments (peaks and dips of valence); and two ads
//! compared second by second. Computed from the stored rows on every request, like the photo
//! results, so an erasure shows at once.
//!
//! Each viewer counts once per second, whatever the number of frames sampled in it: a viewer's
//! value for a second is the mean over their classified faces in that second (as `emolens
//! analyze VIDEO` reports it), and the ad's second is the mean over viewers.

use crate::campaigns::{attachment, csv_text, format_of, path_id, ExportQuery, Format};
use crate::db::{Ad, Db};
use crate::error::{ServerError, ServerResult};
use crate::stats::{mean_difference, mean_estimate, Estimate, MIN_VIEWERS_FOR_INTERVAL};
use crate::workspace::Principal;
use crate::SharedState;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// A moment is the highest (lowest) valence within this many seconds either side.
pub const MOMENT_WINDOW_S: i64 = 2;
/// Default: a moment lies at least this far above (below) the ad's mean valence.
pub const DEFAULT_MOMENT_THRESHOLD: f64 = 0.1;
/// At most this many peaks and this many dips are reported (the largest first).
pub const MAX_MOMENTS_PER_KIND: usize = 5;
/// The emotion whose top place counts as smiling.
pub const SMILING: &str = "happy";

/// One viewer in one second of ad time, as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ViewerSecondRow {
    pub job_id: i64,
    /// The job's file name (exports only).
    #[serde(skip)]
    pub file_name: String,
    /// The tracked viewer within the job's video.
    pub viewer: i64,
    #[serde(skip)]
    pub viewer_id: i64,
    pub second: i64,
    pub frames: i64,
    pub frames_with_face: i64,
    pub classified_faces: i64,
    pub uncertain_faces: i64,
    pub valence: Option<f64>,
    pub top_emotion: Option<String>,
    pub probabilities: Option<BTreeMap<String, f64>>,
}

/// The ad-time span a done reaction video covers.
#[derive(Debug, Clone, Copy)]
pub struct Coverage {
    pub first_s: f64,
    pub last_s: f64,
}

/// One second of an ad's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineSecond {
    /// Second of ad time (`second` <= t < `second + 1`).
    pub second: i64,
    /// Analysed reaction videos covering this second.
    pub videos: usize,
    /// Viewers whose face was found in this second.
    pub viewers_with_face: usize,
    /// Viewers whose face was classified in this second: the means are over them.
    pub viewers: usize,
    /// Mean over viewers of each emotion's probability (empty without viewers).
    pub mean_probabilities: BTreeMap<String, f64>,
    /// The emotion with the highest mean probability.
    pub top_emotion: Option<String>,
    /// Mean valence over viewers, with a 95 % interval from 10 varied viewers on.
    pub valence: Option<Estimate>,
    /// Share of viewers whose top emotion this second is happy, with its interval likewise.
    pub smiling_share: Option<Estimate>,
    /// `peak` or `dip` when this second is one of the ad's moments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moment: Option<&'static str>,
}

/// A peak or dip of valence.
#[derive(Debug, Clone, Serialize)]
pub struct Moment {
    /// `peak` or `dip`.
    pub kind: &'static str,
    pub second: i64,
    pub viewers: usize,
    pub valence: Estimate,
    /// This second's valence minus the ad's mean valence over its seconds.
    pub difference_from_mean: f64,
    /// True when the second's 95 % interval lies wholly above (peak) or below (dip) the ad's
    /// mean; false when it does not or when there is no interval (too few viewers).
    pub stands_out: bool,
}

/// An ad's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct AdTimeline {
    /// The ad's length (seconds shown run from 0 to it), when set.
    pub duration_s: Option<f64>,
    /// Analysed reaction videos.
    pub videos: usize,
    /// Viewers tracked in them (a viewer who left the picture for longer than the tracker's gap
    /// and came back counts twice here, never twice in a second).
    pub viewers: usize,
    /// Mean of the seconds' valence (each second with viewers counts once): moments are
    /// measured from it.
    pub mean_valence: Option<f64>,
    pub seconds: Vec<TimelineSecond>,
    pub moments: Vec<Moment>,
    pub notes: Vec<String>,
}

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

impl Db {
    /// Every viewer-second of an ad's analysed reaction videos and live sessions (those still
    /// being watched included), in time order.
    pub async fn ad_viewer_seconds(&self, ad_id: i64) -> ServerResult<Vec<ViewerSecondRow>> {
        let rows = sqlx::query(
            "SELECT s.job_id, j.file_name, v.viewer, s.viewer_id, s.ad_second, s.frames, s.frames_with_face, \
             s.classified_faces, s.uncertain_faces, s.valence, s.top_emotion, s.probabilities \
             FROM viewer_seconds s JOIN video_viewers v ON v.id = s.viewer_id \
             JOIN video_jobs j ON j.id = s.job_id \
             WHERE s.ad_id = $1 AND j.state IN ('done', 'live') ORDER BY s.ad_second, s.job_id, v.viewer",
        )
        .bind(ad_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let probs: Option<String> = r.try_get("probabilities")?;
                Ok(ViewerSecondRow {
                    job_id: r.try_get("job_id")?,
                    file_name: r.try_get("file_name")?,
                    viewer: r.try_get("viewer")?,
                    viewer_id: r.try_get("viewer_id")?,
                    second: r.try_get("ad_second")?,
                    frames: r.try_get("frames")?,
                    frames_with_face: r.try_get("frames_with_face")?,
                    classified_faces: r.try_get("classified_faces")?,
                    uncertain_faces: r.try_get("uncertain_faces")?,
                    valence: r.try_get("valence")?,
                    top_emotion: r.try_get("top_emotion")?,
                    probabilities: probs.and_then(|p| serde_json::from_str(&p).ok()),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(ServerError::from)
    }

    /// The ad-time spans of an ad's analysed reaction videos and live sessions.
    pub async fn ad_coverage(&self, ad_id: i64) -> ServerResult<Vec<Coverage>> {
        let rows = sqlx::query(
            "SELECT ad_first_s, ad_last_s FROM video_jobs WHERE ad_id = $1 AND state IN ('done', 'live') ORDER BY id",
        )
        .bind(ad_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let (a, b): (Option<f64>, Option<f64>) =
                (r.try_get("ad_first_s")?, r.try_get("ad_last_s")?);
            if let (Some(first_s), Some(last_s)) = (a, b) {
                out.push(Coverage { first_s, last_s });
            }
        }
        Ok(out)
    }
}

/// Query of the timeline endpoints.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    /// How far from the ad's mean valence a peak or dip must lie (default 0.1).
    pub moment_threshold: Option<f64>,
    /// The other ad (comparisons).
    pub with: Option<i64>,
    /// `csv` or `json` (exports).
    pub format: Option<String>,
    /// Exports: `second` (default, the ad's timeline) or `viewer` (one row per viewer per
    /// second; CSV only, JSON has both).
    pub level: Option<String>,
}

const METHOD: &str = "Per second of ad time, each viewer (a tracked face of an analysed reaction video) counts once: their value is the mean over their classified faces in that second. Valence is P(happy) - P(angry + disgust + fear + sad); smiling means the viewer's top emotion that second is happy. 95% percentile bootstrap intervals (2000 resamples, fixed seed) only from 10 viewers up and where viewers vary (otherwise null, with interval_note); a difference between two ads is significant only when both have 10 viewers in that second and its interval excludes zero (one test per second: with 60 seconds, about 3 seconds are expected to pass by chance). Moments: the highest (lowest) valence within 2 seconds either side, at least the threshold above (below) the ad's mean valence over its seconds; stands_out when the second's interval lies wholly beyond that mean.";

fn threshold(q: &TimelineQuery) -> ServerResult<f64> {
    let t = q.moment_threshold.unwrap_or(DEFAULT_MOMENT_THRESHOLD);
    if !(t.is_finite() && (0.0..=2.0).contains(&t)) {
        return Err(ServerError::BadRequest(format!(
            "moment_threshold must be between 0 and 2 (valence units), got {t}"
        )));
    }
    Ok(t)
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> ServerResult<T> {
    q.map(|Query(q)| q)
        .map_err(|e| ServerError::BadRequest(format!("bad query: {}", e.body_text())))
}

async fn timeline_of(
    state: &SharedState,
    ad: &Ad,
    q: &TimelineQuery,
) -> ServerResult<(AdTimeline, Vec<ViewerSecondRow>)> {
    let rows = state.db.ad_viewer_seconds(ad.id).await?;
    let coverage = state.db.ad_coverage(ad.id).await?;
    let t = ad_timeline(
        &state.meta().classes,
        ad.duration_s,
        &rows,
        &coverage,
        threshold(q)?,
    );
    Ok((t, rows))
}

/// `GET /v1/ads/{id}/timeline`: the ad's timeline across its reaction videos.
pub async fn get_timeline(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    q: Result<Query<TimelineQuery>, QueryRejection>,
) -> ServerResult<Json<Value>> {
    let id = path_id(id, "ad")?;
    let q = query(q)?;
    let ad = state.db.ad(p.workspace_id, id).await?;
    let (t, _) = timeline_of(&state, &ad, &q).await?;
    Ok(Json(json!({
        "ad": ad,
        "classes": state.meta().classes,
        "method": METHOD,
        "timeline": t,
    })))
}

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.6}")).unwrap_or_default()
}

fn est_cells(e: &Option<Estimate>) -> [String; 3] {
    match e {
        Some(e) => [num(Some(e.value)), num(e.ci_low), num(e.ci_high)],
        None => Default::default(),
    }
}

/// `GET /v1/ads/{id}/timeline/export?format=csv|json[&level=viewer]`.
pub async fn export_timeline(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    q: Result<Query<TimelineQuery>, QueryRejection>,
) -> ServerResult<Response> {
    let id = path_id(id, "ad")?;
    let q = query(q)?;
    let fmt = format_of(&ExportQuery {
        format: q.format.clone(),
    })?;
    let level = q.level.as_deref().unwrap_or("second").to_ascii_lowercase();
    if !matches!(level.as_str(), "second" | "viewer") {
        return Err(ServerError::BadRequest(format!(
            "unknown level '{level}': use level=second (the ad's timeline) or level=viewer (one row per viewer per second)"
        )));
    }
    let ad = state.db.ad(p.workspace_id, id).await?;
    let (t, rows) = timeline_of(&state, &ad, &q).await?;
    state
        .db
        .audit(
            &p.actor(),
            "export",
            "ad",
            Some(id),
            json!({ "timeline": true, "format": fmt.name(), "level": level, "viewer_seconds": rows.len() }),
        )
        .await?;
    let classes = state.meta().classes.clone();
    match fmt {
        Format::Json => {
            let viewer_rows: Vec<Value> = rows
                .iter()
                .map(|r| {
                    let mut v = json!(r);
                    v["file_name"] = json!(r.file_name);
                    v
                })
                .collect();
            let body = json!({
                "ad": ad, "classes": classes, "method": METHOD, "timeline": t,
                "jobs": state.db.ad_jobs(id).await?,
                "viewer_seconds": viewer_rows,
            });
            Ok(attachment(
                body.to_string(),
                "application/json",
                format!("ad-{id}-timeline.json"),
            ))
        }
        Format::Csv if level == "viewer" => {
            let mut o = String::from("ad_id,ad_name,job_id,file_name,viewer,second,frames,frames_with_face,classified_faces,uncertain_faces,top_emotion,valence");
            for c in &classes {
                let _ = write!(o, ",{}", csv_text(&format!("p_{c}")));
            }
            o.push('\n');
            for r in &rows {
                let _ = write!(
                    o,
                    "{},{},{},{},{},{},{},{},{},{},{},{}",
                    ad.id,
                    csv_text(&ad.name),
                    r.job_id,
                    csv_text(&r.file_name),
                    r.viewer,
                    r.second,
                    r.frames,
                    r.frames_with_face,
                    r.classified_faces,
                    r.uncertain_faces,
                    csv_text(r.top_emotion.as_deref().unwrap_or("")),
                    num(r.valence),
                );
                for c in &classes {
                    let _ = write!(
                        o,
                        ",{}",
                        num(r.probabilities.as_ref().and_then(|p| p.get(c)).copied())
                    );
                }
                o.push('\n');
            }
            Ok(attachment(
                o,
                "text/csv; charset=utf-8",
                format!("ad-{id}-viewer-seconds.csv"),
            ))
        }
        Format::Csv => {
            let mut o = String::from("ad_id,ad_name,second,videos,viewers_with_face,viewers,top_emotion,valence,valence_ci_low,valence_ci_high,valence_interval_note,smiling_share,smiling_ci_low,smiling_ci_high,moment");
            for c in &classes {
                let _ = write!(o, ",{}", csv_text(&format!("mean_p_{c}")));
            }
            o.push('\n');
            for s in &t.seconds {
                let [v, vlo, vhi] = est_cells(&s.valence);
                let [sm, slo, shi] = est_cells(&s.smiling_share);
                let _ = write!(
                    o,
                    "{},{},{},{},{},{},{},{v},{vlo},{vhi},{},{sm},{slo},{shi},{}",
                    ad.id,
                    csv_text(&ad.name),
                    s.second,
                    s.videos,
                    s.viewers_with_face,
                    s.viewers,
                    csv_text(s.top_emotion.as_deref().unwrap_or("")),
                    csv_text(
                        s.valence
                            .as_ref()
                            .and_then(|e| e.interval_note.as_deref())
                            .unwrap_or("")
                    ),
                    s.moment.unwrap_or(""),
                );
                for c in &classes {
                    let _ = write!(o, ",{}", num(s.mean_probabilities.get(c).copied()));
                }
                o.push('\n');
            }
            Ok(attachment(
                o,
                "text/csv; charset=utf-8",
                format!("ad-{id}-timeline.csv"),
            ))
        }
    }
}

async fn comparison(
    state: &SharedState,
    p: &Principal,
    id: i64,
    q: &TimelineQuery,
) -> ServerResult<(Ad, Ad, Vec<ComparedSecond>)> {
    let Some(other) = q.with else {
        return Err(ServerError::BadRequest(
            "say which ad to compare with: ?with=AD_ID (an ad of your workspace)".into(),
        ));
    };
    let a = state.db.ad(p.workspace_id, id).await?;
    let b = state.db.ad(p.workspace_id, other).await?;
    let ra = state.db.ad_viewer_seconds(a.id).await?;
    let rb = state.db.ad_viewer_seconds(b.id).await?;
    let seconds = compare_timelines(
        &state.meta().classes,
        (&ra, a.duration_s),
        (&rb, b.duration_s),
    );
    Ok((a, b, seconds))
}

fn comparison_json(a: &Ad, b: &Ad, seconds: &[ComparedSecond]) -> Value {
    let pick = |verdict: &str, above: bool| -> Vec<i64> {
        seconds
            .iter()
            .filter(|s| {
                s.valence_significance == verdict
                    && s.valence_difference
                        .as_ref()
                        .is_some_and(|d| (d.value > 0.0) == above)
            })
            .map(|s| s.second)
            .collect()
    };
    let both = seconds
        .iter()
        .filter(|s| s.a.viewers > 0 && s.b.viewers > 0)
        .count();
    json!({
        "a": a,
        "b": b,
        "method": format!("{METHOD} Differences are B minus A."),
        "summary": {
            "seconds": seconds.len(),
            "seconds_with_both": both,
            "b_higher_valence_significant": pick("significant", true),
            "b_lower_valence_significant": pick("significant", false),
        },
        "seconds": seconds,
    })
}

/// `GET /v1/ads/{id}/timeline/compare?with=B`: ad B against this ad (A), second by second.
pub async fn compare(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    q: Result<Query<TimelineQuery>, QueryRejection>,
) -> ServerResult<Json<Value>> {
    let id = path_id(id, "ad")?;
    let q = query(q)?;
    let (a, b, seconds) = comparison(&state, &p, id, &q).await?;
    Ok(Json(comparison_json(&a, &b, &seconds)))
}

/// `GET /v1/ads/{id}/timeline/compare/export?with=B&format=csv|json`.
pub async fn export_compare(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    q: Result<Query<TimelineQuery>, QueryRejection>,
) -> ServerResult<Response> {
    let id = path_id(id, "ad")?;
    let q = query(q)?;
    let fmt = format_of(&ExportQuery {
        format: q.format.clone(),
    })?;
    let (a, b, seconds) = comparison(&state, &p, id, &q).await?;
    state
        .db
        .audit(
            &p.actor(),
            "export",
            "ad",
            Some(a.id),
            json!({ "timeline_compare_with": b.id, "format": fmt.name() }),
        )
        .await?;
    let name = format!("ads-{}-vs-{}-timeline", a.id, b.id);
    match fmt {
        Format::Json => Ok(attachment(
            comparison_json(&a, &b, &seconds).to_string(),
            "application/json",
            format!("{name}.json"),
        )),
        Format::Csv => {
            let mut o = String::from("second,a_ad_id,a_ad_name,b_ad_id,b_ad_name,a_viewers,a_valence,a_valence_ci_low,a_valence_ci_high,a_smiling_share,b_viewers,b_valence,b_valence_ci_low,b_valence_ci_high,b_smiling_share,valence_difference,valence_difference_ci_low,valence_difference_ci_high,valence_significance,smiling_difference,smiling_difference_ci_low,smiling_difference_ci_high\n");
            for s in &seconds {
                let [av, alo, ahi] = est_cells(&s.a.valence);
                let [bv, blo, bhi] = est_cells(&s.b.valence);
                let [dv, dlo, dhi] = est_cells(&s.valence_difference);
                let [sd, sdlo, sdhi] = est_cells(&s.smiling_difference);
                let _ = writeln!(
                    o,
                    "{},{},{},{},{},{},{av},{alo},{ahi},{},{},{bv},{blo},{bhi},{},{dv},{dlo},{dhi},{},{sd},{sdlo},{sdhi}",
                    s.second,
                    a.id,
                    csv_text(&a.name),
                    b.id,
                    csv_text(&b.name),
                    s.a.viewers,
                    num(s.a.smiling_share.as_ref().map(|e| e.value)),
                    s.b.viewers,
                    num(s.b.smiling_share.as_ref().map(|e| e.value)),
                    csv_text(&s.valence_significance),
                );
            }
            Ok(attachment(
                o,
                "text/csv; charset=utf-8",
                format!("{name}.csv"),
            ))
        }
    }
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
