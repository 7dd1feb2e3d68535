//! Campaigns, ads, audience-photo uploads, results, comparison and export. Every handler works
//! in the key's workspace (other workspaces' ids answer 404) and checks the key's role: viewers
//! read, analysts also write.

use crate::api::{analyze_uploads, read_images, BatchSummary, ItemOut};
use crate::db::{Ad, Campaign, NewFace, NewPhoto, Retention, StoredFace, StoredPhoto};
use crate::error::{ServerError, ServerResult};
use crate::stats::{
    difference, distribution, face_valence, valence_signs, Distribution, FaceSample,
    MIN_FACES_FOR_INTERVAL,
};
use crate::workspace::{Principal, Role};
use crate::SharedState;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use emolens_core::fingerprint::sha256_hex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fmt::Write;
use utoipa::ToSchema;

/// Maps axum's JSON rejections onto our errors: 415 for a wrong content type, 400 otherwise.
pub fn json_body<T>(r: Result<Json<T>, JsonRejection>) -> ServerResult<T> {
    match r {
        Ok(Json(v)) => Ok(v),
        Err(JsonRejection::MissingJsonContentType(_)) => Err(ServerError::UnsupportedMediaType(
            "send the body as application/json".into(),
        )),
        Err(e) => Err(ServerError::BadRequest(format!(
            "malformed JSON body: {}",
            e.body_text()
        ))),
    }
}

pub(crate) fn path_id(r: Result<Path<i64>, PathRejection>, what: &str) -> ServerResult<i64> {
    r.map(|Path(id)| id).map_err(|e| {
        ServerError::BadRequest(format!("{what} id must be an integer: {}", e.body_text()))
    })
}

pub(crate) fn clean_name(name: &str, what: &str) -> ServerResult<String> {
    let n = name.trim();
    if n.is_empty() || n.len() > 200 {
        return Err(ServerError::BadRequest(format!(
            "{what} name must be 1 to 200 characters"
        )));
    }
    Ok(n.to_string())
}

/// Body of `POST /v1/campaigns`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Keep uploaded images (default false: only the numbers are stored).
    #[serde(default)]
    pub keep_images: bool,
    /// Purge kept images this many days after upload (default: keep until erased).
    #[serde(default)]
    pub retention_days: Option<i64>,
    /// With `retention_days`: purge the photos' records and faces too (the ad's results then
    /// cover the retention window only).
    #[serde(default)]
    pub retention_results: bool,
}

/// The answer of `GET /v1/campaigns`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignList {
    pub campaigns: Vec<Campaign>,
}

/// The answer of `GET /v1/campaigns/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignWithAds {
    pub campaign: Campaign,
    pub ads: Vec<Ad>,
}

/// The answer of `GET /v1/ads/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdWithCampaign {
    pub ad: Ad,
    pub campaign: Campaign,
}

/// The answer of `GET /v1/ads/{id}/photos`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoList {
    pub photos: Vec<StoredPhoto>,
}

/// The answer of `POST /v1/ads/{id}/photos`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadResponse {
    pub ad_id: i64,
    /// The model's classes, in its order.
    pub classes: Vec<String>,
    /// Whether the campaign keeps the images (otherwise only the numbers were stored).
    pub images_kept: bool,
    pub summary: BatchSummary,
    pub items: Vec<ItemOut>,
}

/// The thresholds that made faces uncertain.
#[derive(Debug, Serialize, ToSchema)]
pub struct Thresholds {
    /// A face whose top probability is below this is uncertain.
    pub uncertain_below: f32,
    /// A face whose quality is below this is uncertain.
    pub min_quality: f32,
}

/// The answer of `GET /v1/ads/{id}/results`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdResults {
    pub ad: Ad,
    /// The model's classes, in its order.
    pub classes: Vec<String>,
    pub results: Distribution,
    pub thresholds: Thresholds,
}

/// Longest retention period, in days (100 years).
const MAX_RETENTION_DAYS: i64 = 36_500;

/// `POST /v1/campaigns`.
#[utoipa::path(
    post,
    path = "/v1/campaigns",
    operation_id = "campaigns_create",
    tag = "campaigns",
    summary = "Create a campaign",
    description = "`keep_images` (default false) stores uploaded photos; otherwise only the numbers are kept.",
    request_body = crate::campaigns::NewCampaign,
    responses(
        (status = 201, description = "created", body = crate::db::Campaign),
        (status = 400, description = "malformed request (names the problem)", body = crate::error::ErrorBody),
        (status = 401, description = "missing or invalid API key", body = crate::error::ErrorBody),
        (status = 408, response = crate::error::RequestTimeout),
        (status = 415, description = "wrong content type or not an image", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn create(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    body: Result<Json<NewCampaign>, JsonRejection>,
) -> ServerResult<(StatusCode, Json<Campaign>)> {
    p.require(Role::Analyst, "creating a campaign")?;
    let c = json_body(body)?;
    let name = clean_name(&c.name, "campaign")?;
    if let Some(d) = c.retention_days {
        if !(1..=MAX_RETENTION_DAYS).contains(&d) {
            return Err(ServerError::BadRequest(format!(
                "retention_days must be between 1 and {MAX_RETENTION_DAYS}, got {d}; leave it out to keep images until they are erased"
            )));
        }
    } else if c.retention_results {
        return Err(ServerError::BadRequest(
            "retention_results needs retention_days: say after how many days to purge".into(),
        ));
    }
    let retention = Retention {
        days: c.retention_days,
        results: c.retention_results,
    };
    let campaign = state
        .db
        .create_campaign(
            &p.actor(),
            &name,
            c.description.trim(),
            c.keep_images,
            retention,
        )
        .await?;
    tracing::info!(id = campaign.id, name = %campaign.name, keep_images = campaign.keep_images, "campaign created");
    Ok((StatusCode::CREATED, Json(campaign)))
}

/// `GET /v1/campaigns`.
#[utoipa::path(
    get,
    path = "/v1/campaigns",
    operation_id = "campaigns_list",
    tag = "campaigns",
    summary = "List campaigns",
    responses(
        (status = 200, description = "campaigns", body = crate::campaigns::CampaignList),
        (status = 401, description = "key", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn list(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
) -> ServerResult<Json<CampaignList>> {
    let campaigns = state.db.list_campaigns(p.workspace_id).await?;
    Ok(Json(CampaignList { campaigns }))
}

/// `GET /v1/campaigns/{id}`: the campaign with its ads.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}",
    operation_id = "campaigns_get_one",
    tag = "campaigns",
    summary = "A campaign with its ads",
    params(("id" = i64, Path, description = "campaign id")),
    responses(
        (status = 200, description = "campaign", body = crate::campaigns::CampaignWithAds),
        (status = 401, description = "key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown campaign", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn get_one(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<CampaignWithAds>> {
    let id = path_id(id, "campaign")?;
    let campaign = state.db.campaign(p.workspace_id, id).await?;
    let ads = state.db.list_ads(id).await?;
    Ok(Json(CampaignWithAds { campaign, ads }))
}

/// Body of `POST /v1/campaigns/{id}/ads`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAd {
    pub name: String,
    /// Length of the ad's creative in seconds (reaction-video timelines run from 0 to it).
    #[serde(default)]
    pub duration_s: Option<f64>,
}

/// Longest ad creative, seconds (an hour: ads are 15-60 s; long-form content is not an ad).
pub const MAX_AD_SECONDS: f64 = 3600.0;

/// Checks an ad duration: positive, finite, at most [`MAX_AD_SECONDS`].
pub fn check_duration(d: Option<f64>) -> ServerResult<Option<f64>> {
    match d {
        Some(d) if !(d.is_finite() && d > 0.0 && d <= MAX_AD_SECONDS) => {
            Err(ServerError::BadRequest(format!(
                "duration_s must be a number of seconds above 0 and at most {MAX_AD_SECONDS}, got {d}"
            )))
        }
        d => Ok(d),
    }
}

/// `POST /v1/campaigns/{id}/ads`.
#[utoipa::path(
    post,
    path = "/v1/campaigns/{id}/ads",
    operation_id = "campaigns_create_ad",
    tag = "campaigns",
    summary = "Add an ad to a campaign",
    params(("id" = i64, Path, description = "campaign id")),
    request_body = crate::campaigns::NewAd,
    responses(
        (status = 201, description = "created", body = crate::db::Ad),
        (status = 400, description = "malformed request (names the problem)", body = crate::error::ErrorBody),
        (status = 401, description = "missing or invalid API key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown campaign, ad or photo", body = crate::error::ErrorBody),
        (status = 408, response = crate::error::RequestTimeout),
        (status = 415, description = "wrong content type or not an image", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn create_ad(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<NewAd>, JsonRejection>,
) -> ServerResult<(StatusCode, Json<Ad>)> {
    p.require(Role::Analyst, "adding an ad")?;
    let id = path_id(id, "campaign")?;
    let a = json_body(body)?;
    let name = clean_name(&a.name, "ad")?;
    let duration = check_duration(a.duration_s)?;
    let ad = state.db.create_ad(&p.actor(), id, &name, duration).await?;
    Ok((StatusCode::CREATED, Json(ad)))
}

/// `GET /v1/ads/{id}`.
#[utoipa::path(
    get,
    path = "/v1/ads/{id}",
    operation_id = "campaigns_get_ad",
    tag = "campaigns",
    summary = "An ad with its counts",
    params(("id" = i64, Path, description = "ad id")),
    responses(
        (status = 200, description = "ad", body = crate::campaigns::AdWithCampaign),
        (status = 401, description = "key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn get_ad(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<AdWithCampaign>> {
    let id = path_id(id, "ad")?;
    let ad = state.db.ad(p.workspace_id, id).await?;
    let campaign = state.db.campaign(p.workspace_id, ad.campaign_id).await?;
    Ok(Json(AdWithCampaign { ad, campaign }))
}

/// `GET /v1/ads/{id}/photos`: every upload with its status (failed ones with their error).
#[utoipa::path(
    get,
    path = "/v1/ads/{id}/photos",
    operation_id = "campaigns_list_photos",
    tag = "campaigns",
    summary = "List an ad's uploads with their status",
    params(("id" = i64, Path, description = "ad id")),
    responses(
        (status = 200, description = "photos", body = crate::campaigns::PhotoList),
        (status = 401, description = "key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn list_photos(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<PhotoList>> {
    let id = path_id(id, "ad")?;
    state.db.ad(p.workspace_id, id).await?;
    Ok(Json(PhotoList {
        photos: state.db.ad_photos(id).await?,
    }))
}

/// `POST /v1/ads/{id}/photos`: audience photos (multipart `files`, or JSON base64). Each photo
/// is analysed and reported on its own; all rows are then written in one transaction. Images
/// are stored only when the campaign keeps images.
#[utoipa::path(
    post,
    path = "/v1/ads/{id}/photos",
    operation_id = "campaigns_upload",
    tag = "campaigns",
    summary = "Upload audience photos of an ad (many at once)",
    description = "Each photo is analysed and reported on its own; all rows are written in one transaction. Images are not kept unless the campaign keeps images. Inform the people photographed and get their consent.",
    params(("id" = i64, Path, description = "ad id"), ("assume_crop" = Option<bool>, Query, description = "take each image as one face crop (no detection)")),
    request_body(content((crate::upload::ImagesForm = "multipart/form-data"), (crate::upload::AnalyzeJson = "application/json"))),
    responses(
        (status = 200, description = "per-item results", body = crate::campaigns::UploadResponse),
        (status = 400, description = "malformed request (names the problem)", body = crate::error::ErrorBody),
        (status = 401, description = "missing or invalid API key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown campaign, ad or photo", body = crate::error::ErrorBody),
        (status = 408, response = crate::error::RequestTimeout),
        (status = 413, description = "too many files or body too large", body = crate::error::ErrorBody),
        (status = 415, description = "wrong content type or not an image", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn upload(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    Query(q): Query<crate::api::AnalyzeQuery>,
    req: Request,
) -> ServerResult<Json<UploadResponse>> {
    p.require(Role::Analyst, "uploading photos")?;
    let id = path_id(id, "ad")?;
    let ad = state.db.ad(p.workspace_id, id).await?;
    let campaign = state.db.campaign(p.workspace_id, ad.campaign_id).await?;
    let (uploads, json_crop) = read_images(&state, req).await?;
    let assume_crop = q.assume_crop.or(json_crop).unwrap_or(false);
    let results = analyze_uploads(&state, uploads, assume_crop).await?;
    let classes = state.meta().classes.clone();
    let mut rows = Vec::with_capacity(results.len());
    let mut items: Vec<ItemOut> = Vec::with_capacity(results.len());
    for (u, r) in &results {
        let item = crate::api::item_out(&state, u, r);
        let (faces, width, height) = match (r, &item.faces) {
            (Ok(rep), Some(fs)) => (
                fs.iter()
                    .map(|f| NewFace {
                        x: f.bbox.x as f64,
                        y: f.bbox.y as f64,
                        w: f.bbox.width as f64,
                        h: f.bbox.height as f64,
                        probabilities: f.probabilities.clone(),
                        top_class: f.top_emotion.clone(),
                        top_probability: f.top_probability as f64,
                        quality: f.quality as f64,
                        uncertain: f.uncertain,
                    })
                    .collect(),
                rep.width,
                rep.height,
            ),
            _ => (Vec::new(), 0, 0),
        };
        rows.push(NewPhoto {
            file_name: u.name.clone(),
            sha256: sha256_hex(&u.bytes),
            error: r.as_ref().err().map(|e| e.to_string()),
            width,
            height,
            image: (campaign.keep_images && r.is_ok()).then(|| u.bytes.to_vec()),
            faces,
        });
        items.push(item);
    }
    let stored = state.db.insert_photos(&p.actor(), id, &rows).await?;
    for (item, s) in items.iter_mut().zip(stored) {
        item.photo_id = Some(s.id);
        if let Some(first) = s.duplicate_of {
            // Same content as a photo the ad has: reported, not counted (no faces stored).
            item.status = "duplicate";
            item.duplicate_of = Some(first);
            item.faces = None;
        }
    }
    let count = |status: &str| items.iter().filter(|i| i.status == status).count();
    let (ok, failed, duplicates) = (count("ok"), count("error"), count("duplicate"));
    let faces: usize = items
        .iter()
        .filter_map(|i| i.faces.as_ref())
        .map(|f| f.len())
        .sum();
    tracing::info!(
        ad = id,
        photos = items.len(),
        ok,
        duplicates,
        faces,
        "photos uploaded"
    );
    Ok(Json(UploadResponse {
        ad_id: id,
        classes,
        images_kept: campaign.keep_images,
        summary: BatchSummary {
            items: items.len(),
            ok,
            failed,
            duplicates: Some(duplicates),
            faces,
        },
        items,
    }))
}

fn samples(classes: &[String], faces: &[StoredFace]) -> Vec<FaceSample> {
    faces
        .iter()
        .map(|f| {
            let probabilities: Vec<f32> = classes
                .iter()
                .map(|c| f.probabilities.get(c).copied().unwrap_or(0.0))
                .collect();
            FaceSample {
                top: classes
                    .iter()
                    .position(|c| *c == f.top_class)
                    .unwrap_or(usize::MAX),
                probabilities,
                uncertain: f.uncertain,
            }
        })
        .collect()
}

async fn ad_results(state: &SharedState, ad: &Ad) -> ServerResult<(Distribution, Vec<StoredFace>)> {
    let faces = state.db.ad_faces(ad.id).await?;
    let classes = state.meta().classes.clone();
    let s = samples(&classes, &faces);
    Ok((distribution(&classes, &s), faces))
}

/// `GET /v1/ads/{id}/results`.
#[utoipa::path(
    get,
    path = "/v1/ads/{id}/results",
    operation_id = "campaigns_results",
    tag = "campaigns",
    summary = "An ad's results: faces, uncertain faces (apart), mean probabilities, share per top emotion, valence with 95% intervals (null with interval_note, e.g. too few faces, under 10 faces or without variation)",
    params(("id" = i64, Path, description = "ad id")),
    responses(
        (status = 200, description = "results", body = crate::campaigns::AdResults),
        (status = 401, description = "key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn results(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<AdResults>> {
    let id = path_id(id, "ad")?;
    let ad = state.db.ad(p.workspace_id, id).await?;
    let (results, _) = ad_results(&state, &ad).await?;
    Ok(Json(AdResults {
        ad,
        classes: state.meta().classes.clone(),
        results,
        thresholds: Thresholds {
            uncertain_below: state.config.uncertain_below,
            min_quality: state.config.min_quality,
        },
    }))
}

/// Query of the comparison.
#[derive(Debug, Deserialize, Default)]
pub struct CompareQuery {
    /// Ad to compare against (default: the campaign's first ad).
    pub baseline: Option<i64>,
}

async fn comparison(
    state: &SharedState,
    campaign: &Campaign,
    baseline: Option<i64>,
) -> ServerResult<Value> {
    let ads = state.db.list_ads(campaign.id).await?;
    let classes = state.meta().classes.clone();
    let base_id = match baseline {
        Some(b) if ads.iter().any(|a| a.id == b) => Some(b),
        Some(b) => {
            return Err(ServerError::BadRequest(format!(
                "baseline ad {b} is not an ad of campaign {}",
                campaign.id
            )))
        }
        None => ads.first().map(|a| a.id),
    };
    let mut per_ad = Vec::new();
    for ad in &ads {
        let faces = state.db.ad_faces(ad.id).await?;
        per_ad.push((ad, samples(&classes, &faces)));
    }
    let base = per_ad
        .iter()
        .find(|(a, _)| Some(a.id) == base_id)
        .map(|(_, s)| s.clone())
        .unwrap_or_default();
    let rows: Vec<Value> = per_ad
        .iter()
        .map(|(ad, s)| {
            json!({
                "ad": ad,
                "results": distribution(&classes, s),
                "difference_vs_baseline": if Some(ad.id) == base_id { Value::Null } else { json!(difference(&classes, &base, s)) },
            })
        })
        .collect();
    Ok(json!({
        "campaign": campaign,
        "classes": classes,
        "baseline_ad_id": base_id,
        "method": format!("95% percentile bootstrap intervals (2000 resamples, fixed seed); differences resample both ads independently. Intervals only from {MIN_FACES_FOR_INTERVAL} counted faces up and where faces vary (otherwise null, with interval_note); a difference is significant only when both ads reach that and its interval excludes zero. Uncertain faces are counted apart and left out."),
        "ads": rows,
    }))
}

/// `GET /v1/campaigns/{id}/compare`: the ads side by side, each against the baseline.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}/compare",
    operation_id = "campaigns_compare",
    tag = "campaigns",
    summary = "The ads side by side: distributions, valence and differences vs a baseline ad with 95% bootstrap intervals (null with interval_note under 10 faces or without variation; valence_significance says too_few_faces instead of a verdict)",
    params(("id" = i64, Path, description = "campaign id"), ("baseline" = Option<i64>, Query)),
    responses(
        (status = 200, description = "comparison", body = Object),
        (status = 401, description = "key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown campaign", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn compare(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    Query(q): Query<CompareQuery>,
) -> ServerResult<Json<Value>> {
    let id = path_id(id, "campaign")?;
    let campaign = state.db.campaign(p.workspace_id, id).await?;
    Ok(Json(comparison(&state, &campaign, q.baseline).await?))
}

/// Query of the exports.
#[derive(Debug, Deserialize, Default)]
pub struct ExportQuery {
    /// `csv` or `json` (default).
    pub format: Option<String>,
}

pub(crate) enum Format {
    Csv,
    Json,
}

impl Format {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

pub(crate) fn format_of(q: &ExportQuery) -> ServerResult<Format> {
    match q
        .format
        .as_deref()
        .unwrap_or("json")
        .to_ascii_lowercase()
        .as_str()
    {
        "json" => Ok(Format::Json),
        "csv" => Ok(Format::Csv),
        other => Err(ServerError::BadRequest(format!(
            "unknown export format '{other}': use format=csv or format=json"
        ))),
    }
}

/// A text cell of a CSV export: quoted when needed (RFC 4180), and made inert for spreadsheets
/// (OWASP's CSV-injection advice): a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage
/// return, which Excel, LibreOffice and Google Sheets would run as a formula, gets a leading `'`
/// and quotes. Numbers are written by the callers directly and never pass through here, so a
/// negative valence stays a number.
pub fn csv_text(s: &str) -> String {
    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky {
        format!("\"'{}\"", s.replace('"', "\"\""))
    } else if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub(crate) fn attachment(body: String, ctype: &'static str, filename: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /v1/ads/{id}/export?format=csv|json`: one row per face.
#[utoipa::path(
    get,
    path = "/v1/ads/{id}/export",
    operation_id = "campaigns_export_ad",
    tag = "campaigns",
    summary = "Export an ad (one row per face)",
    params(("id" = i64, Path, description = "ad id"), ("format" = Option<String>, Query)),
    responses(
        (status = 200, description = "export", content((Object = "application/json"), (String = "text/csv"))),
        (status = 401, description = "key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown ad", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn export_ad(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    Query(q): Query<ExportQuery>,
) -> ServerResult<Response> {
    let id = path_id(id, "ad")?;
    let fmt = format_of(&q)?;
    let ad = state.db.ad(p.workspace_id, id).await?;
    let (dist, faces) = ad_results(&state, &ad).await?;
    state
        .db
        .audit(
            &p.actor(),
            "export",
            "ad",
            Some(id),
            json!({ "format": fmt.name(), "faces": faces.len() }),
        )
        .await?;
    let classes = state.meta().classes.clone();
    match fmt {
        Format::Json => {
            let body = json!({ "ad": ad, "classes": classes, "results": dist, "faces": faces });
            Ok(attachment(
                body.to_string(),
                "application/json",
                format!("ad-{id}.json"),
            ))
        }
        Format::Csv => {
            let signs = valence_signs(&classes);
            let mut o = String::from("ad_id,ad_name,photo_id,file_name,face_id,x,y,width,height,quality,uncertain,top_emotion,top_probability,valence");
            for c in &classes {
                let _ = write!(o, ",{}", csv_text(&format!("p_{c}")));
            }
            o.push('\n');
            for f in &faces {
                let probs: Vec<f32> = classes
                    .iter()
                    .map(|c| f.probabilities.get(c).copied().unwrap_or(0.0))
                    .collect();
                let _ = write!(
                    o,
                    "{},{},{},{},{},{:.1},{:.1},{:.1},{:.1},{:.4},{},{},{:.6},{:.6}",
                    ad.id,
                    csv_text(&ad.name),
                    f.photo_id,
                    csv_text(&f.file_name),
                    f.id,
                    f.x,
                    f.y,
                    f.width,
                    f.height,
                    f.quality,
                    f.uncertain,
                    csv_text(&f.top_class),
                    f.top_probability,
                    face_valence(&probs, &signs)
                );
                for p in probs {
                    let _ = write!(o, ",{p:.6}");
                }
                o.push('\n');
            }
            Ok(attachment(
                o,
                "text/csv; charset=utf-8",
                format!("ad-{id}.csv"),
            ))
        }
    }
}

/// `GET /v1/campaigns/{id}/export?format=csv|json`: one row per ad (CSV) or the full
/// comparison with every face (JSON).
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}/export",
    operation_id = "campaigns_export_campaign",
    tag = "campaigns",
    summary = "Export a campaign (CSV: one row per ad; JSON: comparison and every face)",
    params(("id" = i64, Path, description = "campaign id"), ("format" = Option<String>, Query)),
    responses(
        (status = 200, description = "export", content((Object = "application/json"), (String = "text/csv"))),
        (status = 401, description = "key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown campaign", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn export_campaign(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
    Query(q): Query<ExportQuery>,
) -> ServerResult<Response> {
    let id = path_id(id, "campaign")?;
    let fmt = format_of(&q)?;
    let campaign = state.db.campaign(p.workspace_id, id).await?;
    let cmp = comparison(&state, &campaign, None).await?;
    state
        .db
        .audit(
            &p.actor(),
            "export",
            "campaign",
            Some(id),
            json!({ "format": fmt.name(), "ads": cmp["ads"].as_array().map_or(0, |a| a.len()) }),
        )
        .await?;
    let classes = state.meta().classes.clone();
    match fmt {
        Format::Json => {
            let mut faces = serde_json::Map::new();
            for ad in state.db.list_ads(id).await? {
                faces.insert(ad.id.to_string(), json!(state.db.ad_faces(ad.id).await?));
            }
            let body = json!({ "comparison": cmp, "faces_by_ad": faces });
            Ok(attachment(
                body.to_string(),
                "application/json",
                format!("campaign-{id}.json"),
            ))
        }
        Format::Csv => {
            let mut o = String::from("campaign_id,campaign_name,ad_id,ad_name,photos,failed_photos,duplicate_photos,faces_counted,faces_uncertain,valence,valence_ci_low,valence_ci_high,valence_diff_vs_baseline,valence_diff_ci_low,valence_diff_ci_high,valence_interval_note,valence_diff_significance");
            for c in &classes {
                let _ = write!(
                    o,
                    ",{},{}",
                    csv_text(&format!("mean_p_{c}")),
                    csv_text(&format!("share_{c}"))
                );
            }
            o.push('\n');
            let num = |v: &Value| v.as_f64().map(|x| format!("{x:.6}")).unwrap_or_default();
            for row in cmp["ads"].as_array().cloned().unwrap_or_default() {
                let (ad, r, d) = (&row["ad"], &row["results"], &row["difference_vs_baseline"]);
                let _ = write!(
                    o,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    campaign.id,
                    csv_text(&campaign.name),
                    ad["id"],
                    csv_text(ad["name"].as_str().unwrap_or("")),
                    ad["photos"],
                    ad["failed_photos"],
                    ad["duplicate_photos"],
                    r["faces"],
                    r["uncertain_faces"],
                    num(&r["valence"]["value"]),
                    num(&r["valence"]["ci_low"]),
                    num(&r["valence"]["ci_high"]),
                    num(&d["valence"]["value"]),
                    num(&d["valence"]["ci_low"]),
                    num(&d["valence"]["ci_high"]),
                    csv_text(r["valence"]["interval_note"].as_str().unwrap_or("")),
                    // The baseline row has no difference: its cell stays empty.
                    csv_text(d["valence_significance"].as_str().unwrap_or("")),
                );
                for c in &classes {
                    let _ = write!(
                        o,
                        ",{},{}",
                        num(&r["mean_probabilities"][c]),
                        num(&r["top_share"][c]["value"])
                    );
                }
                o.push('\n');
            }
            Ok(attachment(
                o,
                "text/csv; charset=utf-8",
                format!("campaign-{id}.csv"),
            ))
        }
    }
}

/// `GET /v1/photos/{id}/image`: a kept upload (only for campaigns that keep images).
#[utoipa::path(
    get,
    path = "/v1/photos/{id}/image",
    operation_id = "campaigns_photo_image",
    tag = "campaigns",
    summary = "A kept photo (campaigns that keep images only)",
    params(("id" = i64, Path, description = "photo id")),
    responses(
        (status = 200, description = "the image", content(([u8] = "image/jpeg"), ([u8] = "image/png"), ([u8] = "image/webp"))),
        (status = 401, description = "key", body = crate::error::ErrorBody),
        (status = 404, description = "unknown or not kept", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn photo_image(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Response> {
    let id = path_id(id, "photo")?;
    let bytes = state.db.photo_image(p.workspace_id, id).await?;
    state
        .db
        .audit(
            &p.actor(),
            "export",
            "photo",
            Some(id),
            json!({ "bytes": bytes.len() }),
        )
        .await?;
    let ctype = image::guess_format(&bytes)
        .map(|f| f.to_mime_type())
        .unwrap_or("application/octet-stream");
    Ok(([(header::CONTENT_TYPE, ctype)], bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::csv_text;

    #[test]
    fn csv_text_is_quoted_and_inert() {
        assert_eq!(csv_text("plain"), "plain");
        assert_eq!(csv_text("a,b"), "\"a,b\"");
        assert_eq!(csv_text("say \"hi\""), "\"say \"\"hi\"\"\"");
        for (risky, safe) in [
            ("=1+2", "\"'=1+2\""),
            ("+1", "\"'+1\""),
            ("-1", "\"'-1\""),
            ("@SUM(1)", "\"'@SUM(1)\""),
            ("\tx", "\"'\tx\""),
            ("\rx", "\"'\rx\""),
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
        ] {
            assert_eq!(csv_text(risky), safe, "{risky:?}");
        }
    }
}
