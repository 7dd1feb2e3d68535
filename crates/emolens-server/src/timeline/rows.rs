//! The stored viewer-seconds a timeline is computed from.

use super::{Coverage, ViewerSecondRow};
use crate::db::Db;
use crate::error::{ServerError, ServerResult};
use sqlx::Row;

impl Db {
    /// Every viewer-second of an ad's analysed reaction videos and live sessions (those still
    /// being watched included), in time order.
    pub async fn ad_viewer_seconds(&self, ad_id: i64) -> ServerResult<Vec<ViewerSecondRow>> {
        let rows = sqlx::query(
            "SELECT s.job_id, j.file_name, v.viewer, s.viewer_id, s.ad_second, s.frames, s.frames_with_face, \
             s.classified_faces, s.uncertain_faces, s.valence, s.top_emotion, s.probabilities \
             FROM viewer_seconds s JOIN video_viewers v ON v.id = s.viewer_id \
             JOIN video_jobs j ON j.id = s.job_id \
             WHERE s.ad_id = $1 AND j.state IN ('done', 'live') ORDER BY s.ad_second, s.job_id, v.viewer",
        )
        .bind(ad_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let probs: Option<String> = r.try_get("probabilities")?;
                Ok(ViewerSecondRow {
                    job_id: r.try_get("job_id")?,
                    file_name: r.try_get("file_name")?,
                    viewer: r.try_get("viewer")?,
                    viewer_id: r.try_get("viewer_id")?,
                    second: r.try_get("ad_second")?,
                    frames: r.try_get("frames")?,
                    frames_with_face: r.try_get("frames_with_face")?,
                    classified_faces: r.try_get("classified_faces")?,
                    uncertain_faces: r.try_get("uncertain_faces")?,
                    valence: r.try_get("valence")?,
                    top_emotion: r.try_get("top_emotion")?,
                    probabilities: probs.and_then(|p| serde_json::from_str(&p).ok()),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(ServerError::from)
    }

    /// The ad-time spans of an ad's analysed reaction videos and live sessions.
    pub async fn ad_coverage(&self, ad_id: i64) -> ServerResult<Vec<Coverage>> {
        let rows = sqlx::query(
            "SELECT ad_first_s, ad_last_s FROM video_jobs WHERE ad_id = $1 AND state IN ('done', 'live') ORDER BY id",
        )
        .bind(ad_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let (a, b): (Option<f64>, Option<f64>) =
                (r.try_get("ad_first_s")?, r.try_get("ad_last_s")?);
            if let (Some(first_s), Some(last_s)) = (a, b) {
                out.push(Coverage { first_s, last_s });
            }
        }
        Ok(out)
    }
}
