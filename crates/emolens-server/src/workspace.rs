//! Workspaces and roles: every campaign belongs to a workspace, every API key belongs to one with
//! a role. A key sees only its workspace's data; another workspace's ids answer 404, exactly like
//! ids that do not exist, so they do not leak.

use crate::error::{ServerError, ServerResult};
use serde::Serialize;

/// The workspace that databases created before workspaces existed were migrated into, and the
/// one `emolens keys create` uses when none is named.
pub const DEFAULT_WORKSPACE: &str = "default";

/// What a key may do, lowest first: each role can do everything the ones below it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads campaigns, ads, results, exports and kept images.
    Viewer,
    /// Reads and writes: creates campaigns and ads, uploads photos.
    Analyst,
    /// Everything analysts do, plus keys, erasure and the audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Analyst, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name; a 400 naming the roles there are otherwise.
    pub fn parse(s: &str) -> ServerResult<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "analyst" => Ok(Role::Analyst),
            "admin" => Ok(Role::Admin),
            other => Err(ServerError::BadRequest(format!(
                "unknown role '{other}': use admin (keys, erasure, audit log and everything analysts do), analyst (read and write) or viewer (read only)"
            ))),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a request acts as: the key, its workspace and its role.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    pub key_id: i64,
    pub key_name: String,
    pub workspace_id: i64,
    pub workspace: String,
    pub role: Role,
}

impl Principal {
    /// A 403 naming the role `what` needs when this key's role is lower.
    pub fn require(&self, needed: Role, what: &str) -> ServerResult<()> {
        if self.role >= needed {
            return Ok(());
        }
        Err(ServerError::Forbidden(format!(
            "{what} needs the {needed} role; this key ('{}') is {} {} of workspace '{}': ask an admin of the workspace for a key with the {needed} role",
            self.key_name,
            if self.role == Role::Admin { "an" } else { "a" },
            self.role,
            self.workspace
        )))
    }

    /// The actor recorded in the audit log for this key's actions.
    pub fn actor(&self) -> Actor {
        Actor {
            workspace_id: self.workspace_id,
            key_id: Some(self.key_id),
            name: self.key_name.clone(),
        }
    }
}

/// Who did something, for the audit log: a key, or the command line / the retention task
/// (`key_id` None, `name` saying which).
#[derive(Debug, Clone)]
pub struct Actor {
    pub workspace_id: i64,
    pub key_id: Option<i64>,
    pub name: String,
}

/// Checks a workspace name: 1 to 64 characters, letters, digits, `.`, `_` and `-`.
pub fn clean_workspace_name(name: &str) -> ServerResult<String> {
    let n = name.trim();
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(ServerError::BadRequest(format!(
            "workspace name '{n}' is not valid: use 1 to 64 letters, digits, '.', '_' or '-'"
        )));
    }
    Ok(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Viewer < Role::Analyst && Role::Analyst < Role::Admin);
        assert_eq!(Role::parse(" Admin ").unwrap(), Role::Admin);
        let e = Role::parse("owner").unwrap_err().to_string();
        assert!(e.contains("owner") && e.contains("viewer"), "{e}");
        let p = Principal {
            key_id: 1,
            key_name: "k".into(),
            workspace_id: 1,
            workspace: "w".into(),
            role: Role::Viewer,
        };
        assert!(p.require(Role::Viewer, "reading").is_ok());
        let e = p.require(Role::Admin, "erasing a photo").unwrap_err();
        assert!(matches!(e, ServerError::Forbidden(_)));
        assert!(e.to_string().contains("needs the admin role"), "{e}");
        assert!(clean_workspace_name("team-a.1").is_ok());
        assert!(clean_workspace_name("a b").is_err());
        assert!(clean_workspace_name("").is_err());
    }
}
