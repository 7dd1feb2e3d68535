//! Live viewing sessions: a team creates a viewing link for an ad (`POST /v1/ads/{id}/live-links`,
//! analyst); a viewer opens it (`/live#t=TOKEN`), reads what is measured and why, consents
//! (`POST /v1/live/{token}/sessions`: no consent, no session, and the page starts no camera
//! before it), then watches the ad while the page sends webcam frames tagged with the ad's
//! playback time (`POST /v1/live/sessions/{id}/frames?seq=N&t=SECONDS`, the session's secret in
//! `X-Emolens-Session`). Each frame is analysed in memory like a reaction video's (the same face
//! analyzer; the viewer is the largest face) and dropped unless the campaign keeps images; only
//! the face's numbers are stored. After every frame the session's per-second rows are rebuilt
//! from all its frames by `emolens_video::timeline` (the reaction videos' code), so the ad's
//! timeline shows the viewer while they watch. A frame sent twice (same `seq`, e.g. a retry
//! after a lost answer) counts once; frames after a seek land at their ad time.
//!
//! A session is a row of `video_jobs` with `source = 'live'`, so timelines, exports and erasure
//! treat it as a reaction video. The viewer can end it (`.../end`) or erase it at once
//! (`DELETE /v1/live/sessions/{id}`: withdrawing consent). Tokens and secrets are stored as
//! SHA-256 hashes only; the link's token travels in the URL fragment, which browsers never send.

use crate::audit::record;
use crate::campaigns::{json_body, path_id};
use crate::db::{now, Db};
use crate::erasure::{ErasedResponse, Eraser, Target};
use crate::error::{ServerError, ServerResult};
use crate::jobs::insert_viewers;
use crate::workspace::{Actor, Principal, Role};
use crate::SharedState;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use emolens_core::fingerprint::sha256_hex;
use emolens_faces::FaceResult;
use emolens_video::{FrameResult, TrackedFace};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;

/// The header that carries a session's credential, `<session id>.<secret>`.
pub const SESSION_HEADER: &str = "x-emolens-session";
/// Frames a second a link may ask the page for.
pub const MAX_LIVE_FPS: f64 = 5.0;
/// Frames a second when the link does not say.
pub const DEFAULT_LIVE_FPS: f64 = 2.0;
/// Largest frame, bytes (a 1280x720 JPEG is about 100-200 KB).
pub const MAX_FRAME_BYTES: usize = 2 << 20;
/// Most frames one session stores (at 5 frames/s: 20 minutes).
pub const MAX_FRAMES_PER_SESSION: i64 = 6_000;
/// Ad time a frame may carry past the ad's duration (players report the last frame's time a
/// little late), and the longest ad time when the ad has no duration.
const TIME_SLACK_S: f64 = 2.0;
const MAX_AD_TIME_S: f64 = 3.0 * 3600.0;
/// Viewer number of the person in front of the camera in the per-viewer rows.
const LIVE_VIEWER: u32 = 1;

/// What the viewing page tells the viewer before they consent (also in `GET /v1/live/{token}`).
pub const LIVE_NOTICE: &str = "While you watch the ad, this page takes pictures with your camera \
a few times a second and sends them to the team that invited you. Each picture is analysed for \
facial expression (angry, disgust, fear, happy, neutral, sad, surprise) and then deleted, unless \
the study keeps images (this page says so below); only the numbers are stored, with the moment \
of the ad they belong to. No sound is recorded. Nothing starts before you agree; you can stop at \
any time, and delete everything sent from this viewing with the button on this page or by \
giving its reference to the team.";

/// Body of `POST /v1/ads/{id}/live-links`; every field optional.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    /// A name for the team (e.g. the panel or the room); not shown to viewers.
    pub label: Option<String>,
    /// How many viewers may consent through this link (default 1).
    pub max_viewers: Option<i64>,
    /// Hours until the link stops working (default 72, at most 2,160: 90 days).
    pub expires_in_hours: Option<f64>,
    /// Frames a second the page sends (default 2, at most 5).
    pub fps: Option<f64>,
}

/// A viewing link as the team sees it; `token` and `url` only in the answer that created it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LiveLink {
    pub id: i64,
    pub ad_id: i64,
    pub label: String,
    pub max_viewers: i64,
    /// Viewers who consented through it so far.
    pub viewers: i64,
    pub fps: f64,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// Not expired, not revoked and not used up.
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Path of the viewing page for this link (append it to the server's address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

fn link_from(r: &sqlx::any::AnyRow, at: i64) -> Result<LiveLink, sqlx::Error> {
    let max_viewers: i64 = r.try_get("max_viewers")?;
    let viewers: i64 = r.try_get("viewers")?;
    let expires_at: i64 = r.try_get("expires_at")?;
    let revoked_at: Option<i64> = r.try_get("revoked_at")?;
    Ok(LiveLink {
        id: r.try_get("id")?,
        ad_id: r.try_get("ad_id")?,
        label: r.try_get("label")?,
        max_viewers,
        viewers,
        fps: r.try_get("fps")?,
        created_at: r.try_get("created_at")?,
        expires_at,
        revoked_at,
        active: revoked_at.is_none() && expires_at > at && viewers < max_viewers,
        token: None,
        url: None,
    })
}

const LINK_COLUMNS: &str =
    "l.id, l.ad_id, l.label, l.max_viewers, l.viewers, l.fps, l.created_at, l.expires_at, l.revoked_at";

/// 256 bits of OS randomness, hex.
fn secret() -> ServerResult<String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw)
        .map_err(|e| ServerError::Internal(format!("no OS randomness for a token: {e}")))?;
    Ok(hex::encode(raw))
}

/// What a link opens, for the viewing page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LinkInfo {
    pub ad: String,
    pub campaign: String,
    /// The ad's length, seconds (None: the page times the viewing itself).
    pub duration_s: Option<f64>,
    /// Whether the ad's video can be played from `GET /v1/live/{token}/creative`.
    pub creative: bool,
    pub fps: f64,
    /// Whether the study keeps the camera pictures (otherwise they are deleted after analysis).
    pub keeps_images: bool,
    pub notice: &'static str,
}

/// The link behind a token (active only), with what the page needs.
struct OpenLink {
    id: i64,
    ad_id: i64,
    workspace_id: i64,
    fps: f64,
    info: LinkInfo,
}

/// One analysed frame of a session, as stored.
#[derive(Clone, Copy)]
struct LiveFrame<'a> {
    seq: i64,
    /// Ad time, seconds.
    t: f64,
    /// Faces found in the picture.
    faces: usize,
    /// The viewer's face (the largest), if any.
    face: Option<&'a FaceResult>,
    /// The picture, when the campaign keeps images.
    image: Option<&'a [u8]>,
}

/// An open session: its job, ad and link.
struct OpenSession {
    job_id: i64,
    ad_id: i64,
    duration_s: Option<f64>,
    keeps_images: bool,
}

fn invalid_link() -> ServerError {
    ServerError::NotFound(
        "this viewing link is not valid: it expired, was withdrawn, or is mistyped; ask the team that sent it for a new one"
            .into(),
    )
}

fn invalid_session(id: i64) -> ServerError {
    ServerError::NotFound(format!(
        "viewing session {id} is not open (ended, erased, or the session credential in {SESSION_HEADER} is wrong); open the viewing link again to start a new one"
    ))
}

impl Db {
    /// Creates a viewing link for an ad of the actor's workspace (checked by the caller).
    pub async fn create_live_link(
        &self,
        actor: &Actor,
        ad_id: i64,
        label: &str,
        max_viewers: i64,
        expires_at: i64,
        fps: f64,
    ) -> ServerResult<LiveLink> {
        let token = secret()?;
        let at = now();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO live_links (ad_id, token_sha256, label, max_viewers, viewers, fps, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, 0, $5, $6, $7) RETURNING id",
        )
        .bind(ad_id)
        .bind(sha256_hex(token.as_bytes()))
        .bind(label)
        .bind(max_viewers)
        .bind(fps)
        .bind(at)
        .bind(expires_at)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        record(
            &mut tx,
            actor,
            "create",
            "live_link",
            Some(id),
            json!({ "ad_id": ad_id, "max_viewers": max_viewers, "expires_at": expires_at, "fps": fps }),
        )
        .await?;
        tx.commit().await?;
        Ok(LiveLink {
            id,
            ad_id,
            label: label.to_string(),
            max_viewers,
            viewers: 0,
            fps,
            created_at: at,
            expires_at,
            revoked_at: None,
            active: true,
            url: Some(format!("/live#t={token}")),
            token: Some(token),
        })
    }

    /// The viewing links of an ad (the ad checked by the caller), newest first.
    pub async fn live_links(&self, ad_id: i64) -> ServerResult<Vec<LiveLink>> {
        let rows = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM live_links l WHERE l.ad_id = $1 ORDER BY l.id DESC"
        ))
        .bind(ad_id)
        .fetch_all(&self.pool)
        .await?;
        let at = now();
        Ok(rows
            .iter()
            .map(|r| link_from(r, at))
            .collect::<Result<_, _>>()?)
    }

    /// Withdraws a link of the actor's workspace (404 elsewhere): no new viewer can consent
    /// through it; sessions already started keep their results (erase them as jobs).
    pub async fn revoke_live_link(&self, actor: &Actor, id: i64) -> ServerResult<LiveLink> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE live_links SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL AND ad_id IN \
             (SELECT a.id FROM ads a JOIN campaigns c ON c.id = a.campaign_id WHERE c.workspace_id = $3)",
        )
        .bind(now())
        .bind(id)
        .bind(actor.workspace_id)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM live_links l JOIN ads a ON a.id = l.ad_id \
             JOIN campaigns c ON c.id = a.campaign_id WHERE l.id = $1 AND c.workspace_id = $2"
        ))
        .bind(id)
        .bind(actor.workspace_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(ServerError::NotFound(format!(
                "viewing link {id} does not exist; list an ad's links with GET /v1/ads/{{id}}/live-links"
            )));
        };
        if r.rows_affected() > 0 {
            record(&mut tx, actor, "revoke", "live_link", Some(id), json!({})).await?;
        }
        tx.commit().await?;
        Ok(link_from(&row, now())?)
    }

    /// The active link behind `token`, or 404.
    async fn open_link(&self, token: &str) -> ServerResult<OpenLink> {
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid_link());
        }
        let row = sqlx::query(
            "SELECT l.id, l.ad_id, l.fps, l.max_viewers, l.viewers, l.expires_at, l.revoked_at, \
             a.name AS ad_name, a.duration_s, c.name AS campaign_name, c.workspace_id, c.keep_images, \
             (SELECT COUNT(*) FROM ad_creatives k WHERE k.ad_id = a.id) AS creatives \
             FROM live_links l JOIN ads a ON a.id = l.ad_id JOIN campaigns c ON c.id = a.campaign_id \
             WHERE l.token_sha256 = $1",
        )
        .bind(sha256_hex(token.to_ascii_lowercase().as_bytes()))
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(invalid_link)?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        if revoked.is_some() || expires_at <= now() {
            return Err(invalid_link());
        }
        Ok(OpenLink {
            id: row.try_get("id")?,
            ad_id: row.try_get("ad_id")?,
            workspace_id: row.try_get("workspace_id")?,
            fps: row.try_get("fps")?,
            info: LinkInfo {
                ad: row.try_get("ad_name")?,
                campaign: row.try_get("campaign_name")?,
                duration_s: row.try_get("duration_s")?,
                creative: row.try_get::<i64, _>("creatives")? > 0,
                fps: row.try_get("fps")?,
                keeps_images: row.try_get::<i64, _>("keep_images")? != 0,
                notice: LIVE_NOTICE,
            },
        })
    }

    /// Starts a consented session through an active link with a free viewer place (409 when
    /// the link is used up); returns the session's job id and its secret.
    async fn start_live_session(&self, link: &OpenLink) -> ServerResult<(i64, String)> {
        let secret = secret()?;
        let at = now();
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query(
            "UPDATE live_links SET viewers = viewers + 1 WHERE id = $1 AND viewers < max_viewers \
             AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(link.id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(ServerError::Conflict(
                "this viewing link has been used by as many viewers as it allows; ask the team that sent it for a new one".into(),
            ));
        }
        let row = sqlx::query(
            "INSERT INTO video_jobs (ad_id, state, file_name, sha256, size_bytes, fps, ad_start_s, video_info, \
             created_at, started_at, source, live_link_id, live_secret_sha256) \
             VALUES ($1, 'live', 'live session', '', 0, $2, 0, $3, $4, $4, 'live', $5, $6) RETURNING id",
        )
        .bind(link.ad_id)
        .bind(link.fps)
        .bind(json!({ "source": "live", "link_id": link.id, "consent_at": at }).to_string())
        .bind(at)
        .bind(link.id)
        .bind(sha256_hex(secret.as_bytes()))
        .fetch_one(&mut *tx)
        .await?;
        let job_id: i64 = row.try_get("id")?;
        let actor = Actor {
            workspace_id: link.workspace_id,
            key_id: None,
            name: format!("viewer via live link {}", link.id),
        };
        record(
            &mut tx,
            &actor,
            "consent",
            "job",
            Some(job_id),
            json!({ "ad_id": link.ad_id, "link_id": link.id }),
        )
        .await?;
        tx.commit().await?;
        Ok((job_id, secret))
    }

    /// The open (`live`) session `id` whose secret hashes to `secret_sha256`, or 404.
    async fn open_session(&self, id: i64, secret_sha256: &str) -> ServerResult<OpenSession> {
        let row = sqlx::query(
            "SELECT j.id, j.ad_id, a.duration_s, c.keep_images FROM video_jobs j \
             JOIN ads a ON a.id = j.ad_id JOIN campaigns c ON c.id = a.campaign_id \
             WHERE j.id = $1 AND j.source = 'live' AND j.state = 'live' AND j.live_secret_sha256 = $2",
        )
        .bind(id)
        .bind(secret_sha256)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| invalid_session(id))?;
        Ok(OpenSession {
            job_id: row.try_get("id")?,
            ad_id: row.try_get("ad_id")?,
            duration_s: row.try_get("duration_s")?,
            keeps_images: row.try_get::<i64, _>("keep_images")? != 0,
        })
    }

    /// Whether `id.secret` names an open session (for admission: such requests get the session's
    /// own limits instead of the anonymous pool's).
    pub async fn live_session_exists(&self, id: i64, secret: &str) -> ServerResult<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM video_jobs WHERE id = $1 AND source = 'live' AND state = 'live' \
             AND live_secret_sha256 = $2",
        )
        .bind(id)
        .bind(sha256_hex(secret.as_bytes()))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Stores one analysed frame (once per `seq`) and rebuilds the session's per-second rows
    /// from all its frames, in one transaction. Returns (stored: false for a repeated `seq`,
    /// frames in the session).
    async fn add_live_frame(
        &self,
        s: &OpenSession,
        frame: &LiveFrame<'_>,
        classes: &[String],
    ) -> ServerResult<(bool, i64)> {
        let LiveFrame {
            seq,
            t,
            faces,
            face,
            image,
        } = *frame;
        let mut tx = self.begin_write().await?;
        // Lock the session's row first: frames of one session are stored one at a time, and an
        // erasure either comes before (and the session is gone) or after.
        let open =
            sqlx::query("UPDATE video_jobs SET state = state WHERE id = $1 AND state = 'live'")
                .bind(s.job_id)
                .execute(&mut *tx)
                .await?;
        if open.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(invalid_session(s.job_id));
        }
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM live_frames WHERE job_id = $1")
            .bind(s.job_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        let seen = sqlx::query("SELECT 1 AS one FROM live_frames WHERE job_id = $1 AND seq = $2")
            .bind(s.job_id)
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if seen {
            tx.rollback().await?;
            return Ok((false, count));
        }
        if count >= MAX_FRAMES_PER_SESSION {
            tx.rollback().await?;
            return Err(ServerError::TooLarge(format!(
                "viewing session {} has {MAX_FRAMES_PER_SESSION} frames, the most one session stores; end it and open the link again for a new one",
                s.job_id
            )));
        }
        let face_json = face
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| ServerError::Internal(format!("cannot store a face: {e}")))?;
        sqlx::query(
            "INSERT INTO live_frames (job_id, seq, ad_time_s, received_at, faces, face, image) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(s.job_id)
        .bind(seq)
        .bind(t)
        .bind(now())
        .bind(faces as i64)
        .bind(face_json)
        .bind(image.map(<[u8]>::to_vec))
        .execute(&mut *tx)
        .await?;
        Self::rebuild_live_rows(&mut tx, s.job_id, s.ad_id, classes).await?;
        tx.commit().await?;
        Ok((true, count + 1))
    }

    /// Rebuilds a live session's viewer and per-second rows from its frames (in ad time order,
    /// so seeking back and forth lands every frame at its second); returns the summary.
    async fn rebuild_live_rows(
        conn: &mut sqlx::AnyConnection,
        job_id: i64,
        ad_id: i64,
        classes: &[String],
    ) -> ServerResult<Value> {
        let rows = sqlx::query(
            "SELECT seq, ad_time_s, face FROM live_frames WHERE job_id = $1 ORDER BY ad_time_s, seq",
        )
        .bind(job_id)
        .fetch_all(&mut *conn)
        .await?;
        let mut frames = Vec::with_capacity(rows.len());
        for r in &rows {
            let face: Option<String> = r.try_get("face")?;
            let face: Option<FaceResult> = face
                .map(|f| serde_json::from_str(&f))
                .transpose()
                .map_err(|e| ServerError::Internal(format!("a stored face does not parse: {e}")))?;
            frames.push(FrameResult {
                index: r.try_get::<i64, _>("seq")?.max(0) as usize,
                time_s: r.try_get("ad_time_s")?,
                faces: face
                    .into_iter()
                    .map(|face| TrackedFace {
                        viewer: LIVE_VIEWER,
                        face,
                    })
                    .collect(),
                error: None,
            });
        }
        let viewers = emolens_video::timeline::viewer_timelines(&frames, classes);
        sqlx::query("DELETE FROM viewer_seconds WHERE job_id = $1")
            .bind(job_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM video_viewers WHERE job_id = $1")
            .bind(job_id)
            .execute(&mut *conn)
            .await?;
        insert_viewers(&mut *conn, job_id, ad_id, &viewers).await?;
        let span = frames
            .first()
            .zip(frames.last())
            .map(|(a, b)| (a.time_s, b.time_s));
        let with_face = frames.iter().filter(|f| !f.faces.is_empty()).count();
        sqlx::query(
            "UPDATE video_jobs SET frames_done = $1, seconds_done = $2, ad_first_s = $3, ad_last_s = $4 WHERE id = $5",
        )
        .bind(frames.len() as i64)
        .bind(span.map_or(0.0, |s| s.1))
        .bind(span.map(|s| s.0))
        .bind(span.map(|s| s.1))
        .bind(job_id)
        .execute(&mut *conn)
        .await?;
        Ok(json!({
            "frames": frames.len(),
            "frames_with_face": with_face,
            "viewers": viewers.len(),
            "ad_first_s": span.map(|s| s.0),
            "ad_last_s": span.map(|s| s.1),
            "seconds": span.map_or(0, |s| s.1.floor() as i64 + 1),
        }))
    }

    /// Ends a session: its rows rebuilt a last time, the state `done`, what the page reported
    /// (pauses, seeks, camera losses, dropped frames) kept in the summary.
    async fn end_live_session(
        &self,
        s: &OpenSession,
        report: &EndReport,
        classes: &[String],
    ) -> ServerResult<Value> {
        let mut tx = self.begin_write().await?;
        let mut summary = Self::rebuild_live_rows(&mut tx, s.job_id, s.ad_id, classes).await?;
        let mut notes = Vec::new();
        if report.camera_losses > 0 {
            notes.push(format!(
                "the camera was lost {} time(s) during the viewing: seconds without frames have no values",
                report.camera_losses
            ));
        }
        if report.dropped_frames > 0 {
            notes.push(format!(
                "{} frame(s) were not sent (the connection was slower than the sampling)",
                report.dropped_frames
            ));
        }
        if let Some(o) = summary.as_object_mut() {
            o.insert("complete".into(), json!(report.reason == "ended"));
            o.insert("end_reason".into(), json!(report.reason));
            o.insert("pauses".into(), json!(report.pauses));
            o.insert("seeks".into(), json!(report.seeks));
            o.insert("camera_losses".into(), json!(report.camera_losses));
            o.insert("dropped_frames".into(), json!(report.dropped_frames));
            o.insert("notes".into(), json!(notes));
        }
        let done = sqlx::query(
            "UPDATE video_jobs SET state = 'done', finished_at = $1, result = $2, video_kept = $3 \
             WHERE id = $4 AND state = 'live'",
        )
        .bind(now())
        .bind(summary.to_string())
        .bind(s.keeps_images as i64)
        .bind(s.job_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(invalid_session(s.job_id));
        }
        tx.commit().await?;
        Ok(summary)
    }
}

/// `POST /v1/ads/{id}/live-links` (analyst): a viewing link; its token is in this answer only.
#[utoipa::path(
    post,
    path = "/v1/ads/{id}/live-links",
    operation_id = "live_create_link",
    tag = "live",
    summary = "Create a live viewing link for the ad (analyst): a viewer who opens `url` reads what is measured, consents, and watches the ad while their browser sends camera frames; the token is in this answer only",
    params(("id" = i64, Path, description = "ad id")),
    request_body(content = Option<crate::live::NewLink>, content_type = "application/json"),
    responses(
        (status = 201, description = "the link, with `token` and `url` (/live#t=TOKEN)", body = crate::live::LiveLink),
        (status = 400, description = "a setting out of range", body = crate::error::ErrorBody),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 403, description = "the key's role is below analyst", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad, or one of another workspace", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn create_link(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<NewLink>, JsonRejection>,
) -> ServerResult<Response> {
    p.require(Role::Analyst, "creating a viewing link")?;
    let id = path_id(id, "ad")?;
    let b = match body {
        Err(JsonRejection::MissingJsonContentType(_)) => NewLink::default(),
        other => json_body(other)?,
    };
    state.db.ad(p.workspace_id, id).await?;
    let max_viewers = b.max_viewers.unwrap_or(1);
    if !(1..=100_000).contains(&max_viewers) {
        return Err(ServerError::BadRequest(format!(
            "max_viewers must be between 1 and 100000, got {max_viewers}"
        )));
    }
    let hours = b.expires_in_hours.unwrap_or(72.0);
    if !(hours.is_finite() && hours > 0.0 && hours <= 2160.0) {
        return Err(ServerError::BadRequest(format!(
            "expires_in_hours must be above 0 and at most 2160 (90 days), got {hours}"
        )));
    }
    let fps = b.fps.unwrap_or(DEFAULT_LIVE_FPS);
    if !(fps.is_finite() && (0.2..=MAX_LIVE_FPS).contains(&fps)) {
        return Err(ServerError::BadRequest(format!(
            "fps must be between 0.2 and {MAX_LIVE_FPS}, got {fps}"
        )));
    }
    let label = b.label.unwrap_or_default();
    let label = label.trim();
    if label.chars().count() > 200 {
        return Err(ServerError::BadRequest(
            "label must be at most 200 characters".into(),
        ));
    }
    let expires_at = now() + (hours * 3600.0).round() as i64;
    let link = state
        .db
        .create_live_link(&p.actor(), id, label, max_viewers, expires_at, fps)
        .await?;
    Ok((StatusCode::CREATED, Json(link)).into_response())
}

/// `GET /v1/ads/{id}/live-links`: the ad's viewing links (without tokens).
#[utoipa::path(
    get,
    path = "/v1/ads/{id}/live-links",
    operation_id = "live_list_links",
    tag = "live",
    summary = "The ad's live viewing links (without their tokens): viewers so far, expiry, whether active",
    params(("id" = i64, Path, description = "ad id")),
    responses(
        (status = 200, description = "{ad_id, links: [LiveLink]}", body = crate::live::LinkList),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad, or one of another workspace", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn list_links(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<LinkList>> {
    let id = path_id(id, "ad")?;
    state.db.ad(p.workspace_id, id).await?;
    Ok(Json(LinkList {
        ad_id: id,
        links: state.db.live_links(id).await?,
    }))
}

/// `DELETE /v1/live-links/{id}` (analyst): withdraws a link.
#[utoipa::path(
    delete,
    path = "/v1/live-links/{id}",
    operation_id = "live_revoke_link",
    tag = "live",
    summary = "Withdraw a viewing link (analyst): no new viewer can consent through it; sessions already started keep their results (erase them with DELETE /v1/jobs/{id})",
    params(("id" = i64, Path, description = "link id")),
    responses(
        (status = 200, description = "the link, now withdrawn", body = crate::live::LiveLink),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 403, description = "the key's role is below analyst", body = crate::error::ErrorBody),
        (status = 404, description = "unknown link, or one of another workspace", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn revoke_link(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<LiveLink>> {
    p.require(Role::Analyst, "withdrawing a viewing link")?;
    let id = path_id(id, "viewing link")?;
    Ok(Json(state.db.revoke_live_link(&p.actor(), id).await?))
}

/// `GET /v1/live/{token}`: what the link opens (for the viewing page).
#[utoipa::path(
    get,
    path = "/v1/live/{token}",
    operation_id = "live_link_info",
    tag = "live",
    summary = "What a viewing link opens, for the viewing page (no key: the token is the credential): ad and study names, the ad's length, whether its video is playable, frames a second, whether images are kept, the notice shown before consent",
    params(("token" = String, Path, description = "the viewing link's token (64 hex digits; the `#t=` part of the link)")),
    responses(
        (status = 200, description = "{ad, campaign, duration_s, creative, fps, keeps_images, notice}", body = crate::live::LinkInfo),
        (status = 404, description = "unknown, expired or withdrawn link", body = crate::error::ErrorBody),
    ),
)]
pub async fn link_info(
    State(state): State<SharedState>,
    Path(token): Path<String>,
) -> ServerResult<Json<LinkInfo>> {
    Ok(Json(state.db.open_link(&token).await?.info))
}

/// `GET /v1/live/{token}/creative`: the ad's kept video, for the viewing page's player;
/// single byte ranges are served (players seek with them).
#[utoipa::path(
    get,
    path = "/v1/live/{token}/creative",
    operation_id = "live_link_creative",
    tag = "live",
    summary = "The ad's kept video for the viewing page's player; single byte ranges (`Range: bytes=a-b`) answer 206",
    params(("token" = String, Path, description = "the viewing link's token (64 hex digits; the `#t=` part of the link)")),
    responses(
        (status = 200, description = "the video", body = [u8], content_type = "video/*"),
        (status = 206, description = "the range asked for", body = [u8], content_type = "video/*"),
        (status = 404, description = "unknown, expired or withdrawn link, or no kept creative", body = crate::error::ErrorBody),
        (status = 416, description = "a range outside the video", body = crate::error::ErrorBody),
    ),
)]
pub async fn link_creative(
    State(state): State<SharedState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> ServerResult<Response> {
    let link = state.db.open_link(&token).await?;
    let (ctype, _name, bytes) = state.db.creative(link.ad_id).await.map_err(|_| {
        ServerError::NotFound(
            "this ad's video is not stored on the server, so the page cannot play it".into(),
        )
    })?;
    Ok(ranged(ctype, bytes, &headers))
}

/// A whole body or one byte range of it (`Range: bytes=a-b`, `a-`, `-n`); 416 for a range
/// outside the body; other forms get the whole body.
pub fn ranged(ctype: String, bytes: Vec<u8>, headers: &HeaderMap) -> Response {
    let len = bytes.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
        .filter(|v| !v.contains(','))
        .and_then(|v| v.split_once('-'))
        .map(|(a, b)| (a.trim().parse::<u64>().ok(), b.trim().parse::<u64>().ok()));
    let span = match range {
        Some((Some(a), Some(b))) if a <= b => Some((a, b.min(len.saturating_sub(1)))),
        Some((Some(a), None)) => Some((a, len.saturating_sub(1))),
        Some((None, Some(n))) if n > 0 => Some((len.saturating_sub(n), len.saturating_sub(1))),
        _ => None,
    };
    let common = [
        (header::CONTENT_TYPE, ctype),
        (header::ACCEPT_RANGES, "bytes".to_string()),
        (header::CACHE_CONTROL, "no-store".to_string()),
    ];
    match span {
        None => (common, bytes).into_response(),
        Some((a, b)) if a >= len || a > b => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            ServerError::BadRequest(format!(
                "the range asked for is outside the video's {len} bytes"
            )),
        )
            .into_response(),
        Some((a, b)) => (
            StatusCode::PARTIAL_CONTENT,
            common,
            [(header::CONTENT_RANGE, format!("bytes {a}-{b}/{len}"))],
            bytes[a as usize..=b as usize].to_vec(),
        )
            .into_response(),
    }
}

/// Body of `POST /v1/live/{token}/sessions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// Must be `true`: the viewer agreed to what the page told them.
    pub consent: bool,
}

/// `POST /v1/live/{token}/sessions`: the viewer consents; a session starts. Answers the
/// session's credential for `X-Emolens-Session` (shown once) and its reference.
#[utoipa::path(
    post,
    path = "/v1/live/{token}/sessions",
    operation_id = "live_start_session",
    tag = "live",
    summary = "The viewer consents and a live viewing session starts (a job with source `live`); answers the session credential for X-Emolens-Session (shown once) and the viewer's reference",
    params(("token" = String, Path, description = "the viewing link's token (64 hex digits; the `#t=` part of the link)")),
    request_body = crate::live::Consent,
    responses(
        (status = 201, description = "{session_id, session, reference, fps, max_frame_bytes}", body = crate::live::SessionStarted),
        (status = 400, description = "no consent", body = crate::error::ErrorBody),
        (status = 404, description = "unknown, expired or withdrawn link", body = crate::error::ErrorBody),
        (status = 409, description = "the link has had all the viewers it allows", body = crate::error::ErrorBody),
    ),
)]
pub async fn start_session(
    State(state): State<SharedState>,
    Path(token): Path<String>,
    body: Result<Json<Consent>, JsonRejection>,
) -> ServerResult<Response> {
    let link = state.db.open_link(&token).await?;
    let consent = json_body(body)?;
    if !consent.consent {
        return Err(ServerError::BadRequest(
            "no consent, no session: send {\"consent\": true} once the viewer has agreed".into(),
        ));
    }
    let (id, secret) = state.db.start_live_session(&link).await?;
    tracing::info!(
        job = id,
        ad = link.ad_id,
        link = link.id,
        "live viewing session started"
    );
    Ok((
        StatusCode::CREATED,
        Json(SessionStarted {
            session_id: id,
            session: format!("{id}.{secret}"),
            reference: format!("session {id}"),
            fps: link.fps,
            max_frame_bytes: MAX_FRAME_BYTES,
        }),
    )
        .into_response())
}

/// The answer of `POST /v1/live/{token}/sessions`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionStarted {
    pub session_id: i64,
    /// The session's credential for the `X-Emolens-Session` header (`<id>.<secret>`), shown once.
    pub session: String,
    /// What the viewer gives the team to have the session erased (`session <id>`).
    pub reference: String,
    /// Frames a second the page sends.
    pub fps: f64,
    /// Largest frame accepted, bytes.
    pub max_frame_bytes: usize,
}

/// The viewer's face in a frame (the largest classified face).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FrameFace {
    #[serde(rename = "box")]
    #[schema(value_type = crate::analysis::FaceBox)]
    pub bbox: emolens_faces::FaceBox,
    pub top_emotion: String,
    pub uncertain: bool,
    /// Each class with its probability.
    #[schema(value_type = Vec<Object>)]
    pub probabilities: Vec<emolens_faces::ClassProb>,
}

/// The answer of `POST /v1/live/sessions/{id}/frames`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FrameAnswer {
    pub seq: i64,
    /// The ad's playback time of the frame, seconds.
    pub t: f64,
    /// False when this `seq` was already stored (sent again).
    pub stored: bool,
    /// Frames of the session stored so far.
    pub frames: i64,
    /// Faces found in the frame.
    pub faces: usize,
    /// The viewer's face; null when none was classified.
    pub face: Option<FrameFace>,
}

/// The answer of `POST /v1/live/sessions/{id}/end`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionEnded {
    pub session_id: i64,
    /// `done`.
    pub state: String,
    /// The session's summary (as a reaction video's `result`, with the viewing's `complete`,
    /// `end_reason`, `pauses`, `seeks`, `camera_losses`, `dropped_frames` and `notes`).
    pub result: Value,
}

/// The answer of `GET /v1/ads/{id}/live-links`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LinkList {
    pub ad_id: i64,
    pub links: Vec<LiveLink>,
}

/// The session credential of a request: `id.secret` in [`SESSION_HEADER`], for session `id`.
fn credential(headers: &HeaderMap, id: i64) -> ServerResult<String> {
    let v = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ServerError::Unauthorized(format!(
                "missing session credential: send the `session` value of the session's start in the {SESSION_HEADER} header"
            ))
        })?;
    match v.trim().split_once('.') {
        Some((sid, secret)) if sid.parse::<i64>().ok() == Some(id) => {
            Ok(sha256_hex(secret.as_bytes()))
        }
        _ => Err(invalid_session(id)),
    }
}

/// Query of `POST /v1/live/sessions/{id}/frames`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameQuery {
    /// The frame's number in the session (0, 1, ...): a repeated number is stored once.
    pub seq: i64,
    /// The ad's playback time when the frame was taken, seconds.
    pub t: f64,
}

/// `POST /v1/live/sessions/{id}/frames?seq=N&t=SECONDS`: one camera frame (a JPEG, PNG or WebP
/// body). Answers what was found: the viewer's face (the largest) or none.
#[utoipa::path(
    post,
    path = "/v1/live/sessions/{id}/frames",
    operation_id = "live_post_frame",
    tag = "live",
    summary = "One camera frame of a live session (JPEG, PNG or WebP body, at most 2 MiB), taken at ad time `t`; analysed in memory (the largest face is the viewer) and dropped unless the campaign keeps images. A repeated `seq` is stored once. The session's per-second rows are rebuilt at once, so the ad's timeline shows the viewer while they watch",
    params(("id" = i64, Path, description = "session (job) id"), ("seq" = i64, Query), ("t" = f64, Query, description = "the ad's playback time, seconds")),
    request_body(content(([u8] = "image/jpeg"), ([u8] = "image/png"), ([u8] = "image/webp"))),
    responses(
        (status = 200, description = "{seq, t, stored, frames, faces, face: {box, top_emotion, uncertain, probabilities} or null}", body = crate::live::FrameAnswer),
        (status = 400, description = "bad seq or t, or an empty frame", body = crate::error::ErrorBody),
        (status = 401, description = "no session credential", body = crate::error::ErrorBody),
        (status = 404, description = "the session is not open or the credential is wrong", body = crate::error::ErrorBody),
        (status = 413, description = "frame too large, or the session has its most frames", body = crate::error::ErrorBody),
        (status = 415, description = "not an image", body = crate::error::ErrorBody),
        (status = 422, description = "an image that does not decode", body = crate::error::ErrorBody),
        (status = 429, description = "the session sends faster than its limits", body = crate::error::ErrorBody),
    ),
    security(("live_session" = [])),
)]
pub async fn post_frame(
    State(state): State<SharedState>,
    id: Result<Path<i64>, PathRejection>,
    q: Result<Query<FrameQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> ServerResult<Json<FrameAnswer>> {
    let id = path_id(id, "session")?;
    let secret = credential(&headers, id)?;
    let Query(q) = q.map_err(|e| {
        ServerError::BadRequest(format!(
            "{}; send ?seq=<frame number>&t=<ad time in seconds>",
            e.body_text()
        ))
    })?;
    let session = state.db.open_session(id, &secret).await?;
    if !(0..=10_000_000).contains(&q.seq) {
        return Err(ServerError::BadRequest(format!(
            "seq must be between 0 and 10000000, got {}",
            q.seq
        )));
    }
    let max_t = session
        .duration_s
        .map_or(MAX_AD_TIME_S, |d| d + TIME_SLACK_S);
    if !(q.t.is_finite() && q.t >= 0.0 && q.t <= max_t) {
        return Err(ServerError::BadRequest(format!(
            "t must be the ad's playback time in seconds, between 0 and {max_t:.1}, got {}",
            q.t
        )));
    }
    if body.is_empty() {
        return Err(ServerError::BadRequest(
            "the frame is empty: send the camera picture (JPEG, PNG or WebP) as the body".into(),
        ));
    }
    if body.len() > MAX_FRAME_BYTES {
        return Err(ServerError::TooLarge(format!(
            "a frame of {} bytes is over the {MAX_FRAME_BYTES} bytes a frame may have; send smaller pictures",
            body.len()
        )));
    }
    let name = format!("session {id} frame {}", q.seq);
    let analyzer = state.live_analyzer()?;
    let (bytes, frame_name) = (body.clone(), name.clone());
    let found = state
        .analyse_image(&body, &name, move || {
            analyzer
                .analyze_bytes(&bytes, &frame_name)
                .map_err(ServerError::from)
        })
        .await?;
    // The viewer is the largest classified face (others in the picture are passers-by).
    let face = found
        .faces
        .iter()
        .filter(|f| f.classified)
        .max_by(|a, b| (a.bbox.width * a.bbox.height).total_cmp(&(b.bbox.width * b.bbox.height)))
        .cloned();
    let classes = state.meta().classes.clone();
    let image = session.keeps_images.then_some(&body[..]);
    let (stored, frames) = state
        .db
        .add_live_frame(
            &session,
            &LiveFrame {
                seq: q.seq,
                t: q.t,
                faces: found.faces.len(),
                face: face.as_ref(),
                image,
            },
            &classes,
        )
        .await?;
    Ok(Json(FrameAnswer {
        seq: q.seq,
        t: q.t,
        stored,
        frames,
        faces: found.faces.len(),
        face: face.map(|f| FrameFace {
            bbox: f.bbox,
            top_emotion: f.top_emotion,
            uncertain: f.uncertain,
            probabilities: f.probabilities,
        }),
    }))
}

/// Body of `POST /v1/live/sessions/{id}/end`: how the viewing went, as the page saw it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndReport {
    /// `ended` (the ad played to its end), `stopped` (the viewer stopped) or `camera_lost`.
    pub reason: String,
    #[serde(default)]
    pub pauses: u32,
    #[serde(default)]
    pub seeks: u32,
    #[serde(default)]
    pub camera_losses: u32,
    #[serde(default)]
    pub dropped_frames: u32,
}

/// `POST /v1/live/sessions/{id}/end`: the session ends; answers its summary.
#[utoipa::path(
    post,
    path = "/v1/live/sessions/{id}/end",
    operation_id = "live_end_session",
    tag = "live",
    summary = "End a live session with what the page saw (reason ended, stopped or camera_lost; pauses, seeks, camera losses, dropped frames); answers its summary",
    params(("id" = i64, Path, description = "session (job) id")),
    request_body = crate::live::EndReport,
    responses(
        (status = 200, description = "{session_id, state: done, result}", body = crate::live::SessionEnded),
        (status = 400, description = "unknown reason", body = crate::error::ErrorBody),
        (status = 404, description = "the session is not open or the credential is wrong", body = crate::error::ErrorBody),
    ),
    security(("live_session" = [])),
)]
pub async fn end_session(
    State(state): State<SharedState>,
    id: Result<Path<i64>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<EndReport>, JsonRejection>,
) -> ServerResult<Json<SessionEnded>> {
    let id = path_id(id, "session")?;
    let secret = credential(&headers, id)?;
    let report = json_body(body)?;
    if !["ended", "stopped", "camera_lost"].contains(&report.reason.as_str()) {
        return Err(ServerError::BadRequest(format!(
            "reason must be ended, stopped or camera_lost, got {:?}",
            report.reason
        )));
    }
    let session = state.db.open_session(id, &secret).await?;
    let classes = state.meta().classes.clone();
    let summary = state
        .db
        .end_live_session(&session, &report, &classes)
        .await?;
    tracing::info!(job = id, reason = %report.reason, "live viewing session ended");
    Ok(Json(SessionEnded {
        session_id: id,
        state: "done".into(),
        result: summary,
    }))
}

/// `DELETE /v1/live/sessions/{id}`: the viewer withdraws consent; the session and every frame,
/// face and per-second row of it are erased at once (recorded in the audit log).
#[utoipa::path(
    delete,
    path = "/v1/live/sessions/{id}",
    operation_id = "live_erase_session",
    tag = "live",
    summary = "The viewer withdraws consent: the session, its frames and its per-second rows are erased at once (recorded in the audit log)",
    params(("id" = i64, Path, description = "session (job) id")),
    responses(
        (status = 200, description = "{erased: counts}", body = crate::erasure::ErasedResponse),
        (status = 404, description = "unknown session or wrong credential", body = crate::error::ErrorBody),
    ),
    security(("live_session" = [])),
)]
pub async fn erase_session(
    State(state): State<SharedState>,
    id: Result<Path<i64>, PathRejection>,
    headers: HeaderMap,
) -> ServerResult<Json<ErasedResponse>> {
    let id = path_id(id, "session")?;
    let secret = credential(&headers, id)?;
    // A session the viewer has ended can still be erased by them: match any state.
    let row = sqlx::query(
        "SELECT c.workspace_id FROM video_jobs j JOIN ads a ON a.id = j.ad_id \
         JOIN campaigns c ON c.id = a.campaign_id \
         WHERE j.id = $1 AND j.source = 'live' AND j.live_secret_sha256 = $2",
    )
    .bind(id)
    .bind(&secret)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| invalid_session(id))?;
    let actor = Actor {
        workspace_id: row.try_get("workspace_id")?,
        key_id: None,
        name: format!("viewer of live session {id}"),
    };
    let erased = state.db.erase(&Eraser::Key(actor), Target::Job(id)).await?;
    Ok(Json(ErasedResponse { erased }))
}

/// The session a request names in [`SESSION_HEADER`] (id and secret, unchecked), for admission
/// (see [`crate::limits::admit`], which checks it).
pub fn session_of(headers: &HeaderMap) -> Option<(i64, String)> {
    let v = headers.get(SESSION_HEADER)?.to_str().ok()?;
    let (id, secret) = v.trim().split_once('.')?;
    Some((id.parse().ok()?, secret.to_string()))
}
