-- Reaction videos as background jobs, and per-ad emotion timelines (issue 16).
--
-- An ad holds its creative's metadata (duration, so results align to ad time) and, when asked,
-- the creative file itself. Uploading a reaction video to an ad queues a job here: the queue
-- lives in the database, so every `emolens serve` and `emolens worker` process sharing it takes
-- jobs from it, and a job survives a restart (a job left `running` by a dead process is taken
-- again once its lease, in database-clock milliseconds, has expired). The video itself waits in
-- `job_video_chunks` until analysed and is deleted then, unless the campaign keeps images. The
-- results are stored per tracked viewer and per second of ad time.
ALTER TABLE ads ADD COLUMN duration_s DOUBLE PRECISION;
ALTER TABLE ads ADD COLUMN creative TEXT;

CREATE TABLE ad_creatives (
    ad_id BIGINT PRIMARY KEY REFERENCES ads(id) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes BLOB NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE video_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ad_id BIGINT NOT NULL REFERENCES ads(id) ON DELETE CASCADE,
    state TEXT NOT NULL DEFAULT 'queued',
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    fps DOUBLE PRECISION NOT NULL,
    ad_start_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    video_info TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    claim_token TEXT,
    worker TEXT,
    lease_until BIGINT,
    frames_done BIGINT NOT NULL DEFAULT 0,
    seconds_done DOUBLE PRECISION NOT NULL DEFAULT 0,
    seconds_total DOUBLE PRECISION,
    ad_first_s DOUBLE PRECISION,
    ad_last_s DOUBLE PRECISION,
    error TEXT,
    error_code TEXT,
    error_status BIGINT,
    result TEXT,
    video_kept BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX video_jobs_ad ON video_jobs(ad_id);
CREATE INDEX video_jobs_claim ON video_jobs(state, id);

CREATE TABLE job_video_chunks (
    job_id BIGINT NOT NULL REFERENCES video_jobs(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE video_viewers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id BIGINT NOT NULL REFERENCES video_jobs(id) ON DELETE CASCADE,
    ad_id BIGINT NOT NULL REFERENCES ads(id) ON DELETE CASCADE,
    viewer BIGINT NOT NULL,
    first_s DOUBLE PRECISION NOT NULL,
    last_s DOUBLE PRECISION NOT NULL,
    frames_with_face BIGINT NOT NULL,
    valence DOUBLE PRECISION,
    top_emotion TEXT,
    mean_probabilities TEXT NOT NULL
);
CREATE INDEX video_viewers_job ON video_viewers(job_id);
CREATE INDEX video_viewers_ad ON video_viewers(ad_id);

CREATE TABLE viewer_seconds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    viewer_id BIGINT NOT NULL REFERENCES video_viewers(id) ON DELETE CASCADE,
    job_id BIGINT NOT NULL REFERENCES video_jobs(id) ON DELETE CASCADE,
    ad_id BIGINT NOT NULL REFERENCES ads(id) ON DELETE CASCADE,
    ad_second BIGINT NOT NULL,
    frames BIGINT NOT NULL,
    frames_with_face BIGINT NOT NULL,
    classified_faces BIGINT NOT NULL,
    uncertain_faces BIGINT NOT NULL,
    valence DOUBLE PRECISION,
    top_emotion TEXT,
    probabilities TEXT
);
CREATE INDEX viewer_seconds_ad ON viewer_seconds(ad_id, ad_second);
CREATE INDEX viewer_seconds_job ON viewer_seconds(job_id);
CREATE INDEX viewer_seconds_viewer ON viewer_seconds(viewer_id);
