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
//!
//! This module holds the job's types and what a finished analysis stores; [`queue`] the queue's
//! database side (enqueue, claim, lease, complete, fail), [`worker`] the worker tasks that run
//! jobs, [`routes`] the HTTP handlers.

mod queue;
pub(crate) mod routes;
mod worker;

pub(crate) use queue::insert_viewers;
pub use routes::{get_job, list, upload, video, JobCounts, JobList, VideoQuery};
pub use worker::{video_analyzer, Workers};

use emolens_video::{FrameResult, VideoError, VideoResult};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;

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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: i64,
    pub ad_id: i64,
    /// `upload` (a reaction video sent to `POST /v1/ads/{id}/videos`) or `live` (a viewer's
    /// live viewing session, see [`crate::live`]).
    pub source: String,
    /// `queued`, `running`, `done` or `failed`; a live session is `live` while its page may
    /// send frames, then `done`.
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

/// A video error's message naming the uploaded file instead of the temporary one.
pub fn video_message(e: &VideoError, tmp: &std::path::Path, name: &str) -> String {
    e.to_string().replace(&tmp.display().to_string(), name)
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
