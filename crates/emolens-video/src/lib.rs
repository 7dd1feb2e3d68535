//! Reaction videos: the one place the workspace binds FFmpeg (`ffmpeg-next` on the system's
//! libavformat/libavcodec/libswscale).
//!
//! ```text
//! file --FrameSampler--> frames at --fps (nearest pts, rotated, RGB) --Analyzer--> faces
//!      --Tracker--> viewer ids --viewer_timelines--> per viewer, per second: means, valence
//! ```
//!
//! [`analyze_video`] is the entry point for the CLI and the service's reaction-video jobs: a
//! path in, the per-viewer-per-second timelines and per-frame detections out, with a progress
//! callback and a cancellation flag.
//! Damage after the first frame gives a partial result ([`VideoResult::stopped`]), never a
//! lost one.

pub mod analyze;
pub mod decode;
pub mod encode;
pub mod error;
pub mod inputs;
pub mod plot;
mod sheet;
pub mod synth;
pub mod timeline;
pub mod track;

pub use analyze::{analyze_video, FrameResult, Progress, TrackedFace, VideoOptions, VideoResult};
pub use decode::{
    probe, sniff_video, DecodeEnd, DecodeLimits, FrameSampler, SampledFrame, Stopped, VideoInfo,
};
pub use encode::{VideoCodec, VideoWriter, WriterSettings};
pub use error::VideoError;
pub use inputs::{collect_inputs, InputError};
pub use plot::write_timeline;
pub use timeline::{ViewerSecond, ViewerTimeline};
pub use track::{Tracker, TrackerSettings};

/// Video and sound-only extensions (the workspace's one list lives in `emolens_core::files`;
/// sound files go the video path so the answer is "audio only", not "not an image").
pub use emolens_core::files::{AUDIO_EXTENSIONS, VIDEO_EXTENSIONS};

/// True when `path` should be analysed as a video: a video or audio extension, or content that
/// looks like a video container.
pub fn is_video_path(path: &std::path::Path) -> bool {
    use emolens_core::files::{media_kind, MediaKind};
    if matches!(media_kind(path), Some(MediaKind::Video | MediaKind::Audio)) {
        return true;
    }
    use std::io::Read;
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    sniff_video(&head[..n])
}
