//! Reaction videos as background jobs, with the queue in the database.
//!
//! ```text
//! POST /v1/ads/{id}/videos ──stream to temp file, probe──▶ video_jobs (queued) + job_video_chunks
//!                                                               │ claim (one process, one slot)
//! worker slot: chunks ─▶ temp file ─▶ analyze_video (blocking) ─┤ heartbeat: lease + progress
//!                                                               ▼
//!                     one transaction: job done + video_viewers + viewer_seconds (ad time)
//! ```
//!
//! Every `emolens serve` (with `--video-workers N`) and `emolens worker` process sharing a
//! database takes jobs from it. A claim is atomic: on PostgreSQL `UPDATE ... WHERE id = (SELECT
//! ... FOR UPDATE SKIP LOCKED)`, so concurrent workers skip each other's rows instead of
//! waiting; on SQLite the same update inside a `BEGIN IMMEDIATE` transaction (SQLite has one
//! writer at a time). A claimed job carries a random token and a lease (database clock, so the
//! machines' clocks do not matter); its worker renews the lease with each progress write. A
//! process that dies leaves its job `running` with a lease that runs out, and the next claim
//! takes the job again; every write of a worker names its token, so a worker that lost its job
//! (lease expired, job erased) can neither report progress nor store results: each job's
//! results are stored exactly once, in the transaction that marks it done. A job whose workers
//! died `max_attempts` times is failed instead of being tried forever.

use crate::audit::record;
use crate::campaigns::path_id;
use crate::db::{now, Backend, Db};
use crate::error::{ServerError, ServerResult};
use crate::upload::{read_video, VideoUpload};
use crate::workspace::{Actor, Principal, Role};
use crate::SharedState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use emolens_faces::Analyzer;
use emolens_video::{analyze_video, FrameResult, VideoError, VideoInfo, VideoOptions, VideoResult};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// Bytes per stored piece of a queued video: large enough for few rows, small enough that no
/// process holds more than this of a video in memory while storing or fetching it.
pub const CHUNK_BYTES: usize = 4 << 20;

/// Highest sampling rate a job may ask for, frames per second.
pub const MAX_JOB_FPS: f64 = 30.0;

/// How the job workers of one process run.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Job worker tasks in this process (each analyses one video at a time; 0: none).
    pub workers: usize,
    /// How long a claimed job stays its worker's without news; after it, any process may take
    /// the job again. Renewed with every progress write (every `lease / 3`, at most every 2 s).
    pub lease: Duration,
    /// How often an idle worker looks for queued jobs (an upload to the same process wakes one
    /// at once).
    pub poll: Duration,
    /// Claims of one job after which a job whose worker keeps dying is failed.
    pub max_attempts: i64,
    /// Frames detected and classified together.
    pub frames_per_batch: usize,
    /// Only the first this many seconds of a reaction video are analysed (the job says so).
    pub max_video_seconds: f64,
}

impl Default for JobSettings {
    fn default() -> Self {
        use crate::defaults as d;
        JobSettings {
            workers: d::VIDEO_WORKERS,
            lease: Duration::from_secs_f64(d::JOB_LEASE_SECONDS),
            poll: Duration::from_millis(d::JOB_POLL_MS),
            max_attempts: d::JOB_MAX_ATTEMPTS,
            frames_per_batch: d::VIDEO_BATCH,
            max_video_seconds: d::MAX_VIDEO_SECONDS,
        }
    }
}

impl JobSettings {
    /// How often a running job's lease and progress are written.
    pub fn heartbeat(&self) -> Duration {
        (self.lease / 3).clamp(Duration::from_millis(200), Duration::from_secs(2))
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Serialize)]
pub struct JobProgress {
    /// Frames sampled and analysed so far.
    pub frames_done: i64,
    /// Frames the whole video should give at the job's rate (from its announced duration).
    pub frames_total: Option<i64>,
    /// Video time analysed so far, seconds.
    pub seconds_done: f64,
    /// The video's announced duration, seconds.
    pub seconds_total: Option<f64>,
    /// `seconds_done / seconds_total` (1 when done).
    pub fraction: Option<f64>,
}

/// A reaction-video job as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub ad_id: i64,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    pub file_name: String,
    pub size_bytes: i64,
    pub sha256: String,
    /// Frames sampled per second of video.
    pub fps: f64,
    /// Time in the video at which the ad starts playing (seconds; results are in ad time).
    pub ad_start_s: f64,
    /// What the container says (read at upload): container, codec, size, rotation, duration.
    pub video: Option<Value>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// Times a worker took the job (more than 1: a worker stopped or died during it).
    pub attempts: i64,
    /// The worker that has (or had) the job: `host:pid#slot`.
    pub worker: Option<String>,
    pub progress: JobProgress,
    /// Queued jobs (of every workspace; no ids) ahead of this one; set while queued.
    pub queued_ahead: Option<i64>,
    /// Why the job failed: `{code, message, status}`.
    pub error: Option<Value>,
    /// Summary of a done job: frames, viewers, complete or partial and why, notes, speed.
    pub result: Option<Value>,
    /// Whether the video is kept after analysis (its campaign keeps images).
    pub video_kept: bool,
}

const JOB_COLUMNS: &str = "j.id, j.ad_id, j.state, j.file_name, j.size_bytes, j.sha256, j.fps, \
    j.ad_start_s, j.video_info, j.created_at, j.started_at, j.finished_at, j.attempts, j.worker, \
    j.frames_done, j.seconds_done, j.seconds_total, j.error, j.error_code, j.error_status, \
    j.result, j.video_kept";

fn json_column(row: &AnyRow, name: &str) -> Result<Option<Value>, sqlx::Error> {
    Ok(row
        .try_get::<Option<String>, _>(name)?
        .and_then(|s| serde_json::from_str(&s).ok()))
}

fn job_from(row: &AnyRow) -> Result<Job, sqlx::Error> {
    let state: String = row.try_get("state")?;
    let fps: f64 = row.try_get("fps")?;
    let seconds_total: Option<f64> = row.try_get("seconds_total")?;
    let seconds_done: f64 = row.try_get("seconds_done")?;
    let done = state == "done";
    let error = match row.try_get::<Option<String>, _>("error")? {
        Some(message) => Some(json!({
            "code": row.try_get::<Option<String>, _>("error_code")?.unwrap_or_else(|| "internal_error".into()),
            "message": message,
            "status": row.try_get::<Option<i64>, _>("error_status")?.unwrap_or(500),
        })),
        None => None,
    };
    Ok(Job {
        id: row.try_get("id")?,
        ad_id: row.try_get("ad_id")?,
        file_name: row.try_get("file_name")?,
        size_bytes: row.try_get("size_bytes")?,
        sha256: row.try_get("sha256")?,
        fps,
        ad_start_s: row.try_get("ad_start_s")?,
        video: json_column(row, "video_info")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        attempts: row.try_get("attempts")?,
        worker: row.try_get("worker")?,
        progress: JobProgress {
            frames_done: row.try_get("frames_done")?,
            frames_total: seconds_total.map(|s| (s * fps).ceil() as i64),
            seconds_done,
            seconds_total,
            fraction: if done {
                Some(1.0)
            } else {
                seconds_total
                    .filter(|t| *t > 0.0)
                    .map(|t| (seconds_done / t).clamp(0.0, 1.0))
            },
        },
        queued_ahead: None,
        error,
        result: json_column(row, "result")?,
        video_kept: row.try_get::<i64, _>("video_kept")? != 0,
        state,
    })
}

/// A job a worker has claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub ad_id: i64,
    pub file_name: String,
    pub fps: f64,
    pub ad_start_s: f64,
    pub attempts: i64,
    /// Fences every later write of this worker on the job.
    pub token: String,
}

/// Progress as the analysis reports it, read by the heartbeat.
#[derive(Debug, Clone, Copy, Default)]
struct Snapshot {
    frames: usize,
    time_s: f64,
}

/// The current time in milliseconds by the database's clock (leases compare only to it).
fn db_now_ms(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    }
}

fn random_token() -> String {
    let mut raw = [0u8; 16];
    if getrandom::fill(&mut raw).is_err() {
        // Tokens fence workers against each other; uniqueness is what counts here.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        raw[..16].copy_from_slice(&t.to_le_bytes());
    }
    hex::encode(raw)
}

/// This process as workers name it: `host:pid`.
fn process_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// A video error's message naming the uploaded file instead of the temporary one.
pub fn video_message(e: &VideoError, tmp: &std::path::Path, name: &str) -> String {
    e.to_string().replace(&tmp.display().to_string(), name)
}

impl Db {
    /// Queues a reaction video for `ad_id` (an ad of the actor's workspace, checked by the
    /// caller): the job, the video in chunks and the audit entry, in one transaction. The same
    /// file (SHA-256) already queued, running or done for the ad is a 409 naming its job.
    pub async fn enqueue_job(
        &self,
        actor: &Actor,
        ad_id: i64,
        upload: &VideoUpload,
        info: &VideoInfo,
        fps: f64,
        ad_start_s: f64,
    ) -> ServerResult<i64> {
        use tokio::io::AsyncReadExt;
        let mut tx = self.begin_write().await?;
        let same = sqlx::query(
            "SELECT id, state FROM video_jobs WHERE ad_id = $1 AND sha256 = $2 AND state <> 'failed' ORDER BY id LIMIT 1",
        )
        .bind(ad_id)
        .bind(&upload.sha256)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = same {
            let (id, state): (i64, String) = (r.try_get("id")?, r.try_get("state")?);
            return Err(ServerError::Conflict(format!(
                "{}: this video (same SHA-256) was already uploaded to ad {ad_id} as job {id} ({state}); a viewer is counted once. Erase job {id} (DELETE /v1/jobs/{id}) to analyse it again",
                upload.name
            )));
        }
        let info_json =
            serde_json::to_string(info).map_err(|e| ServerError::Internal(e.to_string()))?;
        let row = sqlx::query(
            "INSERT INTO video_jobs (ad_id, state, file_name, sha256, size_bytes, fps, ad_start_s, video_info, created_at, seconds_total) \
             VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(ad_id)
        .bind(&upload.name)
        .bind(&upload.sha256)
        .bind(upload.size as i64)
        .bind(fps)
        .bind(ad_start_s)
        .bind(info_json)
        .bind(now())
        .bind(info.duration_s)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        let mut file = tokio::fs::File::open(&upload.file)
            .await
            .map_err(|e| ServerError::Internal(format!("cannot read the received video: {e}")))?;
        let mut seq = 0i64;
        loop {
            let mut buf = Vec::with_capacity(CHUNK_BYTES);
            let n = (&mut file)
                .take(CHUNK_BYTES as u64)
                .read_to_end(&mut buf)
                .await
                .map_err(|e| {
                    ServerError::Internal(format!("cannot read the received video: {e}"))
                })?;
            if n == 0 {
                break;
            }
            sqlx::query("INSERT INTO job_video_chunks (job_id, seq, bytes) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(seq)
                .bind(buf)
                .execute(&mut *tx)
                .await?;
            seq += 1;
        }
        record(
            &mut tx,
            actor,
            "upload",
            "ad",
            Some(ad_id),
            json!({ "videos": 1, "job_id": id, "bytes": upload.size, "fps": fps, "ad_start_s": ad_start_s }),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The job if its ad is in the workspace, or a 404 naming the id.
    pub async fn job(&self, workspace_id: i64, id: i64) -> ServerResult<Job> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM video_jobs j JOIN ads a ON a.id = j.ad_id \
             JOIN campaigns c ON c.id = a.campaign_id WHERE j.id = $1 AND c.workspace_id = $2"
        ))
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Err(ServerError::NotFound(format!(
                "job {id} does not exist; list an ad's reaction videos with GET /v1/ads/{{id}}/videos"
            )));
        };
        let mut job = job_from(&row)?;
        if job.state == "queued" {
            let r = sqlx::query(
                "SELECT COUNT(*) AS n FROM video_jobs WHERE state = 'queued' AND id < $1",
            )
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
            job.queued_ahead = Some(r.try_get("n")?);
        }
        Ok(job)
    }

    /// The jobs of an ad (checked to be in the caller's workspace), oldest first.
    pub async fn ad_jobs(&self, ad_id: i64) -> ServerResult<Vec<Job>> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM video_jobs j WHERE j.ad_id = $1 ORDER BY j.id"
        ))
        .bind(ad_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(job_from).collect::<Result<_, _>>()?)
    }

    /// Fails the running jobs whose lease ran out after their last allowed attempt, and drops
    /// the videos of failed jobs whose campaign does not keep images.
    async fn fail_exhausted(
        conn: &mut sqlx::AnyConnection,
        backend: Backend,
        max_attempts: i64,
    ) -> ServerResult<u64> {
        let now_ms = db_now_ms(backend);
        // Rows another claim holds are skipped (PostgreSQL): no two claims wait on each other.
        let skip_locked = match backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let failed = sqlx::query(&format!(
            "UPDATE video_jobs SET state = 'failed', finished_at = $1, claim_token = NULL, lease_until = NULL, \
             error_code = 'worker_lost', error_status = 500, \
             error = 'the job was started ' || CAST(attempts AS TEXT) || ' times and each time its worker stopped (crashed, was killed or lost the database) before finishing; the video may need more memory than the workers have, or may crash the decoder' \
             WHERE id IN (SELECT id FROM video_jobs WHERE state = 'running' AND lease_until < {now_ms} AND attempts >= $2{skip_locked})"
        ))
        .bind(now())
        .bind(max_attempts)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if failed > 0 {
            sqlx::query(
                "DELETE FROM job_video_chunks WHERE job_id IN (SELECT j.id FROM video_jobs j \
                 JOIN ads a ON a.id = j.ad_id JOIN campaigns c ON c.id = a.campaign_id \
                 WHERE j.state = 'failed' AND c.keep_images = 0)",
            )
            .execute(&mut *conn)
            .await?;
        }
        Ok(failed)
    }

    /// Takes the oldest job that is queued, or running with an expired lease (its worker died),
    /// for `worker`; None when there is none. Atomic across processes (see the module notes).
    pub async fn claim_job(
        &self,
        worker: &str,
        settings: &JobSettings,
    ) -> ServerResult<Option<Claimed>> {
        let token = random_token();
        let lease_ms = settings.lease.as_millis() as i64;
        let now_ms = db_now_ms(self.backend());
        let skip_locked = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE video_jobs SET state = 'running', claim_token = $1, worker = $2, \
             lease_until = {now_ms} + $3, attempts = attempts + 1, started_at = $4, \
             frames_done = 0, seconds_done = 0 \
             WHERE id = (SELECT id FROM video_jobs WHERE (state = 'queued' OR (state = 'running' AND lease_until < {now_ms})) \
             AND attempts < $5 ORDER BY id LIMIT 1{skip_locked}) \
             RETURNING id, ad_id, file_name, fps, ad_start_s, attempts"
        );
        // On SQLite one writer at a time from the start (`BEGIN IMMEDIATE`): the claim cannot
        // be overtaken between its read and its write, and no lock upgrade can deadlock.
        let mut tx = self.begin_write().await?;
        let lost = Self::fail_exhausted(&mut tx, self.backend(), settings.max_attempts).await?;
        if lost > 0 {
            tracing::warn!(
                jobs = lost,
                "failed job(s) whose workers kept dying (see their error)"
            );
        }
        let row = sqlx::query(&sql)
            .bind(&token)
            .bind(worker)
            .bind(lease_ms)
            .bind(now())
            .bind(settings.max_attempts)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(Claimed {
            id: r.try_get("id")?,
            ad_id: r.try_get("ad_id")?,
            file_name: r.try_get("file_name")?,
            fps: r.try_get("fps")?,
            ad_start_s: r.try_get("ad_start_s")?,
            attempts: r.try_get("attempts")?,
            token,
        }))
    }

    /// Renews a running job's lease and writes its progress; false when the job is no longer
    /// this worker's (erased, or taken over after the lease ran out).
    pub async fn heartbeat(
        &self,
        job: &Claimed,
        lease: Duration,
        frames: usize,
        time_s: f64,
    ) -> ServerResult<bool> {
        let now_ms = db_now_ms(self.backend());
        let r = sqlx::query(&format!(
            "UPDATE video_jobs SET lease_until = {now_ms} + $1, frames_done = $2, seconds_done = $3 \
             WHERE id = $4 AND claim_token = $5 AND state = 'running'"
        ))
        .bind(lease.as_millis() as i64)
        .bind(frames as i64)
        .bind(time_s)
        .bind(job.id)
        .bind(&job.token)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Writes a claimed job's video into a new temporary file; None when the job's video is no
    /// longer stored (the job was erased).
    pub async fn fetch_job_video(&self, job: &Claimed) -> ServerResult<Option<tempfile::TempPath>> {
        use tokio::io::AsyncWriteExt;
        let mut b = tempfile::Builder::new();
        b.prefix("emolens-job-");
        let ext = std::path::Path::new(&job.file_name)
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.len() <= 5 && e.chars().all(|c| c.is_ascii_alphanumeric()))
            .map(|e| format!(".{e}"));
        if let Some(e) = &ext {
            b.suffix(e);
        }
        let (std_file, path) = b
            .tempfile()
            .map_err(|e| ServerError::Internal(format!("cannot create a temporary file: {e}")))?
            .into_parts();
        let mut file = tokio::fs::File::from_std(std_file);
        let mut seq = 0i64;
        loop {
            let row =
                sqlx::query("SELECT bytes FROM job_video_chunks WHERE job_id = $1 AND seq = $2")
                    .bind(job.id)
                    .bind(seq)
                    .fetch_optional(&self.pool)
                    .await?;
            let Some(row) = row else { break };
            let bytes: Vec<u8> = row.try_get("bytes")?;
            file.write_all(&bytes)
                .await
                .map_err(|e| ServerError::Internal(format!("cannot write the video: {e}")))?;
            seq += 1;
        }
        file.flush()
            .await
            .map_err(|e| ServerError::Internal(format!("cannot write the video: {e}")))?;
        Ok((seq > 0).then_some(path))
    }

    async fn keeps_images(conn: &mut sqlx::AnyConnection, ad_id: i64) -> ServerResult<bool> {
        let row = sqlx::query(
            "SELECT c.keep_images FROM ads a JOIN campaigns c ON c.id = a.campaign_id WHERE a.id = $1",
        )
        .bind(ad_id)
        .fetch_optional(conn)
        .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>("keep_images"))
            .transpose()?
            .unwrap_or(0)
            != 0)
    }

    /// Stores a finished job's results in one transaction: the job marked done, one row per
    /// viewer and per viewer per second, and the video dropped unless the campaign keeps
    /// images. False (nothing written) when the job is no longer this worker's.
    pub async fn complete_job(&self, job: &Claimed, out: &JobOutput) -> ServerResult<bool> {
        let mut tx = self.begin_write().await?;
        let result = serde_json::to_string(&out.summary)
            .map_err(|e| ServerError::Internal(e.to_string()))?;
        let r = sqlx::query(
            "UPDATE video_jobs SET state = 'done', finished_at = $1, result = $2, frames_done = $3, \
             seconds_done = $4, ad_first_s = $5, ad_last_s = $6, claim_token = NULL, lease_until = NULL \
             WHERE id = $7 AND claim_token = $8 AND state = 'running'",
        )
        .bind(now())
        .bind(result)
        .bind(out.frames as i64)
        .bind(out.seconds_done)
        .bind(out.ad_span.map(|s| s.0))
        .bind(out.ad_span.map(|s| s.1))
        .bind(job.id)
        .bind(&job.token)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for v in &out.viewers {
            let means: std::collections::BTreeMap<&str, f32> = v
                .mean_probabilities
                .iter()
                .map(|p| (p.emotion.as_str(), p.probability))
                .collect();
            let row = sqlx::query(
                "INSERT INTO video_viewers (job_id, ad_id, viewer, first_s, last_s, frames_with_face, valence, top_emotion, mean_probabilities) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            )
            .bind(job.id)
            .bind(job.ad_id)
            .bind(v.viewer as i64)
            .bind(v.first_s)
            .bind(v.last_s)
            .bind(v.frames_with_face as i64)
            .bind(v.valence)
            .bind(v.top_emotion.clone())
            .bind(json!(means).to_string())
            .fetch_one(&mut *tx)
            .await?;
            let viewer_id: i64 = row.try_get("id")?;
            for s in &v.seconds {
                let probs = (!s.probabilities.is_empty()).then(|| {
                    let m: std::collections::BTreeMap<&str, f32> = s
                        .probabilities
                        .iter()
                        .map(|p| (p.emotion.as_str(), p.probability))
                        .collect();
                    json!(m).to_string()
                });
                sqlx::query(
                    "INSERT INTO viewer_seconds (viewer_id, job_id, ad_id, ad_second, frames, frames_with_face, classified_faces, uncertain_faces, valence, top_emotion, probabilities) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(viewer_id)
                .bind(job.id)
                .bind(job.ad_id)
                .bind(s.second as i64)
                .bind(s.frames as i64)
                .bind(s.frames_with_face as i64)
                .bind(s.classified_faces as i64)
                .bind(s.uncertain_faces as i64)
                .bind(s.valence)
                .bind(s.top_emotion.clone())
                .bind(probs)
                .execute(&mut *tx)
                .await?;
            }
        }
        let keep = Self::keeps_images(&mut tx, job.ad_id).await?;
        if !keep {
            sqlx::query("DELETE FROM job_video_chunks WHERE job_id = $1")
                .bind(job.id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE video_jobs SET video_kept = $1 WHERE id = $2")
            .bind(keep as i64)
            .bind(job.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a claimed job failed with its error (the video dropped unless kept); false when
    /// the job is no longer this worker's.
    pub async fn fail_job(
        &self,
        job: &Claimed,
        code: &str,
        status: u16,
        message: &str,
    ) -> ServerResult<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE video_jobs SET state = 'failed', finished_at = $1, error = $2, error_code = $3, \
             error_status = $4, claim_token = NULL, lease_until = NULL \
             WHERE id = $5 AND claim_token = $6 AND state = 'running'",
        )
        .bind(now())
        .bind(message)
        .bind(code)
        .bind(status as i64)
        .bind(job.id)
        .bind(&job.token)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let keep = Self::keeps_images(&mut tx, job.ad_id).await?;
        if !keep {
            sqlx::query("DELETE FROM job_video_chunks WHERE job_id = $1")
                .bind(job.id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE video_jobs SET video_kept = $1 WHERE id = $2")
            .bind(keep as i64)
            .bind(job.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Puts a claimed job back in the queue (this process is stopping); the attempt does not
    /// count.
    pub async fn release_job(&self, job: &Claimed) -> ServerResult<bool> {
        let r = sqlx::query(
            "UPDATE video_jobs SET state = 'queued', claim_token = NULL, worker = NULL, lease_until = NULL, \
             attempts = attempts - 1, frames_done = 0, seconds_done = 0 \
             WHERE id = $1 AND claim_token = $2 AND state = 'running'",
        )
        .bind(job.id)
        .bind(&job.token)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The job, if its video is kept, with the number of stored chunks; or a 404 saying why
    /// there is no video.
    pub async fn kept_video(&self, workspace_id: i64, id: i64) -> ServerResult<(Job, i64)> {
        let job = self.job(workspace_id, id).await?;
        let chunks: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM job_video_chunks WHERE job_id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        if chunks == 0 || !job.video_kept {
            return Err(ServerError::NotFound(format!(
                "job {id}'s video is not kept: reaction videos are deleted once analysed unless the campaign keeps images (or its retention period purged it)"
            )));
        }
        Ok((job, chunks))
    }

    /// One stored chunk of a job's video.
    pub async fn video_chunk(&self, id: i64, seq: i64) -> ServerResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT bytes FROM job_video_chunks WHERE job_id = $1 AND seq = $2")
            .bind(id)
            .bind(seq)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("bytes")).transpose()?)
    }
}

/// What a finished analysis stores.
#[derive(Debug, Clone)]
pub struct JobOutput {
    /// Per viewer and per second of ad time.
    pub viewers: Vec<emolens_video::ViewerTimeline>,
    /// Ad time of the first and last frame analysed.
    pub ad_span: Option<(f64, f64)>,
    pub frames: usize,
    pub seconds_done: f64,
    pub summary: Value,
}

/// Turns a video's result into ad time: frames before the ad starts (`ad_start_s` into the
/// video) are dropped, the rest shifted, and the per-viewer, per-second timelines rebuilt on
/// the ad's clock (so second 0 is the ad's first second however the recording started).
pub fn job_output(
    result: &VideoResult,
    classes: &[String],
    ad_start_s: f64,
    elapsed_s: f64,
) -> JobOutput {
    let shifted: Vec<FrameResult> = result
        .frames
        .iter()
        .filter_map(|f| {
            let t = f.time_s - ad_start_s;
            (t >= 0.0).then(|| FrameResult {
                time_s: t,
                ..f.clone()
            })
        })
        .collect();
    let before = result.frames.len() - shifted.len();
    let viewers = emolens_video::timeline::viewer_timelines(&shifted, classes);
    let ad_span = shifted
        .first()
        .zip(shifted.last())
        .map(|(a, b)| (a.time_s, b.time_s));
    let video_s = result.frames.last().map_or(0.0, |f| f.time_s);
    let faces: usize = shifted.iter().map(|f| f.faces.len()).sum();
    let mut notes = result.notes.clone();
    if before > 0 {
        notes.push(format!(
            "{before} frame(s) before the ad starts ({ad_start_s:.2} s into the video) are not counted"
        ));
    }
    if shifted.is_empty() && !result.frames.is_empty() {
        notes.push(format!(
            "the video ends before the ad starts ({ad_start_s:.2} s into the video): nothing is counted"
        ));
    }
    let summaries: Vec<Value> = viewers
        .iter()
        .map(|v| {
            json!({
                "viewer": v.viewer,
                "first_s": v.first_s,
                "last_s": v.last_s,
                "frames_with_face": v.frames_with_face,
                "valence": v.valence,
                "top_emotion": v.top_emotion,
            })
        })
        .collect();
    let summary = json!({
        "complete": result.complete,
        "stopped": result.stopped,
        "frames": result.frames.len(),
        "frames_counted": shifted.len(),
        "faces": faces,
        "viewers": viewers.len(),
        "ad_first_s": ad_span.map(|s| s.0),
        "ad_last_s": ad_span.map(|s| s.1),
        "seconds": ad_span.map_or(0, |s| s.1.floor() as i64 + 1),
        "decode": result.decode,
        "notes": notes,
        "analysis_s": elapsed_s,
        "real_time_factor": if elapsed_s > 0.0 { video_s / elapsed_s } else { 0.0 },
        "viewer_summaries": summaries,
    });
    JobOutput {
        viewers,
        ad_span,
        frames: result.frames.len(),
        seconds_done: video_s,
        summary,
    }
}

/// What the workers of a process share.
struct WorkerContext {
    db: Db,
    analyzer: Arc<Analyzer>,
    settings: JobSettings,
    wake: Arc<Notify>,
    process: String,
}

/// The job workers of one process; [`Workers::stop`] ends them.
pub struct Workers {
    stop: watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    /// Starts `settings.workers` worker tasks on the current tokio runtime. `wake` is notified
    /// by uploads to this process, so a job starts at once instead of at the next poll.
    pub fn start(
        db: Db,
        analyzer: Arc<Analyzer>,
        settings: JobSettings,
        wake: Arc<Notify>,
    ) -> Workers {
        let (stop, rx) = watch::channel(false);
        let ctx = Arc::new(WorkerContext {
            db,
            analyzer,
            wake,
            process: process_name(),
            settings,
        });
        let handles = (0..ctx.settings.workers)
            .map(|slot| tokio::spawn(worker_loop(ctx.clone(), slot, rx.clone())))
            .collect();
        if ctx.settings.workers > 0 {
            tracing::info!(
                workers = ctx.settings.workers,
                process = %ctx.process,
                lease_s = ctx.settings.lease.as_secs_f64(),
                "reaction-video job workers started"
            );
        }
        Workers { stop, handles }
    }

    /// Number of worker tasks.
    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// Stops taking jobs; a job in progress is put back in the queue for another worker (its
    /// attempt does not count). Returns when every worker has stopped.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for h in self.handles {
            let _ = h.await;
        }
    }
}

/// The analyzer video jobs use: the photo analyzer's detector and gate on `classifier`.
pub fn video_analyzer(
    classifier: Arc<dyn emolens_core::EmotionClassifier>,
    min_confidence: f32,
) -> ServerResult<Arc<Analyzer>> {
    let config = emolens_faces::AnalyzerConfig {
        min_confidence,
        ..Default::default()
    };
    Analyzer::new(classifier, config)
        .map(Arc::new)
        .map_err(|e| ServerError::Internal(format!("video analyzer: {e}")))
}

async fn worker_loop(ctx: Arc<WorkerContext>, slot: usize, mut stop: watch::Receiver<bool>) {
    let name = format!("{}#{slot}", ctx.process);
    // Idle workers of many processes should not poll in step.
    let jitter = Duration::from_millis((std::process::id() as u64 * 131 + slot as u64 * 97) % 250);
    loop {
        if *stop.borrow() {
            break;
        }
        match ctx.db.claim_job(&name, &ctx.settings).await {
            Ok(Some(job)) => {
                run_job(&ctx, &name, job, &mut stop).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(worker = %name, error = %e, "looking for a job failed; trying again")
            }
        }
        tokio::select! {
            _ = ctx.wake.notified() => {}
            _ = tokio::time::sleep(ctx.settings.poll + jitter) => {}
            r = stop.changed() => if r.is_err() { break },
        }
    }
    tracing::debug!(worker = %name, "job worker stopped");
}

async fn run_job(ctx: &WorkerContext, name: &str, job: Claimed, stop: &mut watch::Receiver<bool>) {
    let started = Instant::now();
    tracing::info!(job = job.id, ad = job.ad_id, attempt = job.attempts, worker = %name, "job started");
    let path = match ctx.db.fetch_job_video(&job).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            // Erased since it was claimed (or its video is gone): nothing to analyse.
            let _ = ctx
                .db
                .fail_job(
                    &job,
                    "video_missing",
                    410,
                    "the job's video is no longer stored (erased or purged) and cannot be analysed",
                )
                .await;
            tracing::warn!(job = job.id, "job has no stored video; not analysed");
            return;
        }
        Err(e) => {
            tracing::warn!(job = job.id, error = %e, "cannot fetch the job's video; putting it back in the queue");
            let _ = ctx.db.release_job(&job).await;
            return;
        }
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let snapshot = Arc::new(Mutex::new(Snapshot::default()));
    let opts = VideoOptions::new(
        job.fps,
        ctx.settings.frames_per_batch.max(1),
        ctx.settings.max_video_seconds,
    )
    .with_cancel(cancel.clone());
    let analyzer = ctx.analyzer.clone();
    let tmp: std::path::PathBuf = path.to_path_buf();
    let snap = snapshot.clone();
    let analysis = tokio::task::spawn_blocking(move || {
        analyze_video(&tmp, &analyzer, &opts, &mut |p| {
            if let Ok(mut s) = snap.lock() {
                *s = Snapshot {
                    frames: p.frames,
                    time_s: p.time_s,
                };
            }
        })
    });
    tokio::pin!(analysis);
    let mut tick = tokio::time::interval(ctx.settings.heartbeat());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut lost, mut stopping) = (false, false);
    let outcome = loop {
        tokio::select! {
            r = &mut analysis => break r,
            _ = tick.tick() => {
                let s = snapshot.lock().map(|s| *s).unwrap_or_default();
                match ctx.db.heartbeat(&job, ctx.settings.lease, s.frames, s.time_s).await {
                    Ok(true) => {}
                    Ok(false) => {
                        if !lost {
                            tracing::warn!(job = job.id, worker = %name, "the job is no longer this worker's (erased, or taken over after its lease ran out); stopping it");
                        }
                        lost = true;
                        cancel.store(true, Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!(job = job.id, error = %e, "cannot renew the job's lease; the analysis goes on"),
                }
            }
            r = stop.changed(), if !stopping => {
                let _ = r;
                stopping = true;
                cancel.store(true, Ordering::Relaxed);
            }
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let classes = ctx.analyzer.classes().to_vec();
    match outcome {
        Err(join) => {
            let msg = format!("the analysis crashed: {join}");
            tracing::error!(job = job.id, "{msg}");
            let _ = ctx.db.fail_job(&job, "internal_error", 500, &msg).await;
        }
        Ok(Err(VideoError::Cancelled { .. })) => {
            if lost {
                tracing::info!(job = job.id, "job abandoned: it is no longer this worker's");
            } else {
                match ctx.db.release_job(&job).await {
                    Ok(_) => {
                        tracing::info!(job = job.id, "worker stopping: job put back in the queue")
                    }
                    Err(e) => {
                        tracing::warn!(job = job.id, error = %e, "cannot put the job back; it is taken again when its lease runs out")
                    }
                }
            }
        }
        Ok(Err(e)) => {
            let msg = video_message(&e, &path, &job.file_name);
            let status = ServerError::from_video(&e, msg.clone()).status().as_u16();
            tracing::warn!(job = job.id, "job failed: {msg}");
            if let Err(db) = ctx
                .db
                .fail_job(&job, ServerError::video_code(&e), status, &msg)
                .await
            {
                tracing::warn!(job = job.id, error = %db, "cannot record the failure; the job is tried again when its lease runs out");
            }
        }
        Ok(Ok(result)) => {
            let mut out = job_output(&result, &classes, job.ad_start_s, elapsed);
            if let Some(notes) = out.summary["notes"].as_array_mut() {
                for n in notes.iter_mut() {
                    if let Some(s) = n.as_str() {
                        *n = json!(s.replace(&path.display().to_string(), &job.file_name));
                    }
                }
            }
            match ctx.db.complete_job(&job, &out).await {
                Ok(true) => tracing::info!(
                    job = job.id,
                    ad = job.ad_id,
                    frames = out.frames,
                    viewers = out.viewers.len(),
                    seconds = format!("{elapsed:.2}"),
                    real_time_factor = format!("{:.2}", out.seconds_done / elapsed.max(1e-9)),
                    "job done"
                ),
                Ok(false) => tracing::info!(job = job.id, "job finished but is no longer this worker's (erased or taken over); results not stored"),
                Err(e) => tracing::warn!(job = job.id, error = %e, "cannot store the job's results; it is tried again when its lease runs out"),
            }
        }
    }
}

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
        "counts": { "queued": count("queued"), "running": count("running"), "done": count("done"), "failed": count("failed") },
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
