-- emolens service schema (SQLite). Booleans and timestamps are BIGINT (0/1, unix seconds) so the
-- same queries read them on SQLite and PostgreSQL.
CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    keep_images BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE ads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ads_campaign ON ads(campaign_id);

CREATE TABLE photos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ad_id BIGINT NOT NULL REFERENCES ads(id) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    width BIGINT NOT NULL DEFAULT 0,
    height BIGINT NOT NULL DEFAULT 0,
    image BLOB,
    created_at BIGINT NOT NULL
);
CREATE INDEX photos_ad ON photos(ad_id);

CREATE TABLE faces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    photo_id BIGINT NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    ad_id BIGINT NOT NULL REFERENCES ads(id) ON DELETE CASCADE,
    x DOUBLE PRECISION NOT NULL,
    y DOUBLE PRECISION NOT NULL,
    w DOUBLE PRECISION NOT NULL,
    h DOUBLE PRECISION NOT NULL,
    top_class TEXT NOT NULL,
    top_probability DOUBLE PRECISION NOT NULL,
    quality DOUBLE PRECISION NOT NULL,
    uncertain BIGINT NOT NULL,
    probabilities TEXT NOT NULL
);
CREATE INDEX faces_ad ON faces(ad_id);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked BIGINT NOT NULL DEFAULT 0
);
