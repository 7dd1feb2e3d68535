//! API keys: created by `emolens keys create`, stored as SHA-256 hashes, sent as
//! `Authorization: Bearer <key>`.

use crate::db::Db;
use crate::error::{ServerError, ServerResult};
use crate::SharedState;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use emolens_core::fingerprint::sha256_hex;

/// Prefix of every key, so a leaked key is recognisable (e.g. by secret scanners).
pub const KEY_PREFIX: &str = "emk_";

/// A newly created key; `key` is shown once and never stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewKey {
    pub id: i64,
    pub name: String,
    pub key: String,
}

/// Creates a key with 256 bits of OS randomness and stores its hash.
pub async fn create_key(db: &Db, name: &str) -> ServerResult<NewKey> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw)
        .map_err(|e| ServerError::Internal(format!("no OS randomness for a key: {e}")))?;
    let key = format!("{KEY_PREFIX}{}", hex_lower(&raw));
    let id = db
        .insert_key(
            name,
            &key[..KEY_PREFIX.len() + 8],
            &sha256_hex(key.as_bytes()),
        )
        .await?;
    Ok(NewKey {
        id,
        name: name.to_string(),
        key,
    })
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The bearer token of a request, if any.
fn bearer(req: &Request) -> Option<String> {
    let v = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Checks the request's key: 401 naming what is wrong when missing, malformed or unknown.
pub async fn check(state: &SharedState, token: Option<String>) -> ServerResult<()> {
    let Some(token) = token else {
        return Err(ServerError::Unauthorized(
            "missing API key: send `Authorization: Bearer <key>` (create one with `emolens keys create`)".into(),
        ));
    };
    if !token.starts_with(KEY_PREFIX)
        || !state.db.key_is_valid(&sha256_hex(token.as_bytes())).await?
    {
        return Err(ServerError::Unauthorized(
            "invalid or revoked API key; create one with `emolens keys create`".into(),
        ));
    }
    Ok(())
}

/// Middleware: campaign data always needs a key.
pub async fn require_key(
    State(state): State<SharedState>,
    req: Request,
    next: Next,
) -> Result<Response, ServerError> {
    check(&state, bearer(&req)).await?;
    Ok(next.run(req).await)
}

/// Middleware: inference endpoints need a key unless the server runs with the demo open.
pub async fn require_key_unless_open(
    State(state): State<SharedState>,
    req: Request,
    next: Next,
) -> Result<Response, ServerError> {
    if !state.config.open_demo {
        check(&state, bearer(&req)).await?;
    }
    Ok(next.run(req).await)
}
