//! API keys: created by `emolens keys create` or an admin's `POST /v1/keys`, stored as SHA-256
//! hashes, sent as `Authorization: Bearer <key>`. Each key belongs to a workspace with a role;
//! the middleware puts the key's [`Principal`] in the request for the handlers.

use crate::db::Db;
use crate::error::{ServerError, ServerResult};
use crate::workspace::{Principal, Role, DEFAULT_WORKSPACE};
use crate::SharedState;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use emolens_core::fingerprint::sha256_hex;

/// Prefix of every key, so a leaked key is recognisable (e.g. by secret scanners).
pub const KEY_PREFIX: &str = "emk_";

/// A newly created key; `key` is shown once and never stored.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NewKey {
    pub id: i64,
    pub name: String,
    pub workspace: String,
    pub role: Role,
    pub key: String,
}

/// Creates an admin key of the default workspace (what every key was before workspaces).
pub async fn create_key(db: &Db, name: &str) -> ServerResult<NewKey> {
    create_key_in(db, DEFAULT_WORKSPACE, name, Role::Admin).await
}

/// Creates a key with `role` in the workspace named `workspace` (created when new), with 256
/// bits of OS randomness, and stores its hash.
pub async fn create_key_in(
    db: &Db,
    workspace: &str,
    name: &str,
    role: Role,
) -> ServerResult<NewKey> {
    let workspace_id = db.ensure_workspace(workspace).await?;
    let workspace = db.workspace_name(workspace_id).await?;
    create_key_for(db, workspace_id, &workspace, name, role).await
}

/// Creates a key in the workspace with this id (named `workspace`).
pub async fn create_key_for(
    db: &Db,
    workspace_id: i64,
    workspace: &str,
    name: &str,
    role: Role,
) -> ServerResult<NewKey> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw)
        .map_err(|e| ServerError::Internal(format!("no OS randomness for a key: {e}")))?;
    let key = format!("{KEY_PREFIX}{}", hex_lower(&raw));
    let id = db
        .insert_key(
            workspace_id,
            name,
            role,
            &key[..KEY_PREFIX.len() + 8],
            &sha256_hex(key.as_bytes()),
        )
        .await?;
    Ok(NewKey {
        id,
        name: name.to_string(),
        workspace: workspace.to_string(),
        role,
        key,
    })
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The bearer token of a request, if any.
pub fn bearer(req: &Request) -> Option<String> {
    let v = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Checks the request's key: 401 naming what is wrong when missing, malformed or unknown;
/// otherwise who the key is.
pub async fn check(state: &SharedState, token: Option<String>) -> ServerResult<Principal> {
    let Some(token) = token else {
        return Err(ServerError::Unauthorized(
            "missing API key: send `Authorization: Bearer <key>` (create one with `emolens keys create`)".into(),
        ));
    };
    let principal = if token.starts_with(KEY_PREFIX) {
        state
            .db
            .key_principal(&sha256_hex(token.as_bytes()))
            .await?
    } else {
        None
    };
    principal.ok_or_else(|| {
        ServerError::Unauthorized(
            "invalid or revoked API key; create one with `emolens keys create`".into(),
        )
    })
}

/// Middleware: campaign data always needs a key; the handlers get its [`Principal`] (workspace
/// and role) as a request extension.
pub async fn require_key(
    State(state): State<SharedState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ServerError> {
    // Admission ([`crate::limits::admit`]) has already looked a valid key up.
    if req.extensions().get::<Principal>().is_none() {
        let principal = check(&state, bearer(&req)).await?;
        req.extensions_mut().insert(principal);
    }
    Ok(next.run(req).await)
}

/// Middleware: inference endpoints need a key unless the server runs with the demo open. They
/// read no workspace data (nothing of theirs is stored), so any live key of any role will do.
pub async fn require_key_unless_open(
    State(state): State<SharedState>,
    req: Request,
    next: Next,
) -> Result<Response, ServerError> {
    if !state.config.open_demo && req.extensions().get::<Principal>().is_none() {
        check(&state, bearer(&req)).await?;
    }
    Ok(next.run(req).await)
}
