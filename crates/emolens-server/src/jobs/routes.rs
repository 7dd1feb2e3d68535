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
use serde::{Deserialize, Serialize};
use serde_json::json;

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
#[utoipa::path(
    post,
    path = "/v1/ads/{id}/videos",
    operation_id = "jobs_upload",
    tag = "videos",
    summary = "Upload a reaction video: streamed to a temporary file (bounded), checked with FFmpeg, queued as a background job; answers 202 at once with the job and Location: /v1/jobs/{id} (analyst)",
    params(("id" = i64, Path, description = "ad id"), ("fps" = Option<f64>, Query, description = "frames sampled per second (default the server's --video-fps, 5; at most 30)"), ("ad_start_s" = Option<f64>, Query, description = "time in the video at which the ad starts playing, seconds (default 0; negative when recording began after the ad)"), ("name" = Option<String>, Query, description = "file name for a raw body")),
    request_body(content((crate::upload::VideoForm = "multipart/form-data"), ([u8] = "video/*"), ([u8] = "application/octet-stream"))),
    responses(
        (status = 202, description = "queued", body = crate::jobs::Job),
        (status = 400, description = "empty or corrupt video, bad parameter, or more than one video", body = crate::error::ErrorBody),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 403, description = "the key's role is too low (the message names the role needed)", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad, or one of another workspace", body = crate::error::ErrorBody),
        (status = 409, description = "the same file is already queued, running or done for this ad (names its job)", body = crate::error::ErrorBody),
        (status = 413, description = "over --max-video-mib", body = crate::error::ErrorBody),
        (status = 415, description = "not a video, audio only, undecodable, or a wrong content type", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
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
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    operation_id = "jobs_get_job",
    tag = "videos",
    summary = "A reaction-video job: state, progress, error or result summary",
    params(("id" = i64, Path, description = "job id")),
    responses(
        (status = 200, description = "the job", body = crate::jobs::Job),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown job, or one of another workspace", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn get_job(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<Job>> {
    let id = path_id(id, "job")?;
    Ok(Json(state.db.job(p.workspace_id, id).await?))
}

/// Jobs by state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobCounts {
    pub queued: usize,
    pub running: usize,
    /// Live viewing sessions still open.
    pub live: usize,
    pub done: usize,
    pub failed: usize,
}

/// The answer of `GET /v1/ads/{id}/videos`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobList {
    pub ad_id: i64,
    pub counts: JobCounts,
    pub jobs: Vec<Job>,
}

/// `GET /v1/ads/{id}/videos`: the ad's reaction-video jobs.
#[utoipa::path(
    get,
    path = "/v1/ads/{id}/videos",
    operation_id = "jobs_list",
    tag = "videos",
    summary = "The ad's reaction-video jobs, with counts per state",
    params(("id" = i64, Path, description = "ad id")),
    responses(
        (status = 200, description = "{ad_id, counts: {queued, running, done, failed}, jobs: [Job]}", body = crate::jobs::JobList),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad, or one of another workspace", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn list(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<JobList>> {
    let id = path_id(id, "ad")?;
    state.db.ad(p.workspace_id, id).await?;
    let jobs = state.db.ad_jobs(id).await?;
    let count = |s: &str| jobs.iter().filter(|j| j.state == s).count();
    Ok(Json(JobList {
        ad_id: id,
        counts: JobCounts {
            queued: count("queued"),
            running: count("running"),
            live: count("live"),
            done: count("done"),
            failed: count("failed"),
        },
        jobs,
    }))
}

/// `GET /v1/jobs/{id}/video`: a kept reaction video (campaigns that keep images only).
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/video",
    operation_id = "jobs_video",
    tag = "videos",
    summary = "A job's kept reaction video (campaigns that keep images only), streamed; recorded in the audit log",
    params(("id" = i64, Path, description = "job id")),
    responses(
        (status = 200, description = "the video", body = [u8], content_type = "video/*"),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown job, or its video is not kept", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
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
