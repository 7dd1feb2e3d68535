//! `/v1/keys`: a workspace's admins list, create and revoke its keys (the web app's keys panel).
//! A key never sees or touches another workspace's keys (404).

use crate::auth::{create_key_for, NewKey};
use crate::campaigns::{json_body, path_id};
use crate::db::ApiKeyInfo;
use crate::error::{ServerError, ServerResult};
use crate::workspace::{Principal, Role};
use crate::SharedState;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Body of `POST /v1/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    /// A name to tell the key apart (e.g. who uses it).
    pub name: String,
    /// `admin`, `analyst` or `viewer`.
    pub role: String,
}

/// The answer of `GET /v1/keys`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    /// The workspace's name.
    pub workspace: String,
    /// The id of the key that asked.
    pub current_key_id: i64,
    pub keys: Vec<ApiKeyInfo>,
}

/// The answer of `DELETE /v1/keys/{id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Revoked {
    /// The revoked key's id.
    pub revoked: i64,
}

/// `GET /v1/keys` (admin): the workspace's keys (never the keys themselves).
#[utoipa::path(
    get,
    path = "/v1/keys",
    operation_id = "keys_list",
    tag = "admin",
    summary = "The workspace's API keys (admin): id, name, workspace, role, prefix, revoked; never the keys",
    responses(
        (status = 200, description = "{workspace, current_key_id, keys}", body = crate::keys::KeyList),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 403, description = "the key's role is too low (the message names the role needed)", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn list(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
) -> ServerResult<Json<KeyList>> {
    p.require(Role::Admin, "managing keys")?;
    let keys = state.db.list_keys(Some(p.workspace_id)).await?;
    Ok(Json(KeyList {
        workspace: p.workspace.clone(),
        current_key_id: p.key_id,
        keys,
    }))
}

/// `POST /v1/keys` (admin): a new key of the workspace; the key is in the answer once and only
/// its hash is stored.
#[utoipa::path(
    post,
    path = "/v1/keys",
    operation_id = "keys_create",
    tag = "admin",
    summary = "Create a key in the workspace (admin); the key is in this answer only",
    request_body = crate::keys::NewKeyBody,
    responses(
        (status = 201, description = "{id, name, workspace, role, key}", body = crate::auth::NewKey),
        (status = 400, description = "bad name or role", body = crate::error::ErrorBody),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 403, description = "the key's role is too low (the message names the role needed)", body = crate::error::ErrorBody),
        (status = 408, response = crate::error::RequestTimeout),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn create(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    body: Result<Json<NewKeyBody>, JsonRejection>,
) -> ServerResult<(StatusCode, Json<NewKey>)> {
    p.require(Role::Admin, "managing keys")?;
    let b = json_body(body)?;
    let name = b.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ServerError::BadRequest(
            "key name must be 1 to 200 characters".into(),
        ));
    }
    let role = Role::parse(&b.role)?;
    let k = create_key_for(&state.db, p.workspace_id, &p.workspace, name, role).await?;
    state
        .db
        .audit(
            &p.actor(),
            "create_key",
            "key",
            Some(k.id),
            json!({ "role": role }),
        )
        .await?;
    tracing::info!(id = k.id, workspace = %k.workspace, role = %role, by = p.key_id, "key created");
    Ok((StatusCode::CREATED, Json(k)))
}

/// `DELETE /v1/keys/{id}` (admin): revokes a key of the workspace at once. The workspace's last
/// live admin key cannot be revoked here (409), so the workspace is never locked out of its
/// keys; `emolens keys revoke` can.
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    operation_id = "keys_revoke",
    tag = "admin",
    summary = "Revoke a key of the workspace (admin); at once",
    params(("id" = i64, Path, description = "key id")),
    responses(
        (status = 200, description = "{revoked: id}", body = crate::keys::Revoked),
        (status = 401, description = "missing, invalid or revoked key", body = crate::error::ErrorBody),
        (status = 403, description = "the key's role is too low (the message names the role needed)", body = crate::error::ErrorBody),
        (status = 404, description = "unknown key, or one of another workspace", body = crate::error::ErrorBody),
        (status = 409, description = "the workspace's last admin key", body = crate::error::ErrorBody),
        (status = 429, response = crate::error::TooManyRequests),
    ),
    security(("api_key" = [])),
)]
pub async fn revoke(
    State(state): State<SharedState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<i64>, PathRejection>,
) -> ServerResult<Json<Revoked>> {
    p.require(Role::Admin, "managing keys")?;
    let id = path_id(id, "key")?;
    let keys = state.db.list_keys(Some(p.workspace_id)).await?;
    let Some(target) = keys.iter().find(|k| k.id == id) else {
        return Err(ServerError::NotFound(format!(
            "key {id} does not exist; list keys with GET /v1/keys"
        )));
    };
    let live_admins = keys
        .iter()
        .filter(|k| !k.revoked && k.role == Role::Admin)
        .count();
    if !target.revoked && target.role == Role::Admin && live_admins <= 1 {
        return Err(ServerError::Conflict(format!(
            "key {id} is the last admin key of workspace '{}': create another admin key first, so the workspace keeps one",
            p.workspace
        )));
    }
    state.db.revoke_key(Some(p.workspace_id), id).await?;
    state
        .db
        .audit(&p.actor(), "revoke_key", "key", Some(id), json!({}))
        .await?;
    Ok(Json(Revoked { revoked: id }))
}
