//! The timeline's HTTP handlers: an ad's timeline, two ads compared, and both as CSV.

use super::{
    ad_timeline, compare_timelines, AdTimeline, ComparedSecond, ViewerSecondRow,
    DEFAULT_MOMENT_THRESHOLD,
};
use crate::campaigns::{attachment, csv_text, format_of, path_id, ExportQuery, Format};
use crate::db::Ad;
use crate::error::{ServerError, ServerResult};
use crate::stats::Estimate;
use crate::workspace::Principal;
use crate::SharedState;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fmt::Write;

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

/// The answer of `GET /v1/ads/{id}/timeline`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TimelineResponse {
    pub ad: Ad,
    /// The model's classes, in its order.
    pub classes: Vec<String>,
    /// How the numbers are computed, in words.
    pub method: String,
    pub timeline: AdTimeline,
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
#[utoipa::path(
    get,
    path = "/v1/ads/{id}/timeline",
    operation_id = "timeline_get_timeline",
    tag = "videos",
    summary = "The ad's emotion timeline across its reaction videos",
    description = "Per second of ad time across the ad's viewers (each tracked face of each analysed reaction video): videos, viewers_with_face, viewers, mean_probabilities, top_emotion, valence and smiling_share as Estimate (95% bootstrap interval from 10 viewers that vary, else interval_note), moment; and the ad's moments (peaks and dips of valence), mean_valence, notes.",
    params(("id" = i64, Path, description = "ad id"), ("moment_threshold" = Option<f64>, Query, description = "how far from the ad's mean valence a peak or dip must lie (default 0.1)")),
    responses(
        (status = 200, description = "{ad, classes, method, timeline: {duration_s, videos, viewers, mean_valence, seconds, moments, notes}}", body = crate::timeline::TimelineResponse),
        (status = 400, description = "bad parameter", body = crate::error::ErrorBody),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad, or one of another workspace", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn get_timeline(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    q: Result<Query<TimelineQuery>, QueryRejection>,
) -> ServerResult<Json<TimelineResponse>> {
    let id = path_id(id, "ad")?;
    let q = query(q)?;
    let ad = state.db.ad(p.workspace_id, id).await?;
    let (timeline, _) = timeline_of(&state, &ad, &q).await?;
    Ok(Json(TimelineResponse {
        ad,
        classes: state.meta().classes.clone(),
        method: METHOD.to_string(),
        timeline,
    }))
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
#[utoipa::path(
    get,
    path = "/v1/ads/{id}/timeline/export",
    operation_id = "timeline_export_timeline",
    tag = "videos",
    summary = "Export the ad's timeline: CSV one row per second (or per viewer per second with level=viewer), or JSON with the jobs and every viewer-second; formula-safe; audited",
    params(("id" = i64, Path, description = "ad id"), ("format" = Option<String>, Query), ("level" = Option<String>, Query, description = "CSV rows: per second (default) or per viewer per second"), ("moment_threshold" = Option<f64>, Query, description = "as for the timeline")),
    responses(
        (status = 200, description = "export", content((Object = "application/json"), (String = "text/csv"))),
        (status = 400, description = "unknown format or level", body = crate::error::ErrorBody),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad, or one of another workspace", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
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
#[utoipa::path(
    get,
    path = "/v1/ads/{id}/timeline/compare",
    operation_id = "timeline_compare",
    tag = "videos",
    summary = "Two ads' timelines second by second: ad `with` (B) against this ad (A)",
    description = "Per second: each side's viewers, valence and smiling share; B minus A for valence and smiling share with a 95% interval when both have 10 viewers; valence_significance: significant, not_significant, too_few_viewers, no_variation or no_viewers. summary lists the seconds where B is significantly above or below A.",
    params(("id" = i64, Path, description = "ad id"), ("with" = i64, Query, description = "the other ad (B), of the same workspace")),
    responses(
        (status = 200, description = "{a, b, method, summary, seconds}", body = Object),
        (status = 400, description = "no `with`", body = crate::error::ErrorBody),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad, or one of another workspace", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
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
#[utoipa::path(
    get,
    path = "/v1/ads/{id}/timeline/compare/export",
    operation_id = "timeline_export_compare",
    tag = "videos",
    summary = "Export the comparison of two ads' timelines (CSV one row per second, or JSON); formula-safe; audited",
    params(("id" = i64, Path, description = "ad id"), ("with" = i64, Query, description = "the other ad (B)"), ("format" = Option<String>, Query)),
    responses(
        (status = 200, description = "export", content((Object = "application/json"), (String = "text/csv"))),
        (status = 400, description = "no `with`, or unknown format", body = crate::error::ErrorBody),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad, or one of another workspace", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
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
