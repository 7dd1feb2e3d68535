-- The same file uploaded again to the same ad (same SHA-256 as a photo analysed before) is kept
-- as a record with status 'duplicate' pointing at the first one, and has no faces of its own, so
-- it is never counted twice. Existing rows keep duplicate_of NULL.
ALTER TABLE photos ADD COLUMN duplicate_of BIGINT;
CREATE INDEX photos_ad_sha256 ON photos(ad_id, sha256);
