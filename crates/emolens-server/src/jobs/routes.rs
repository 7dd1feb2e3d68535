//! The HTTP side of reaction-video jobs: upload (queue), a job's state, an ad's jobs, a kept
//! video.

use super::{video_message, Job, MAX_JOB_FPS};
use crate::campaigns::path_id;
use crate::error::{ServerError, ServerResult};
use crate::upload::read_video;
use crate::workspace::{Principal, Role};
use crate::SharedState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Query of `POST /v1/ads/{id}/videos`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct VideoQuery {
    /// Frames sampled per second (default: the server's `--video-fps`, 5).
    pub fps: Option<f64>,
    /// Time in the video at which the ad starts playing, seconds (default 0; negative when the
    /// recording started after the ad).
    pub ad_start_s: Option<f64>,
    /// File name for a raw body.
    pub name: Option<String>,
}

/// `POST /v1/ads/{id}/videos`: a reaction video (multipart field `file`, or the raw body as
/// `video/*`), streamed to a temporary file, probed, queued: 202 with the job at once.
pub async fn upload(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    q: Result<Query<VideoQuery>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> ServerResult<Response> {
    p.require(Role::Analyst, "uploading a reaction video")?;
    let id = path_id(id, "ad")?;
    let Query(q) = q.map_err(|e| ServerError::BadRequest(e.body_text()))?;
    state.db.ad(p.workspace_id, id).await?;
    let fps = q.fps.unwrap_or(state.config.video_fps);
    if !(fps.is_finite() && fps > 0.0 && fps <= MAX_JOB_FPS) {
        return Err(ServerError::BadRequest(format!(
            "fps must be above 0 and at most {MAX_JOB_FPS}, got {fps}"
        )));
    }
    let ad_start_s = q.ad_start_s.unwrap_or(0.0);
    if !(ad_start_s.is_finite() && ad_start_s.abs() <= crate::campaigns::MAX_AD_SECONDS) {
        return Err(ServerError::BadRequest(format!(
            "ad_start_s must be a number of seconds between -{0} and {0}, got {ad_start_s}",
            crate::campaigns::MAX_AD_SECONDS
        )));
    }
    let upload = read_video(req, state.config.max_video_bytes, q.name.as_deref()).await?;
    let (tmp, name) = (upload.file.to_path_buf(), upload.name.clone());
    let info = state
        .blocking(move || {
            emolens_video::probe(&tmp).map_err(|e| {
                let msg = video_message(&e, &tmp, &name);
                ServerError::from_video(&e, msg)
            })
        })
        .await?;
    let job_id = state
        .db
        .enqueue_job(&p.actor(), id, &upload, &info, fps, ad_start_s)
        .await?;
    drop(upload);
    state.wake.notify_one();
    let job = state.db.job(p.workspace_id, job_id).await?;
    tracing::info!(
        job = job_id,
        ad = id,
        bytes = job.size_bytes,
        "reaction video queued"
    );
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/v1/jobs/{job_id}"))],
        Json(job),
    )
        .into_response())
}

/// `GET /v1/jobs/{id}`: state, progress, error or result summary.
pub async fn get_job(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<Job>> {
    let id = path_id(id, "job")?;
    Ok(Json(state.db.job(p.workspace_id, id).await?))
}

/// `GET /v1/ads/{id}/videos`: the ad's reaction-video jobs.
pub async fn list(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<Value>> {
    let id = path_id(id, "ad")?;
    state.db.ad(p.workspace_id, id).await?;
    let jobs = state.db.ad_jobs(id).await?;
    let count = |s: &str| jobs.iter().filter(|j| j.state == s).count();
    Ok(Json(json!({
        "ad_id": id,
        "counts": { "queued": count("queued"), "running": count("running"), "live": count("live"), "done": count("done"), "failed": count("failed") },
        "jobs": jobs,
    })))
}

/// `GET /v1/jobs/{id}/video`: a kept reaction video (campaigns that keep images only).
pub async fn video(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Response> {
    let id = path_id(id, "job")?;
    let (job, chunks) = state.db.kept_video(p.workspace_id, id).await?;
    state
        .db
        .audit(
            &p.actor(),
            "export",
            "job",
            Some(id),
            json!({ "bytes": job.size_bytes }),
        )
        .await?;
    let ctype = crate::creative::video_content_type(
        job.video
            .as_ref()
            .and_then(|v| v["container"].as_str())
            .unwrap_or(""),
    );
    // Streamed chunk by chunk: at most one chunk of the video in memory.
    let db = state.db.clone();
    let stream = futures_util::stream::unfold(0i64, move |seq| {
        let db = db.clone();
        async move {
            if seq >= chunks {
                return None;
            }
            match db.video_chunk(id, seq).await {
                Ok(Some(bytes)) => Some((Ok(axum::body::Bytes::from(bytes)), seq + 1)),
                Ok(None) => Some((
                    Err(std::io::Error::other(
                        "the video was erased while it was sent",
                    )),
                    chunks,
                )),
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), chunks)),
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (header::CONTENT_LENGTH, job.size_bytes.to_string()),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
