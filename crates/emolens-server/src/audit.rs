//! The audit log: who (key, workspace) created, uploaded, exported, erased or purged what, and
//! when. Entries hold ids, kinds and counts, never image content or file names, so erasing a
//! photo leaves nothing personal behind here. Written in the same transaction as the change it
//! records; read by admins with `GET /v1/audit`.

use crate::db::{now, Db};
use crate::error::ServerResult;
use crate::workspace::{Actor, Principal, Role};
use crate::SharedState;
use axum::extract::{Extension, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{AnyConnection, Row};

/// One entry of the log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// The key that acted; None for the command line and the retention task.
    pub key_id: Option<i64>,
    /// The key's name, `cli` or `retention`.
    pub actor: String,
    /// `create`, `upload`, `export`, `erase`, `purge`, `create_key` or `revoke_key`.
    pub action: String,
    /// `campaign`, `ad`, `photo` or `key`.
    pub target_type: String,
    pub target_id: Option<i64>,
    /// Counts and settings (never content).
    pub detail: Value,
}

/// Writes an entry on `conn` (inside the caller's transaction).
pub(crate) async fn record(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: &str,
    target_type: &str,
    target_id: Option<i64>,
    detail: Value,
) -> ServerResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, workspace_id, key_id, actor, action, target_type, target_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(now())
    .bind(actor.workspace_id)
    .bind(actor.key_id)
    .bind(&actor.name)
    .bind(action)
    .bind(target_type)
    .bind(target_id)
    .bind(detail.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

impl Db {
    /// Writes one entry on its own (for actions that change nothing else, like exports).
    pub async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target_type: &str,
        target_id: Option<i64>,
        detail: Value,
    ) -> ServerResult<()> {
        let mut conn = self.pool.acquire().await?;
        record(&mut conn, actor, action, target_type, target_id, detail).await
    }

    /// A workspace's entries, newest first.
    pub async fn audit_entries(
        &self,
        workspace_id: i64,
        limit: i64,
    ) -> ServerResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, key_id, actor, action, target_type, target_id, detail FROM audit_log \
             WHERE workspace_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(workspace_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    key_id: r.try_get("key_id")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target_type: r.try_get("target_type")?,
                    target_id: r.try_get("target_id")?,
                    detail: serde_json::from_str(&detail).unwrap_or(Value::String(detail)),
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }
}

/// The answer of `GET /v1/audit`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditLog {
    /// The workspace's name.
    pub workspace: String,
    /// Newest first.
    pub entries: Vec<AuditEntry>,
}

/// Query of `GET /v1/audit`.
#[derive(Debug, Deserialize, Default)]
pub struct AuditQuery {
    /// Most entries (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// `GET /v1/audit`: the workspace's audit log, newest first (admin).
#[utoipa::path(
    get,
    path = "/v1/audit",
    operation_id = "audit_list",
    tag = "admin",
    summary = "The workspace's audit log, newest first (admin): who (key id and name, `cli`, `retention`) created, uploaded, exported, erased or purged what, and when; ids and counts only, never image content or file names",
    params(("limit" = Option<i64>, Query, description = "most entries (default 100)")),
    responses(
        (status = 200, description = "{workspace, entries: [{id, at, key_id, actor, action, target_type, target_id, detail}]}", body = crate::audit::AuditLog),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 403, description = "the key's role is too low (the message names the role needed)", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn list(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<AuditQuery>,
) -> ServerResult<Json<AuditLog>> {
    p.require(Role::Admin, "reading the audit log")?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let entries = state.db.audit_entries(p.workspace_id, limit).await?;
    Ok(Json(AuditLog {
        workspace: p.workspace.clone(),
        entries,
    }))
}
