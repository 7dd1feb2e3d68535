//! Per-ad emotion timelines from reaction videos: across every viewer of an ad (each tracked
//! face of each analysed reaction video), per second of ad time, how many viewers showed a
//! face, their mean probabilities, valence with a 95 % interval where the sample allows one,
//! and the share of viewers smiling; the moments (peaks and dips of valence); and two ads
//! compared second by second. Computed from the stored rows on every request, like the photo
//! results, so an erasure shows at once.
//!
//! Each viewer counts once per second, whatever the number of frames sampled in it: a viewer's
//! value for a second is the mean over their classified faces in that second (as `emolens
//! analyze VIDEO` reports it), and the ad's second is the mean over viewers.
//!
//! This module holds the timeline's types; [`compute`] the statistics (per second, moments,
//! comparison), [`rows`] the stored viewer-seconds they start from, [`routes`] the HTTP handlers
//! and their CSV exports.

mod compute;
pub(crate) mod routes;
mod rows;

pub use compute::{ad_timeline, compare_timelines, find_moments, ComparedSecond, Side};
pub use routes::{
    compare, export_compare, export_timeline, get_timeline, TimelineQuery, TimelineResponse,
};

use crate::stats::Estimate;
use serde::Serialize;
use std::collections::BTreeMap;

/// A moment is the highest (lowest) valence within this many seconds either side.
pub const MOMENT_WINDOW_S: i64 = 2;
/// Default: a moment lies at least this far above (below) the ad's mean valence.
pub const DEFAULT_MOMENT_THRESHOLD: f64 = 0.1;
/// At most this many peaks and this many dips are reported (the largest first).
pub const MAX_MOMENTS_PER_KIND: usize = 5;
/// The emotion whose top place counts as smiling.
pub const SMILING: &str = "happy";

/// One viewer in one second of ad time, as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ViewerSecondRow {
    pub job_id: i64,
    /// The job's file name (exports only).
    #[serde(skip)]
    pub file_name: String,
    /// The tracked viewer within the job's video.
    pub viewer: i64,
    #[serde(skip)]
    pub viewer_id: i64,
    pub second: i64,
    pub frames: i64,
    pub frames_with_face: i64,
    pub classified_faces: i64,
    pub uncertain_faces: i64,
    pub valence: Option<f64>,
    pub top_emotion: Option<String>,
    pub probabilities: Option<BTreeMap<String, f64>>,
}

/// The ad-time span a done reaction video covers.
#[derive(Debug, Clone, Copy)]
pub struct Coverage {
    pub first_s: f64,
    pub last_s: f64,
}

/// One second of an ad's timeline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineSecond {
    /// Second of ad time (`second` <= t < `second + 1`).
    pub second: i64,
    /// Analysed reaction videos covering this second.
    pub videos: usize,
    /// Viewers whose face was found in this second.
    pub viewers_with_face: usize,
    /// Viewers whose face was classified in this second: the means are over them.
    pub viewers: usize,
    /// Mean over viewers of each emotion's probability (empty without viewers).
    pub mean_probabilities: BTreeMap<String, f64>,
    /// The emotion with the highest mean probability.
    pub top_emotion: Option<String>,
    /// Mean valence over viewers, with a 95 % interval from 10 varied viewers on.
    pub valence: Option<Estimate>,
    /// Share of viewers whose top emotion this second is happy, with its interval likewise.
    pub smiling_share: Option<Estimate>,
    /// `peak` or `dip` when this second is one of the ad's moments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moment: Option<&'static str>,
}

/// A peak or dip of valence.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Moment {
    /// `peak` or `dip`.
    pub kind: &'static str,
    pub second: i64,
    pub viewers: usize,
    pub valence: Estimate,
    /// This second's valence minus the ad's mean valence over its seconds.
    pub difference_from_mean: f64,
    /// True when the second's 95 % interval lies wholly above (peak) or below (dip) the ad's
    /// mean; false when it does not or when there is no interval (too few viewers).
    pub stands_out: bool,
}

/// An ad's timeline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdTimeline {
    /// The ad's length (seconds shown run from 0 to it), when set.
    pub duration_s: Option<f64>,
    /// Analysed reaction videos.
    pub videos: usize,
    /// Viewers tracked in them (a viewer who left the picture for longer than the tracker's gap
    /// and came back counts twice here, never twice in a second).
    pub viewers: usize,
    /// Mean of the seconds' valence (each second with viewers counts once): moments are
    /// measured from it.
    pub mean_valence: Option<f64>,
    pub seconds: Vec<TimelineSecond>,
    pub moments: Vec<Moment>,
    pub notes: Vec<String>,
}
