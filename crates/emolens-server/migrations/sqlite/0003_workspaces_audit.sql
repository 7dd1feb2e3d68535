-- Workspaces and roles, erasure and retention (issue 17).
--
-- Every campaign belongs to a workspace; every API key belongs to a workspace with a role
-- (admin, analyst, viewer). Existing campaigns and keys move into a workspace named 'default';
-- existing keys become its admins, so nothing changes for current users.
--
-- SQLite cannot add a column with a REFERENCES clause and a non-NULL default while foreign keys
-- are on (sqlx turns them on), and rebuilding `campaigns` would cascade-delete its ads; so the
-- new columns carry no foreign key here and the service always sets them (PostgreSQL has the
-- constraint).
CREATE TABLE workspaces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
INSERT INTO workspaces (name, created_at) VALUES ('default', CAST(strftime('%s', 'now') AS INTEGER));

ALTER TABLE campaigns ADD COLUMN workspace_id BIGINT NOT NULL DEFAULT 0;
UPDATE campaigns SET workspace_id = (SELECT id FROM workspaces WHERE name = 'default');
CREATE INDEX campaigns_workspace ON campaigns(workspace_id);
-- Days after upload when kept images (and, with retention_results, the photos' rows and faces)
-- are purged; NULL keeps them until erased.
ALTER TABLE campaigns ADD COLUMN retention_days BIGINT;
ALTER TABLE campaigns ADD COLUMN retention_results BIGINT NOT NULL DEFAULT 0;

ALTER TABLE api_keys ADD COLUMN workspace_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
UPDATE api_keys SET workspace_id = (SELECT id FROM workspaces WHERE name = 'default');
CREATE INDEX api_keys_workspace ON api_keys(workspace_id);

-- Who created, exported and erased what, and when. Never image content or file names: ids,
-- kinds and counts only, so an erased photo leaves nothing personal here.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    workspace_id BIGINT NOT NULL,
    key_id BIGINT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id BIGINT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_workspace ON audit_log(workspace_id, id);

-- Erasure and retention find a photo's duplicates and old photos quickly.
CREATE INDEX photos_duplicate_of ON photos(duplicate_of);
CREATE INDEX faces_photo ON faces(photo_id);
