//! Storage of campaigns, ads, photos, faces and API keys. SQLite (a file, created on start) or
//! PostgreSQL, through sqlx's `Any` driver so one set of queries serves both; each backend has
//! its own migrations (embedded in the binary) and is migrated on connect.

use crate::audit::record;
use crate::error::{ServerError, ServerResult};
use crate::workspace::{Actor, Principal, Role};
use serde::Serialize;
use serde_json::json;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated connection pool.
#[derive(Clone, Debug)]
pub struct Db {
    pub(crate) pool: AnyPool,
    backend: Backend,
}

/// Turns what a user gives (`sqlite://x.db`, a bare path, `postgres://...`) into a sqlx URL;
/// SQLite files are created when missing.
pub fn normalise_url(url: &str) -> ServerResult<(String, Backend)> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((url.to_string(), Backend::Postgres));
    }
    let url = if url.starts_with("sqlite:") {
        url.to_string()
    } else if url.contains("://") {
        return Err(ServerError::BadRequest(format!(
            "database URL '{url}' is neither sqlite: nor postgres://; give a file path, sqlite://FILE or postgres://USER@HOST/DB"
        )));
    } else {
        format!("sqlite://{url}")
    };
    let url = if url.contains("mode=") {
        url
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    };
    Ok((url, Backend::Sqlite))
}

/// The file of a normalised SQLite URL (`sqlite://PATH?...`), or `None` for an in-memory
/// database.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && path != ":memory:" && !url.contains("mode=memory"))
        .then(|| std::path::PathBuf::from(path))
}

/// Creates a missing SQLite file readable and writable by its owner only (0600), before SQLite
/// opens it: it holds face boxes, file names and (when kept) photos. SQLite gives its journal
/// and WAL files the database file's mode.
fn create_private(path: &std::path::Path) -> ServerResult<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(ServerError::Database(format!(
            "cannot create the database file {}: {e}; check the folder exists and is writable, or pass another --database-url",
            path.display()
        ))),
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A campaign: a set of ads shown to the same kind of audience.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Campaign {
    pub id: i64,
    /// The workspace it belongs to (not shown: a key only ever sees its own).
    #[serde(skip)]
    pub workspace_id: i64,
    pub name: String,
    pub description: String,
    /// Whether uploaded photos are stored; when false only the numbers are kept.
    pub keep_images: bool,
    /// Days after upload when kept images are purged (None: kept until erased).
    pub retention_days: Option<i64>,
    /// With `retention_days`: purge the photos' records and faces too, not only the images.
    pub retention_results: bool,
    pub created_at: i64,
}

/// How long a campaign keeps what it stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub days: Option<i64>,
    pub results: bool,
}

/// An ad of a campaign, with its upload counts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Ad {
    pub id: i64,
    pub campaign_id: i64,
    pub name: String,
    pub created_at: i64,
    /// Photos analysed successfully.
    pub photos: i64,
    /// Uploads that failed (not an image, truncated...), kept as records with their error.
    pub failed_photos: i64,
    /// Uploads of a file already analysed for this ad (same SHA-256), not counted again.
    pub duplicate_photos: i64,
    /// Faces found in the photos.
    pub faces: i64,
    /// Length of the ad's creative, seconds: reaction-video timelines run from 0 to this (None:
    /// not set; timelines then run to the longest reaction video).
    pub duration_s: Option<f64>,
    /// What was read from the creative's file when one was uploaded (container, codec, size,
    /// frame rate, whether the file is kept); None otherwise.
    pub creative: Option<serde_json::Value>,
    /// Reaction videos analysed (jobs done).
    pub reaction_videos: i64,
    /// Reaction videos waiting or being analysed.
    pub reaction_videos_pending: i64,
    /// Reaction videos whose analysis failed.
    pub reaction_videos_failed: i64,
}

/// One face to store.
#[derive(Debug, Clone)]
pub struct NewFace {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub probabilities: BTreeMap<String, f32>,
    pub top_class: String,
    pub top_probability: f64,
    pub quality: f64,
    pub uncertain: bool,
}

/// One upload to store: analysed (`error` None) or failed.
#[derive(Debug, Clone)]
pub struct NewPhoto {
    pub file_name: String,
    pub sha256: String,
    pub error: Option<String>,
    pub width: u32,
    pub height: u32,
    /// The image bytes, only when the campaign keeps images.
    pub image: Option<Vec<u8>>,
    pub faces: Vec<NewFace>,
}

/// A stored face.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredFace {
    pub id: i64,
    pub photo_id: i64,
    pub file_name: String,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub top_class: String,
    pub top_probability: f64,
    pub quality: f64,
    pub uncertain: bool,
    pub probabilities: BTreeMap<String, f32>,
}

/// A stored upload.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredPhoto {
    pub id: i64,
    pub file_name: String,
    pub sha256: String,
    pub status: String,
    pub error: Option<String>,
    pub width: i64,
    pub height: i64,
    pub image_kept: bool,
    pub created_at: i64,
    /// For status `duplicate`: the photo of this ad with the same content.
    pub duplicate_of: Option<i64>,
}

/// Where a stored upload went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub id: i64,
    /// Set when the photo's content was already analysed for the ad: the first photo's id. The
    /// upload is kept as a record with status `duplicate` and no faces.
    pub duplicate_of: Option<i64>,
}

/// An API key's record (never the key itself).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub name: String,
    pub workspace: String,
    pub role: Role,
    /// First characters of the key, to tell keys apart.
    pub prefix: String,
    pub created_at: i64,
    pub revoked: bool,
}

const CAMPAIGN_COLUMNS: &str =
    "id, workspace_id, name, description, keep_images, retention_days, retention_results, created_at";

fn campaign_from(row: &AnyRow) -> Result<Campaign, sqlx::Error> {
    Ok(Campaign {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        workspace_id: row.try_get("workspace_id")?,
        keep_images: row.try_get::<i64, _>("keep_images")? != 0,
        retention_days: row.try_get("retention_days")?,
        retention_results: row.try_get::<i64, _>("retention_results")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

const AD_SELECT: &str = "SELECT a.id, a.campaign_id, a.name, a.created_at, \
    (SELECT COUNT(*) FROM photos p WHERE p.ad_id = a.id AND p.status = 'ok') AS photos, \
    (SELECT COUNT(*) FROM photos p WHERE p.ad_id = a.id AND p.status = 'error') AS failed_photos, \
    (SELECT COUNT(*) FROM photos p WHERE p.ad_id = a.id AND p.status = 'duplicate') AS duplicate_photos, \
    (SELECT COUNT(*) FROM faces f WHERE f.ad_id = a.id) AS faces, \
    a.duration_s, a.creative, \
    (SELECT COUNT(*) FROM video_jobs j WHERE j.ad_id = a.id AND j.state = 'done') AS reaction_videos, \
    (SELECT COUNT(*) FROM video_jobs j WHERE j.ad_id = a.id AND j.state IN ('queued', 'running')) AS reaction_videos_pending, \
    (SELECT COUNT(*) FROM video_jobs j WHERE j.ad_id = a.id AND j.state = 'failed') AS reaction_videos_failed \
    FROM ads a";

fn ad_from(row: &AnyRow) -> Result<Ad, sqlx::Error> {
    Ok(Ad {
        id: row.try_get("id")?,
        campaign_id: row.try_get("campaign_id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        photos: row.try_get("photos")?,
        failed_photos: row.try_get("failed_photos")?,
        duplicate_photos: row.try_get("duplicate_photos")?,
        faces: row.try_get("faces")?,
        duration_s: row.try_get("duration_s")?,
        creative: row
            .try_get::<Option<String>, _>("creative")?
            .and_then(|c| serde_json::from_str(&c).ok()),
        reaction_videos: row.try_get("reaction_videos")?,
        reaction_videos_pending: row.try_get("reaction_videos_pending")?,
        reaction_videos_failed: row.try_get("reaction_videos_failed")?,
    })
}

impl Db {
    /// Connects and applies the migrations of the backend. A missing SQLite file is created
    /// (mode 0600).
    pub async fn connect(url: &str) -> ServerResult<Db> {
        sqlx::any::install_default_drivers();
        let (url, backend) = normalise_url(url)?;
        if let (Backend::Sqlite, Some(path)) = (backend, sqlite_file(&url)) {
            if url.contains("mode=rwc") && !path.exists() {
                create_private(&path)?;
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // SQLite serialises writers anyway; a few readers are enough.
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(std::time::Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Erased rows (kept images included) are overwritten with zeros in the
                        // file, not just unlinked from the b-tree.
                        sqlx::query("PRAGMA secure_delete = ON")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| {
                ServerError::Database(format!("cannot open database {}: {e}", redact(&url)))
            })?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Db { pool, backend })
    }

    /// Connects to a database that must already exist (what `emolens keys` works on): a
    /// SQLite file that is not there is an error naming it, never a new empty database.
    pub async fn connect_existing(url: &str) -> ServerResult<Db> {
        let (normalised, backend) = normalise_url(url)?;
        if let (Backend::Sqlite, Some(path)) = (backend, sqlite_file(&normalised)) {
            if !path.exists() {
                let shown = std::path::absolute(&path).unwrap_or(path);
                return Err(ServerError::NotFound(format!(
                    "no database at {}: keys are stored in the server's database; pass --database-url (or EMOLENS_DATABASE_URL) with the path or postgres:// URL `emolens serve` uses, or start `emolens serve` once to create it there",
                    shown.display()
                )));
            }
        }
        Db::connect(url).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a transaction that writes. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`, waiting up to the busy timeout): a deferred transaction that reads first
    /// and writes later fails at once with "database is locked" when another connection (a
    /// job worker's progress write, another process) is writing, since waiting could deadlock.
    pub async fn begin_write(&self) -> ServerResult<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> ServerResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The id of a workspace, creating it when new.
    pub async fn ensure_workspace(&self, name: &str) -> ServerResult<i64> {
        let name = crate::workspace::clean_workspace_name(name)?;
        sqlx::query(
            "INSERT INTO workspaces (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&name)
        .bind(now())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT id FROM workspaces WHERE name = $1")
            .bind(&name)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    /// The workspace's name.
    pub async fn workspace_name(&self, id: i64) -> ServerResult<String> {
        let row = sqlx::query("SELECT name FROM workspaces WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(r.try_get("name")?),
            None => Err(ServerError::NotFound(format!(
                "workspace {id} does not exist"
            ))),
        }
    }

    /// Creates a campaign in the actor's workspace (and its audit entry, in one transaction).
    pub async fn create_campaign(
        &self,
        actor: &Actor,
        name: &str,
        description: &str,
        keep_images: bool,
        retention: Retention,
    ) -> ServerResult<Campaign> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO campaigns (workspace_id, name, description, keep_images, retention_days, retention_results, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {CAMPAIGN_COLUMNS}"
        ))
        .bind(actor.workspace_id)
        .bind(name)
        .bind(description)
        .bind(keep_images as i64)
        .bind(retention.days)
        .bind(retention.results as i64)
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        let c = campaign_from(&row)?;
        record(
            &mut tx,
            actor,
            "create",
            "campaign",
            Some(c.id),
            json!({ "keep_images": keep_images, "retention_days": retention.days, "retention_results": retention.results }),
        )
        .await?;
        tx.commit().await?;
        Ok(c)
    }

    /// The campaigns of a workspace.
    pub async fn list_campaigns(&self, workspace_id: i64) -> ServerResult<Vec<Campaign>> {
        let rows = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE workspace_id = $1 ORDER BY id"
        ))
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(campaign_from).collect::<Result<_, _>>()?)
    }

    /// The campaign if it is in the workspace, or a 404 naming the id (the same answer whether
    /// it does not exist or belongs to another workspace).
    pub async fn campaign(&self, workspace_id: i64, id: i64) -> ServerResult<Campaign> {
        let row = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1 AND workspace_id = $2"
        ))
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(campaign_from(&r)?),
            None => Err(ServerError::NotFound(format!(
                "campaign {id} does not exist; list campaigns with GET /v1/campaigns"
            ))),
        }
    }

    /// Adds an ad to a campaign of the actor's workspace (404 otherwise), with the length of
    /// its creative when known.
    pub async fn create_ad(
        &self,
        actor: &Actor,
        campaign_id: i64,
        name: &str,
        duration_s: Option<f64>,
    ) -> ServerResult<Ad> {
        self.campaign(actor.workspace_id, campaign_id).await?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO ads (campaign_id, name, created_at, duration_s) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(campaign_id)
        .bind(name)
        .bind(now())
        .bind(duration_s)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        record(
            &mut tx,
            actor,
            "create",
            "ad",
            Some(id),
            json!({ "campaign_id": campaign_id, "duration_s": duration_s }),
        )
        .await?;
        tx.commit().await?;
        self.ad(actor.workspace_id, id).await
    }

    /// The ads of a campaign; callers have checked the campaign is in the key's workspace.
    pub async fn list_ads(&self, campaign_id: i64) -> ServerResult<Vec<Ad>> {
        let rows = sqlx::query(&format!(
            "{AD_SELECT} WHERE a.campaign_id = $1 ORDER BY a.id"
        ))
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(ad_from).collect::<Result<_, _>>()?)
    }

    /// The ad if its campaign is in the workspace, or a 404 naming the id.
    pub async fn ad(&self, workspace_id: i64, id: i64) -> ServerResult<Ad> {
        let row = sqlx::query(&format!(
            "{AD_SELECT} JOIN campaigns c ON c.id = a.campaign_id WHERE a.id = $1 AND c.workspace_id = $2"
        ))
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(ad_from(&r)?),
            None => Err(ServerError::NotFound(format!(
                "ad {id} does not exist; list a campaign's ads with GET /v1/campaigns/{{id}}"
            ))),
        }
    }

    /// Stores a batch of uploads and their faces in one transaction: either all rows are
    /// written or none. An analysed photo whose content (SHA-256) the ad already has, from an
    /// earlier request or earlier in this one, is stored as a `duplicate` of the first, without
    /// faces or image. Returns where each photo went, in input order.
    /// `ad_id` must be an ad of the actor's workspace (checked by the caller).
    pub async fn insert_photos(
        &self,
        actor: &Actor,
        ad_id: i64,
        photos: &[NewPhoto],
    ) -> ServerResult<Vec<Stored>> {
        let mut tx = self.begin_write().await?;
        let mut out = Vec::with_capacity(photos.len());
        let t = now();
        for p in photos {
            let duplicate_of: Option<i64> = if p.error.is_none() {
                sqlx::query(
                    "SELECT id FROM photos WHERE ad_id = $1 AND sha256 = $2 AND status = 'ok' \
                     ORDER BY id LIMIT 1",
                )
                .bind(ad_id)
                .bind(&p.sha256)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("id"))
                .transpose()?
            } else {
                None
            };
            let status = match (&p.error, duplicate_of) {
                (Some(_), _) => "error",
                (None, Some(_)) => "duplicate",
                (None, None) => "ok",
            };
            let row = sqlx::query(
                "INSERT INTO photos (ad_id, file_name, sha256, status, error, width, height, image, created_at, duplicate_of) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(ad_id)
            .bind(&p.file_name)
            .bind(&p.sha256)
            .bind(status)
            .bind(p.error.clone())
            .bind(p.width as i64)
            .bind(p.height as i64)
            .bind(p.image.clone().filter(|_| duplicate_of.is_none()))
            .bind(t)
            .bind(duplicate_of)
            .fetch_one(&mut *tx)
            .await?;
            let photo_id: i64 = row.try_get("id")?;
            out.push(Stored {
                id: photo_id,
                duplicate_of,
            });
            if duplicate_of.is_some() {
                continue;
            }
            for f in &p.faces {
                let probs = serde_json::to_string(&f.probabilities)
                    .map_err(|e| ServerError::Internal(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO faces (photo_id, ad_id, x, y, w, h, top_class, top_probability, quality, uncertain, probabilities) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(photo_id)
                .bind(ad_id)
                .bind(f.x)
                .bind(f.y)
                .bind(f.w)
                .bind(f.h)
                .bind(&f.top_class)
                .bind(f.top_probability)
                .bind(f.quality)
                .bind(f.uncertain as i64)
                .bind(probs)
                .execute(&mut *tx)
                .await?;
            }
        }
        let count = |status: &str| {
            photos
                .iter()
                .zip(&out)
                .filter(|(p, s)| match status {
                    "error" => p.error.is_some(),
                    "duplicate" => p.error.is_none() && s.duplicate_of.is_some(),
                    _ => p.error.is_none() && s.duplicate_of.is_none(),
                })
                .count()
        };
        record(
            &mut tx,
            actor,
            "upload",
            "ad",
            Some(ad_id),
            json!({
                "photos": count("ok"),
                "failed": count("error"),
                "duplicates": count("duplicate"),
                "faces": photos.iter().zip(&out).filter(|(_, s)| s.duplicate_of.is_none()).map(|(p, _)| p.faces.len()).sum::<usize>(),
                "images_kept": photos.iter().zip(&out).filter(|(p, s)| p.image.is_some() && s.duplicate_of.is_none()).count(),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Every face of an ad, in upload order.
    pub async fn ad_faces(&self, ad_id: i64) -> ServerResult<Vec<StoredFace>> {
        let rows = sqlx::query(
            "SELECT f.id, f.photo_id, p.file_name, f.x, f.y, f.w, f.h, f.top_class, f.top_probability, \
             f.quality, f.uncertain, f.probabilities FROM faces f JOIN photos p ON p.id = f.photo_id \
             WHERE f.ad_id = $1 ORDER BY f.id",
        )
        .bind(ad_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let probs: String = r.try_get("probabilities")?;
                Ok(StoredFace {
                    id: r.try_get("id")?,
                    photo_id: r.try_get("photo_id")?,
                    file_name: r.try_get("file_name")?,
                    x: r.try_get("x")?,
                    y: r.try_get("y")?,
                    width: r.try_get("w")?,
                    height: r.try_get("h")?,
                    top_class: r.try_get("top_class")?,
                    top_probability: r.try_get("top_probability")?,
                    quality: r.try_get("quality")?,
                    uncertain: r.try_get::<i64, _>("uncertain")? != 0,
                    probabilities: serde_json::from_str(&probs).map_err(|e| {
                        ServerError::Database(format!(
                            "face {}: bad probabilities: {e}",
                            r.try_get::<i64, _>("id").unwrap_or(-1)
                        ))
                    })?,
                })
            })
            .collect::<Result<Vec<_>, ServerError>>()
    }

    /// Every upload of an ad (without image bytes).
    pub async fn ad_photos(&self, ad_id: i64) -> ServerResult<Vec<StoredPhoto>> {
        let rows = sqlx::query(
            "SELECT id, file_name, sha256, status, error, width, height, \
             CASE WHEN image IS NULL THEN 0 ELSE 1 END AS image_kept, created_at, duplicate_of \
             FROM photos WHERE ad_id = $1 ORDER BY id",
        )
        .bind(ad_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                Ok(StoredPhoto {
                    id: r.try_get("id")?,
                    file_name: r.try_get("file_name")?,
                    sha256: r.try_get("sha256")?,
                    status: r.try_get("status")?,
                    error: r.try_get("error")?,
                    width: r.try_get("width")?,
                    height: r.try_get("height")?,
                    image_kept: r.try_get::<i64, _>("image_kept")? != 0,
                    created_at: r.try_get("created_at")?,
                    duplicate_of: r.try_get("duplicate_of")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// The kept bytes of a photo of the workspace, or 404.
    pub async fn photo_image(&self, workspace_id: i64, id: i64) -> ServerResult<Vec<u8>> {
        let row = sqlx::query(
            "SELECT p.image FROM photos p JOIN ads a ON a.id = p.ad_id JOIN campaigns c ON c.id = a.campaign_id \
             WHERE p.id = $1 AND c.workspace_id = $2",
        )
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(&self.pool)
        .await?;
        match row
            .map(|r| r.try_get::<Option<Vec<u8>>, _>("image"))
            .transpose()?
        {
            Some(Some(bytes)) => Ok(bytes),
            Some(None) => Err(ServerError::NotFound(format!(
                "photo {id} was analysed but its image is not kept (its campaign does not keep images, or its retention period purged it)"
            ))),
            None => Err(ServerError::NotFound(format!("photo {id} does not exist"))),
        }
    }

    /// Stores a new API key's hash in a workspace with a role; returns its id.
    pub async fn insert_key(
        &self,
        workspace_id: i64,
        name: &str,
        role: Role,
        prefix: &str,
        key_hash: &str,
    ) -> ServerResult<i64> {
        let row = sqlx::query(
            "INSERT INTO api_keys (workspace_id, name, role, prefix, key_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(role.as_str())
        .bind(prefix)
        .bind(key_hash)
        .bind(now())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// The live key with this hash: who it is, its workspace and role.
    pub async fn key_principal(&self, key_hash: &str) -> ServerResult<Option<Principal>> {
        let row = sqlx::query(
            "SELECT k.id, k.name, k.role, k.workspace_id, w.name AS workspace FROM api_keys k \
             JOIN workspaces w ON w.id = k.workspace_id WHERE k.key_hash = $1 AND k.revoked = 0",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let role: String = r.try_get("role")?;
        Ok(Some(Principal {
            key_id: r.try_get("id")?,
            key_name: r.try_get("name")?,
            workspace_id: r.try_get("workspace_id")?,
            workspace: r.try_get("workspace")?,
            role: Role::parse(&role).map_err(|_| {
                ServerError::Database(format!("api key has an unknown role '{role}'"))
            })?,
        }))
    }

    /// The keys of one workspace, or of all (None, for the command line).
    pub async fn list_keys(&self, workspace_id: Option<i64>) -> ServerResult<Vec<ApiKeyInfo>> {
        let rows = sqlx::query(
            "SELECT k.id, k.name, w.name AS workspace, k.role, k.prefix, k.created_at, k.revoked \
             FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id \
             WHERE $1 < 0 OR k.workspace_id = $1 ORDER BY k.id",
        )
        .bind(workspace_id.unwrap_or(-1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let role: String = r.try_get("role")?;
                Ok(ApiKeyInfo {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    workspace: r.try_get("workspace")?,
                    role: Role::parse(&role)?,
                    prefix: r.try_get("prefix")?,
                    created_at: r.try_get("created_at")?,
                    revoked: r.try_get::<i64, _>("revoked")? != 0,
                })
            })
            .collect::<ServerResult<Vec<_>>>()
    }

    /// Revokes a key of the workspace (any workspace with None); false when there is no such key
    /// there.
    pub async fn revoke_key(&self, workspace_id: Option<i64>, id: i64) -> ServerResult<bool> {
        let r = sqlx::query(
            "UPDATE api_keys SET revoked = 1 WHERE id = $1 AND ($2 < 0 OR workspace_id = $2)",
        )
        .bind(id)
        .bind(workspace_id.unwrap_or(-1))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }
}

/// Hides a password in a database URL for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalise() {
        assert_eq!(normalise_url("x.db").unwrap().0, "sqlite://x.db?mode=rwc");
        assert_eq!(
            normalise_url("sqlite://x.db?mode=ro").unwrap().0,
            "sqlite://x.db?mode=ro"
        );
        assert_eq!(
            normalise_url("postgres://u@h/d").unwrap().1,
            Backend::Postgres
        );
        assert!(normalise_url("mysql://h/d").is_err());
        assert_eq!(redact("postgres://u:secret@h/d"), "postgres://u:***@h/d");
    }
}
