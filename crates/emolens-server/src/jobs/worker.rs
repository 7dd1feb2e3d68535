//! The job workers of one process: each slot claims a job, analyses its video on a blocking
//! thread while a heartbeat renews the lease and writes progress, and stores the outcome.

use super::{job_output, video_message, Claimed, JobSettings};
use crate::db::Db;
use crate::error::{ServerError, ServerResult};
use emolens_faces::Analyzer;
use emolens_video::{analyze_video, VideoError, VideoOptions};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// Progress as the analysis reports it, read by the heartbeat.
#[derive(Debug, Clone, Copy, Default)]
struct Snapshot {
    frames: usize,
    time_s: f64,
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
