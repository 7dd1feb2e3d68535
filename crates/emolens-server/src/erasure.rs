//! Erasure and retention. Erasing a campaign, an ad, a photo or a reaction-video job deletes it
//! and everything that refers to it (ads, photos, their duplicates, faces, kept images; reaction
//! video jobs and live viewing sessions, their viewers and per-second results, stored videos and
//! kept frames; kept creatives; viewing links) in one
//! transaction, with its audit entry; results, comparisons and timelines are computed from the
//! rows on every read, so nothing stale stays behind. On SQLite the freed pages are zeroed
//! (`secure_delete`), so no kept-image or kept-video byte stays in the file. The retention task
//! purges what a campaign's `retention_days` says.

use crate::audit::record;
use crate::campaigns::path_id;
use crate::db::{now, Db};
use crate::error::{ServerError, ServerResult};
use crate::workspace::{Actor, Principal, Role};
use crate::SharedState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};

/// What to erase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Campaign(i64),
    Ad(i64),
    /// A photo and the uploads recorded as its duplicates (the same file).
    Photo(i64),
    /// A reaction-video job: its viewers, their seconds and the stored video.
    Job(i64),
}

impl Target {
    fn kind(self) -> &'static str {
        match self {
            Target::Campaign(_) => "campaign",
            Target::Ad(_) => "ad",
            Target::Photo(_) => "photo",
            Target::Job(_) => "job",
        }
    }
    fn id(self) -> i64 {
        match self {
            Target::Campaign(id) | Target::Ad(id) | Target::Photo(id) | Target::Job(id) => id,
        }
    }
}

/// Rows removed by an erasure or a purge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Erased {
    pub campaigns: u64,
    pub ads: u64,
    pub photos: u64,
    pub faces: u64,
    /// Kept images among the photos (or, for a purge, images dropped from photos kept).
    pub images: u64,
    /// Reaction-video jobs (queued, running, done or failed).
    pub jobs: u64,
    /// Viewers tracked in their videos, and their per-second rows.
    pub viewers: u64,
    pub viewer_seconds: u64,
    /// Reaction videos that were still stored (waiting for analysis, or kept by the campaign;
    /// for a purge, kept videos dropped from jobs kept).
    pub videos: u64,
}

/// Who may erase: a key (only in its workspace), or the command line (any workspace).
#[derive(Debug, Clone)]
pub enum Eraser {
    Key(Actor),
    Cli,
}

// Subqueries naming the photos a target covers; `$1` is the target id.
const CAMPAIGN_PHOTOS: &str =
    "SELECT p.id FROM photos p JOIN ads a ON a.id = p.ad_id WHERE a.campaign_id = $1";
const AD_PHOTOS: &str = "SELECT id FROM photos WHERE ad_id = $1";
const PHOTO_AND_DUPLICATES: &str = "SELECT id FROM photos WHERE id = $1 OR duplicate_of = $1";
// Subqueries naming the reaction-video jobs a target covers; `$1` is the target id.
const CAMPAIGN_JOBS: &str =
    "SELECT j.id FROM video_jobs j JOIN ads a ON a.id = j.ad_id WHERE a.campaign_id = $1";
const AD_JOBS: &str = "SELECT id FROM video_jobs WHERE ad_id = $1";
const THE_JOB: &str = "SELECT id FROM video_jobs WHERE id = $1";

/// Erases the jobs `jobs` (a subquery on `$1` = `id`) with their viewers, seconds and stored
/// videos. The jobs' rows are locked first, so a worker storing a job's results right now
/// either finishes before (and its rows are erased here) or finds the job gone (and stores
/// nothing).
async fn erase_jobs(
    conn: &mut AnyConnection,
    jobs: &str,
    id: i64,
    e: &mut Erased,
) -> ServerResult<()> {
    sqlx::query(&format!(
        "UPDATE video_jobs SET state = state WHERE id IN ({jobs})"
    ))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    e.videos += count(
        conn,
        &format!(
            "SELECT COUNT(DISTINCT job_id) AS n FROM job_video_chunks WHERE job_id IN ({jobs})"
        ),
        id,
    )
    .await?;
    e.viewer_seconds += delete(
        conn,
        &format!("DELETE FROM viewer_seconds WHERE job_id IN ({jobs})"),
        id,
    )
    .await?;
    e.viewers += delete(
        conn,
        &format!("DELETE FROM video_viewers WHERE job_id IN ({jobs})"),
        id,
    )
    .await?;
    delete(
        conn,
        &format!("DELETE FROM job_video_chunks WHERE job_id IN ({jobs})"),
        id,
    )
    .await?;
    delete(
        conn,
        &format!("DELETE FROM live_frames WHERE job_id IN ({jobs})"),
        id,
    )
    .await?;
    e.jobs += delete(
        conn,
        &format!("DELETE FROM video_jobs WHERE id IN ({jobs})"),
        id,
    )
    .await?;
    Ok(())
}

async fn count(conn: &mut AnyConnection, sql: &str, id: i64) -> ServerResult<u64> {
    let row = sqlx::query(sql).bind(id).fetch_one(conn).await?;
    Ok(row.try_get::<i64, _>("n")?.max(0) as u64)
}

async fn delete(conn: &mut AnyConnection, sql: &str, id: i64) -> ServerResult<u64> {
    Ok(sqlx::query(sql)
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected())
}

impl Db {
    /// The workspace a target belongs to, or None when it does not exist.
    async fn target_workspace(
        conn: &mut AnyConnection,
        target: Target,
    ) -> ServerResult<Option<i64>> {
        let sql = match target {
            Target::Campaign(_) => "SELECT workspace_id FROM campaigns WHERE id = $1",
            Target::Ad(_) => {
                "SELECT c.workspace_id FROM ads a JOIN campaigns c ON c.id = a.campaign_id WHERE a.id = $1"
            }
            Target::Photo(_) => {
                "SELECT c.workspace_id FROM photos p JOIN ads a ON a.id = p.ad_id \
                 JOIN campaigns c ON c.id = a.campaign_id WHERE p.id = $1"
            }
            Target::Job(_) => {
                "SELECT c.workspace_id FROM video_jobs j JOIN ads a ON a.id = j.ad_id \
                 JOIN campaigns c ON c.id = a.campaign_id WHERE j.id = $1"
            }
        };
        let row = sqlx::query(sql)
            .bind(target.id())
            .fetch_optional(conn)
            .await?;
        Ok(row.map(|r| r.try_get("workspace_id")).transpose()?)
    }

    /// Erases a target and everything referring to it, in one transaction with its audit
    /// entry. A key erases only in its own workspace: elsewhere the target answers 404, as if
    /// it did not exist.
    pub async fn erase(&self, who: &Eraser, target: Target) -> ServerResult<Erased> {
        let mut tx = self.begin_write().await?;
        let ws = Self::target_workspace(&mut tx, target).await?;
        let actor = match (who, ws) {
            (Eraser::Key(a), Some(ws)) if a.workspace_id == ws => a.clone(),
            (Eraser::Cli, Some(ws)) => Actor {
                workspace_id: ws,
                key_id: None,
                name: "cli".into(),
            },
            _ => {
                return Err(ServerError::NotFound(format!(
                    "{} {} does not exist (nothing was erased)",
                    target.kind(),
                    target.id()
                )))
            }
        };
        let id = target.id();
        let mut e = Erased::default();
        match target {
            Target::Campaign(_) => erase_jobs(&mut tx, CAMPAIGN_JOBS, id, &mut e).await?,
            Target::Ad(_) => erase_jobs(&mut tx, AD_JOBS, id, &mut e).await?,
            Target::Job(_) => erase_jobs(&mut tx, THE_JOB, id, &mut e).await?,
            Target::Photo(_) => {}
        }
        let photos = match target {
            Target::Campaign(_) => CAMPAIGN_PHOTOS,
            Target::Ad(_) => AD_PHOTOS,
            Target::Photo(_) => PHOTO_AND_DUPLICATES,
            // No photo: a subquery that names none.
            Target::Job(_) => "SELECT id FROM photos WHERE 0 = 1 AND id = $1",
        };
        e = Erased {
            images: count(
                &mut tx,
                &format!(
                    "SELECT COUNT(*) AS n FROM photos WHERE image IS NOT NULL AND id IN ({photos})"
                ),
                id,
            )
            .await?,
            faces: delete(
                &mut tx,
                &format!("DELETE FROM faces WHERE photo_id IN ({photos})"),
                id,
            )
            .await?,
            ..e
        };
        match target {
            Target::Campaign(_) => {
                delete(
                    &mut tx,
                    "DELETE FROM ad_creatives WHERE ad_id IN (SELECT id FROM ads WHERE campaign_id = $1)",
                    id,
                )
                .await?;
                delete(
                    &mut tx,
                    "DELETE FROM live_links WHERE ad_id IN (SELECT id FROM ads WHERE campaign_id = $1)",
                    id,
                )
                .await?;
                e.faces += delete(
                    &mut tx,
                    "DELETE FROM faces WHERE ad_id IN (SELECT id FROM ads WHERE campaign_id = $1)",
                    id,
                )
                .await?;
                e.photos = delete(
                    &mut tx,
                    "DELETE FROM photos WHERE ad_id IN (SELECT id FROM ads WHERE campaign_id = $1)",
                    id,
                )
                .await?;
                e.ads = delete(&mut tx, "DELETE FROM ads WHERE campaign_id = $1", id).await?;
                e.campaigns = delete(&mut tx, "DELETE FROM campaigns WHERE id = $1", id).await?;
            }
            Target::Ad(_) => {
                delete(&mut tx, "DELETE FROM ad_creatives WHERE ad_id = $1", id).await?;
                delete(&mut tx, "DELETE FROM live_links WHERE ad_id = $1", id).await?;
                e.faces += delete(&mut tx, "DELETE FROM faces WHERE ad_id = $1", id).await?;
                e.photos = delete(&mut tx, "DELETE FROM photos WHERE ad_id = $1", id).await?;
                e.ads = delete(&mut tx, "DELETE FROM ads WHERE id = $1", id).await?;
            }
            Target::Photo(_) => {
                // Duplicates first: they point at the photo.
                e.photos =
                    delete(&mut tx, "DELETE FROM photos WHERE duplicate_of = $1", id).await?;
                e.photos += delete(&mut tx, "DELETE FROM photos WHERE id = $1", id).await?;
            }
            Target::Job(_) => {}
        }
        record(&mut tx, &actor, "erase", target.kind(), Some(id), json!(e)).await?;
        tx.commit().await?;
        tracing::info!(kind = target.kind(), id, actor = %actor.name, erased = ?e, "erased");
        Ok(e)
    }

    /// Applies every campaign's retention period as of `at` (unix seconds): kept images of
    /// photos uploaded more than `retention_days` before are dropped, and with
    /// `retention_results` the photos (with their duplicates) and faces too. One transaction
    /// per campaign, each with an audit entry when something was purged. Returns the total.
    pub async fn purge_expired(&self, at: i64) -> ServerResult<Erased> {
        let rows = sqlx::query(
            "SELECT id, workspace_id, retention_days, retention_results FROM campaigns \
             WHERE retention_days IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut total = Erased::default();
        for r in rows {
            let (id, ws): (i64, i64) = (r.try_get("id")?, r.try_get("workspace_id")?);
            let days: i64 = r.try_get("retention_days")?;
            let results = r.try_get::<i64, _>("retention_results")? != 0;
            let cutoff = at - days.saturating_mul(86_400);
            let old = "SELECT p.id FROM photos p JOIN ads a ON a.id = p.ad_id \
                       WHERE a.campaign_id = $1 AND p.created_at < $2";
            let mut tx = self.begin_write().await?;
            let mut e = Erased::default();
            // Reaction videos analysed (or failed) before the cutoff; queued and running ones
            // are left to finish.
            let old_jobs = "SELECT j.id FROM video_jobs j JOIN ads a ON a.id = j.ad_id \
                            WHERE a.campaign_id = $1 AND j.created_at < $2 AND j.state IN ('done', 'failed')";
            e.videos = sqlx::query(&format!(
                "SELECT COUNT(DISTINCT job_id) AS n FROM job_video_chunks WHERE job_id IN ({old_jobs})"
            ))
            .bind(id)
            .bind(cutoff)
            .fetch_one(&mut *tx)
            .await?
            .try_get::<i64, _>("n")? as u64;
            if results {
                for (table, column, field) in [
                    ("viewer_seconds", "job_id", Some(&mut e.viewer_seconds)),
                    ("video_viewers", "job_id", Some(&mut e.viewers)),
                    ("job_video_chunks", "job_id", None),
                    ("live_frames", "job_id", None),
                    ("video_jobs", "id", Some(&mut e.jobs)),
                ] {
                    let n = sqlx::query(&format!(
                        "DELETE FROM {table} WHERE {column} IN ({old_jobs})"
                    ))
                    .bind(id)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if let Some(f) = field {
                        *f = n;
                    }
                }
            } else {
                sqlx::query(&format!(
                    "DELETE FROM job_video_chunks WHERE job_id IN ({old_jobs})"
                ))
                .bind(id)
                .bind(cutoff)
                .execute(&mut *tx)
                .await?;
                // Live sessions' kept camera frames go with the videos; their numbers stay.
                sqlx::query(&format!(
                    "UPDATE live_frames SET image = NULL WHERE job_id IN ({old_jobs})"
                ))
                .bind(id)
                .bind(cutoff)
                .execute(&mut *tx)
                .await?;
                sqlx::query(&format!(
                    "UPDATE video_jobs SET video_kept = 0 WHERE id IN ({old_jobs})"
                ))
                .bind(id)
                .bind(cutoff)
                .execute(&mut *tx)
                .await?;
            }
            if results {
                // The old photos and anything recorded as a duplicate of one.
                let doomed =
                    format!("SELECT id FROM photos WHERE id IN ({old}) OR duplicate_of IN ({old})");
                e.images = sqlx::query(&format!(
                    "SELECT COUNT(*) AS n FROM photos WHERE image IS NOT NULL AND id IN ({doomed})"
                ))
                .bind(id)
                .bind(cutoff)
                .fetch_one(&mut *tx)
                .await?
                .try_get::<i64, _>("n")? as u64;
                e.faces = sqlx::query(&format!("DELETE FROM faces WHERE photo_id IN ({doomed})"))
                    .bind(id)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                e.photos =
                    sqlx::query(&format!("DELETE FROM photos WHERE duplicate_of IN ({old})"))
                        .bind(id)
                        .bind(cutoff)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                e.photos += sqlx::query(&format!("DELETE FROM photos WHERE id IN ({old})"))
                    .bind(id)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            } else {
                e.images = sqlx::query(&format!(
                    "UPDATE photos SET image = NULL WHERE image IS NOT NULL AND id IN ({old})"
                ))
                .bind(id)
                .bind(cutoff)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            if e != Erased::default() {
                let actor = Actor {
                    workspace_id: ws,
                    key_id: None,
                    name: "retention".into(),
                };
                let detail =
                    json!({ "erased": e, "retention_days": days, "retention_results": results });
                record(&mut tx, &actor, "purge", "campaign", Some(id), detail).await?;
                tracing::info!(campaign = id, erased = ?e, "retention period applied");
            }
            tx.commit().await?;
            total.photos += e.photos;
            total.faces += e.faces;
            total.images += e.images;
            total.jobs += e.jobs;
            total.viewers += e.viewers;
            total.viewer_seconds += e.viewer_seconds;
            total.videos += e.videos;
        }
        Ok(total)
    }
}

/// The answer of an erasure.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct ErasedResponse {
    pub erased: Erased,
}

async fn erase(
    state: &SharedState,
    p: &Principal,
    target: Target,
) -> ServerResult<Json<ErasedResponse>> {
    p.require(Role::Admin, &format!("erasing a {}", target.kind()))?;
    let erased = state.db.erase(&Eraser::Key(p.actor()), target).await?;
    Ok(Json(ErasedResponse { erased }))
}

/// `DELETE /v1/campaigns/{id}` (admin): the campaign, its ads, photos, faces and kept images,
/// its reaction-video jobs with their viewers, seconds and stored videos.
#[utoipa::path(
    delete,
    path = "/v1/campaigns/{id}",
    operation_id = "erasure_erase_campaign",
    tag = "campaigns",
    summary = "Erase a campaign with its ads, photos, faces and kept images, reaction-video jobs and kept creatives (admin), in one transaction; recorded in the audit log",
    params(("id" = i64, Path, description = "campaign id")),
    responses(
        (status = 200, description = "counts erased: {\"erased\": {campaigns, ads, photos, faces, images, jobs, viewers, viewer_seconds, videos}}", body = crate::erasure::ErasedResponse),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 403, description = "the key's role is too low (the message names the role needed)", body = crate::error::ErrorBody),
        (status = 404, description = "unknown campaign, or one of another workspace", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn erase_campaign(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<ErasedResponse>> {
    let id = path_id(id, "campaign")?;
    erase(&state, &p, Target::Campaign(id)).await
}

/// `DELETE /v1/ads/{id}` (admin): the ad, its photos, faces and kept images, its reaction-video
/// jobs with their viewers, seconds and stored videos, its kept creative.
#[utoipa::path(
    delete,
    path = "/v1/ads/{id}",
    operation_id = "erasure_erase_ad",
    tag = "campaigns",
    summary = "Erase an ad with its photos, faces, kept images, reaction-video jobs (viewers, seconds, stored videos) and kept creative (admin), in one transaction; recorded in the audit log",
    params(("id" = i64, Path, description = "ad id")),
    responses(
        (status = 200, description = "counts erased: {\"erased\": {campaigns, ads, photos, faces, images, jobs, viewers, viewer_seconds, videos}}", body = crate::erasure::ErasedResponse),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 403, description = "the key's role is too low (the message names the role needed)", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad, or one of another workspace", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn erase_ad(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<ErasedResponse>> {
    let id = path_id(id, "ad")?;
    erase(&state, &p, Target::Ad(id)).await
}

/// `DELETE /v1/photos/{id}` (admin): the photo, the uploads recorded as its duplicates, their
/// faces and kept image.
#[utoipa::path(
    delete,
    path = "/v1/photos/{id}",
    operation_id = "erasure_erase_photo",
    tag = "campaigns",
    summary = "Erase a photo with the uploads recorded as its duplicates, their faces and kept image (admin), in one transaction; recorded in the audit log",
    params(("id" = i64, Path, description = "photo id")),
    responses(
        (status = 200, description = "counts erased: {\"erased\": {campaigns, ads, photos, faces, images, jobs, viewers, viewer_seconds, videos}}", body = crate::erasure::ErasedResponse),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 403, description = "the key's role is too low (the message names the role needed)", body = crate::error::ErrorBody),
        (status = 404, description = "unknown photo, or one of another workspace", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn erase_photo(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<ErasedResponse>> {
    let id = path_id(id, "photo")?;
    erase(&state, &p, Target::Photo(id)).await
}

/// `DELETE /v1/jobs/{id}` (admin): a reaction-video job, its viewers, their seconds and its
/// stored video (a running job stops; its results are never stored).
#[utoipa::path(
    delete,
    path = "/v1/jobs/{id}",
    operation_id = "erasure_erase_job",
    tag = "videos",
    summary = "Erase a reaction-video job with its viewers, their per-second results and its stored video (admin); a running job stops and stores nothing; recorded in the audit log",
    params(("id" = i64, Path, description = "job id")),
    responses(
        (status = 200, description = "counts erased: {\"erased\": {..., jobs, viewers, viewer_seconds, videos}}", body = crate::erasure::ErasedResponse),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 403, description = "the key's role is too low (the message names the role needed)", body = crate::error::ErrorBody),
        (status = 404, description = "unknown job, or one of another workspace", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn erase_job(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<ErasedResponse>> {
    let id = path_id(id, "job")?;
    erase(&state, &p, Target::Job(id)).await
}

/// Runs [`Db::purge_expired`] now and then every `every` until the process ends; failures are
/// logged and retried at the next tick.
pub async fn retention_task(db: Db, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match db.purge_expired(now()).await {
            Ok(e) if e != Erased::default() => {
                tracing::info!(
                    photos = e.photos,
                    faces = e.faces,
                    images = e.images,
                    "retention purge done"
                )
            }
            Ok(_) => {}
            Err(err) => {
                tracing::error!(error = %err, "retention purge failed; retrying at the next tick")
            }
        }
    }
}
