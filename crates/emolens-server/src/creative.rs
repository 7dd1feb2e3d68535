//! An ad's creative: its length (so reaction-video timelines run on the ad's clock) and, when
//! asked, the creative file itself. `PATCH /v1/ads/{id}` sets the name or `duration_s` by hand;
//! `PUT /v1/ads/{id}/creative` reads them from the creative's video file (FFmpeg, as reaction
//! videos) and stores the file only with `?keep=true`.

use crate::audit::record;
use crate::campaigns::{check_duration, clean_name, json_body, path_id};
use crate::db::{now, Ad, Db};
use crate::error::{ServerError, ServerResult};
use crate::jobs::video_message;
use crate::upload::{read_video, VideoUpload};
use crate::workspace::{Actor, Principal, Role};
use crate::SharedState;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::header;
use axum::response::Response;
use axum::Json;
use emolens_video::VideoInfo;
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

/// The MIME type of a video by FFmpeg's container name.
pub fn video_content_type(container: &str) -> &'static str {
    let c = container.to_ascii_lowercase();
    if c.contains("webm") && !c.contains("matroska,webm") {
        "video/webm"
    } else if c.contains("matroska") {
        // FFmpeg names both Matroska and WebM `matroska,webm`; browsers play WebM as either.
        "video/webm"
    } else if c.contains("mp4") || c.contains("mov") {
        "video/mp4"
    } else if c.contains("avi") {
        "video/x-msvideo"
    } else if c.contains("ogg") {
        "video/ogg"
    } else {
        "application/octet-stream"
    }
}

/// Body of `PATCH /v1/ads/{id}`: any of the fields; `duration_s: null` clears the duration.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "some")]
    pub duration_s: Option<Option<f64>>,
}

/// Tells an absent field (None) from an explicit `null` (Some(None)).
fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

impl Db {
    /// Changes an ad's name and/or duration (an ad of the actor's workspace, checked by the
    /// caller), with its audit entry.
    pub async fn update_ad(
        &self,
        actor: &Actor,
        id: i64,
        name: Option<&str>,
        duration_s: Option<Option<f64>>,
    ) -> ServerResult<Ad> {
        let mut tx = self.begin_write().await?;
        if let Some(n) = name {
            sqlx::query("UPDATE ads SET name = $1 WHERE id = $2")
                .bind(n)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(d) = duration_s {
            sqlx::query("UPDATE ads SET duration_s = $1 WHERE id = $2")
                .bind(d)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        record(
            &mut tx,
            actor,
            "update",
            "ad",
            Some(id),
            json!({ "name": name.is_some(), "duration_s": duration_s }),
        )
        .await?;
        tx.commit().await?;
        self.ad(actor.workspace_id, id).await
    }

    /// Records an ad's creative: its metadata and duration, and its bytes when `keep` (a
    /// creative kept before is dropped when a new one is not).
    pub async fn set_creative(
        &self,
        actor: &Actor,
        id: i64,
        upload: &VideoUpload,
        info: &VideoInfo,
        duration_s: f64,
        keep: bool,
    ) -> ServerResult<Ad> {
        let meta = json!({
            "file_name": upload.name,
            "size_bytes": upload.size,
            "sha256": upload.sha256,
            "container": info.container,
            "codec": info.codec,
            "width": info.width,
            "height": info.height,
            "rotation": info.rotation,
            "fps": info.fps,
            "duration_s": duration_s,
            "kept": keep,
        });
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE ads SET duration_s = $1, creative = $2 WHERE id = $3")
            .bind(duration_s)
            .bind(meta.to_string())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM ad_creatives WHERE ad_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if keep {
            let bytes = tokio::fs::read(&upload.file).await.map_err(|e| {
                ServerError::Internal(format!("cannot read the received creative: {e}"))
            })?;
            sqlx::query(
                "INSERT INTO ad_creatives (ad_id, file_name, content_type, size_bytes, sha256, bytes, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(&upload.name)
            .bind(video_content_type(&info.container))
            .bind(upload.size as i64)
            .bind(&upload.sha256)
            .bind(bytes)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        }
        record(
            &mut tx,
            actor,
            "update",
            "ad",
            Some(id),
            json!({ "creative": true, "duration_s": duration_s, "kept": keep, "bytes": upload.size }),
        )
        .await?;
        tx.commit().await?;
        self.ad(actor.workspace_id, id).await
    }

    /// The kept creative of an ad (checked to be in the caller's workspace): content type, file
    /// name and bytes.
    pub async fn creative(&self, id: i64) -> ServerResult<(String, String, Vec<u8>)> {
        let row =
            sqlx::query("SELECT content_type, file_name, bytes FROM ad_creatives WHERE ad_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some(r) => Ok((
                r.try_get("content_type")?,
                r.try_get("file_name")?,
                r.try_get("bytes")?,
            )),
            None => Err(ServerError::NotFound(format!(
                "ad {id} has no kept creative: upload it with PUT /v1/ads/{id}/creative?keep=true (without keep=true only its metadata is stored)"
            ))),
        }
    }
}

/// `PATCH /v1/ads/{id}`: the ad's name and/or `duration_s`.
#[utoipa::path(
    patch,
    path = "/v1/ads/{id}",
    operation_id = "creative_patch_ad",
    tag = "campaigns",
    summary = "Change an ad's name and/or length (analyst)",
    params(("id" = i64, Path, description = "ad id")),
    request_body = crate::creative::AdPatch,
    responses(
        (status = 200, description = "the ad", body = crate::db::Ad),
        (status = 400, description = "nothing to change, or a bad value", body = crate::error::ErrorBody),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 403, description = "the key's role is too low (the message names the role needed)", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad, or one of another workspace", body = crate::error::ErrorBody),
        (status = 415, description = "not JSON", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn patch_ad(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<AdPatch>, JsonRejection>,
) -> ServerResult<Json<Ad>> {
    p.require(Role::Analyst, "changing an ad")?;
    let id = path_id(id, "ad")?;
    let patch = json_body(body)?;
    state.db.ad(p.workspace_id, id).await?;
    let name = patch
        .name
        .as_deref()
        .map(|n| clean_name(n, "ad"))
        .transpose()?;
    let duration = match patch.duration_s {
        Some(d) => Some(check_duration(d)?),
        None => None,
    };
    if name.is_none() && duration.is_none() {
        return Err(ServerError::BadRequest(
            "nothing to change: send {\"name\": ...} and/or {\"duration_s\": seconds or null}"
                .into(),
        ));
    }
    Ok(Json(
        state
            .db
            .update_ad(&p.actor(), id, name.as_deref(), duration)
            .await?,
    ))
}

/// Query of `PUT /v1/ads/{id}/creative`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreativeQuery {
    /// Store the file (default false: only its metadata).
    #[serde(default)]
    pub keep: bool,
    /// File name for a raw body.
    pub name: Option<String>,
}

/// `PUT /v1/ads/{id}/creative`: the ad's creative video (multipart `file` or raw `video/*`
/// body); its duration becomes the ad's.
#[utoipa::path(
    put,
    path = "/v1/ads/{id}/creative",
    operation_id = "creative_put_creative",
    tag = "videos",
    summary = "Upload the ad's creative video: its duration (and size, codec, frame rate) become the ad's; the file is stored only with keep=true (analyst)",
    params(("id" = i64, Path, description = "ad id"), ("keep" = Option<bool>, Query, description = "store the file (default false: metadata only)"), ("name" = Option<String>, Query, description = "file name for a raw body")),
    request_body(content((crate::upload::VideoForm = "multipart/form-data"), ([u8] = "video/*"), ([u8] = "application/octet-stream"))),
    responses(
        (status = 200, description = "the ad, with duration_s and creative", body = crate::db::Ad),
        (status = 400, description = "empty, corrupt, or no duration announced", body = crate::error::ErrorBody),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 403, description = "the key's role is too low (the message names the role needed)", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad, or one of another workspace", body = crate::error::ErrorBody),
        (status = 413, description = "over --max-video-mib", body = crate::error::ErrorBody),
        (status = 415, description = "not a video, audio only, or undecodable", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn put_creative(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    q: Result<Query<CreativeQuery>, QueryRejection>,
    req: Request,
) -> ServerResult<Json<Ad>> {
    p.require(Role::Analyst, "uploading an ad's creative")?;
    let id = path_id(id, "ad")?;
    let Query(q) = q.map_err(|e| ServerError::BadRequest(e.body_text()))?;
    state.db.ad(p.workspace_id, id).await?;
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
    let duration = info.duration_s.filter(|d| d.is_finite() && *d > 0.0).ok_or_else(|| {
        ServerError::BadRequest(format!(
            "{}: the file announces no duration; set the ad's length with PATCH /v1/ads/{id} {{\"duration_s\": seconds}}",
            upload.name
        ))
    })?;
    let duration = check_duration(Some(duration))?.unwrap_or(duration);
    Ok(Json(
        state
            .db
            .set_creative(&p.actor(), id, &upload, &info, duration, q.keep)
            .await?,
    ))
}

/// `GET /v1/ads/{id}/creative`: the kept creative file; single byte ranges answer 206 (players
/// seek with them).
#[utoipa::path(
    get,
    path = "/v1/ads/{id}/creative",
    operation_id = "creative_get_creative",
    tag = "videos",
    summary = "The ad's kept creative file",
    params(("id" = i64, Path, description = "ad id")),
    responses(
        (status = 200, description = "the video", body = [u8], content_type = "video/*"),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad, or no kept creative", body = crate::error::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn get_creative(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    headers: axum::http::HeaderMap,
) -> ServerResult<Response> {
    let id = path_id(id, "ad")?;
    state.db.ad(p.workspace_id, id).await?;
    let (ctype, file_name, bytes) = state.db.creative(id).await?;
    let safe: String = file_name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    let mut resp = crate::live::ranged(ctype, bytes, &headers);
    if let Ok(v) = header::HeaderValue::from_str(&format!("inline; filename=\"{safe}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
