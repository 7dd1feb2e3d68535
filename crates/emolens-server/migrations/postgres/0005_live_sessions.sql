-- Live viewing sessions (issue 16): a team creates a link for an ad; a viewer opens it in a
-- browser, reads what is measured, consents, and watches the ad while the page sends webcam
-- frames tagged with the ad's playback time. Each consented viewing is a row of video_jobs with
-- source 'live' (state 'live' while frames may arrive, then 'done'), so its per-second rows
-- (video_viewers, viewer_seconds) join every ad timeline, export and erasure as a reaction
-- video's do. A link's token and a session's secret are stored as SHA-256 hashes only.
CREATE TABLE live_links (
    id BIGSERIAL PRIMARY KEY,
    ad_id BIGINT NOT NULL REFERENCES ads(id) ON DELETE CASCADE,
    token_sha256 TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    max_viewers BIGINT NOT NULL,
    viewers BIGINT NOT NULL DEFAULT 0,
    fps DOUBLE PRECISION NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX live_links_ad ON live_links(ad_id);

ALTER TABLE video_jobs ADD COLUMN source TEXT NOT NULL DEFAULT 'upload';
ALTER TABLE video_jobs ADD COLUMN live_link_id BIGINT;
ALTER TABLE video_jobs ADD COLUMN live_secret_sha256 TEXT;
CREATE INDEX video_jobs_live_secret ON video_jobs(live_secret_sha256);

-- One row per frame a live session sent: the ad time it was taken at and the viewer's face
-- (the largest one found; NULL when none), as JSON of box, probabilities and quality. The frame
-- itself only when the campaign keeps images.
CREATE TABLE live_frames (
    job_id BIGINT NOT NULL REFERENCES video_jobs(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    ad_time_s DOUBLE PRECISION NOT NULL,
    received_at BIGINT NOT NULL,
    faces BIGINT NOT NULL,
    face TEXT,
    image BYTEA,
    PRIMARY KEY (job_id, seq)
);
