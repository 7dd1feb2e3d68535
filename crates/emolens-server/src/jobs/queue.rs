//! The queue's database side: enqueue a job with its video, claim one (atomically, with a
//! lease), renew the lease with progress, fetch the video, and end the job (done, failed, put
//! back).

use super::{Claimed, Job, JobOutput, JobProgress, JobSettings, CHUNK_BYTES};
use crate::audit::record;
use crate::db::{now, Backend, Db};
use crate::error::{ServerError, ServerResult};
use crate::upload::VideoUpload;
use crate::workspace::Actor;
use emolens_video::VideoInfo;
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::time::Duration;

const JOB_COLUMNS: &str = "j.id, j.ad_id, j.state, j.file_name, j.size_bytes, j.sha256, j.fps, \
    j.ad_start_s, j.video_info, j.created_at, j.started_at, j.finished_at, j.attempts, j.worker, \
    j.frames_done, j.seconds_done, j.seconds_total, j.error, j.error_code, j.error_status, \
    j.result, j.video_kept, j.source";

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
        source: row.try_get("source")?,
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
        insert_viewers(&mut tx, job.id, job.ad_id, &out.viewers).await?;
        Self::settle_video(&mut tx, job).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// After a job ends: its video is dropped unless the campaign keeps images, and the job
    /// records which.
    async fn settle_video(conn: &mut sqlx::AnyConnection, job: &Claimed) -> ServerResult<()> {
        let keep = Self::keeps_images(&mut *conn, job.ad_id).await?;
        if !keep {
            sqlx::query("DELETE FROM job_video_chunks WHERE job_id = $1")
                .bind(job.id)
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query("UPDATE video_jobs SET video_kept = $1 WHERE id = $2")
            .bind(keep as i64)
            .bind(job.id)
            .execute(&mut *conn)
            .await?;
        Ok(())
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
        Self::settle_video(&mut tx, job).await?;
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

/// Stores per-viewer and per-second rows of one job (a reaction video's or a live session's):
/// one `video_viewers` row per viewer and one `viewer_seconds` row per viewer per second.
pub(crate) async fn insert_viewers(
    conn: &mut sqlx::AnyConnection,
    job_id: i64,
    ad_id: i64,
    viewers: &[emolens_video::timeline::ViewerTimeline],
) -> ServerResult<()> {
    for v in viewers {
        let means: std::collections::BTreeMap<&str, f32> = v
            .mean_probabilities
            .iter()
            .map(|p| (p.emotion.as_str(), p.probability))
            .collect();
        let row = sqlx::query(
            "INSERT INTO video_viewers (job_id, ad_id, viewer, first_s, last_s, frames_with_face, valence, top_emotion, mean_probabilities) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(job_id)
        .bind(ad_id)
        .bind(v.viewer as i64)
        .bind(v.first_s)
        .bind(v.last_s)
        .bind(v.frames_with_face as i64)
        .bind(v.valence)
        .bind(v.top_emotion.clone())
        .bind(json!(means).to_string())
        .fetch_one(&mut *conn)
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
            .bind(job_id)
            .bind(ad_id)
            .bind(s.second as i64)
            .bind(s.frames as i64)
            .bind(s.frames_with_face as i64)
            .bind(s.classified_faces as i64)
            .bind(s.uncertain_faces as i64)
            .bind(s.valence)
            .bind(s.top_emotion.clone())
            .bind(probs)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}
