//! One reaction video end to end: decode and sample frames (on their own thread), find and
//! classify faces in batches of frames (the photo analyzer), track viewers, and build the
//! per-viewer, per-second timelines.
//!
//! ```text
//! decode thread: packets -> frames -> samples at --fps -> RGB ──bounded channel──┐
//! caller's thread: batch of frames -> detect (rayon) -> classify (one call) -> track -> timeline
//! ```
//!
//! At most `2 * frames_per_batch + CHANNEL_FRAMES` frames are alive at once, whatever the
//! video's length; the per-frame results kept are boxes and probabilities only.

use crate::decode::{DecodeEnd, DecodeLimits, FrameSampler, SampledFrame, Stopped, VideoInfo};
use crate::error::VideoError;
use crate::sheet::ContactSheet;
use crate::timeline::{viewer_timelines, ViewerTimeline};
use crate::track::{appearance, Observation, Tracker, TrackerSettings};
use emolens_faces::{Analyzer, FaceResult, FacesError, PreparedBatch};
use image::DynamicImage;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

/// Sampled frames waiting between the decoding thread and the analysis.
const CHANNEL_FRAMES: usize = 4;

/// Settings of a video analysis.
#[derive(Debug, Clone)]
pub struct VideoOptions {
    /// Frames sampled per second of video time.
    pub fps: f64,
    /// Frames detected together and classified in one model call.
    pub frames_per_batch: usize,
    pub limits: DecodeLimits,
    pub tracker: TrackerSettings,
    /// Tiles of the contact sheet (0: no sheet is kept).
    pub sheet_tiles: usize,
    /// Set to true from another thread to stop the analysis after the batch in progress: it then
    /// returns [`VideoError::Cancelled`] (the service's jobs use it when their process shuts
    /// down or their job is erased).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            fps: 5.0,
            frames_per_batch: 8,
            limits: DecodeLimits::default(),
            tracker: TrackerSettings::default(),
            sheet_tiles: 0,
            cancel: None,
        }
    }
}

impl VideoOptions {
    /// The options every front end (the CLI, the Python package, the service's jobs) starts
    /// from: `fps` frames sampled a second, `frames_per_batch` analysed together, only the first
    /// `max_seconds` of video; the rest as [`VideoOptions::default`] (no contact sheet, no
    /// cancel flag, the default tracker).
    pub fn new(fps: f64, frames_per_batch: usize, max_seconds: f64) -> Self {
        VideoOptions {
            fps,
            frames_per_batch,
            limits: DecodeLimits {
                max_seconds,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// A viewer unseen for longer than `seconds` ends ([`TrackerSettings::max_gap_s`]).
    pub fn with_track_gap(mut self, seconds: f64) -> Self {
        self.tracker.max_gap_s = seconds;
        self
    }

    /// Keeps a contact sheet of `tiles` tiles (0: none).
    pub fn with_sheet_tiles(mut self, tiles: usize) -> Self {
        self.sheet_tiles = tiles;
        self
    }

    /// Stops the analysis when `cancel` is set ([`VideoOptions::cancel`]).
    pub fn with_cancel(mut self, cancel: Arc<AtomicBool>) -> Self {
        self.cancel = Some(cancel);
        self
    }
}

/// Where an analysis stands, for progress bars and job records.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Video time reached, seconds.
    pub time_s: f64,
    /// The announced duration (seconds), when known.
    pub duration_s: Option<f64>,
    pub frames: usize,
    pub faces: usize,
    pub viewers: u32,
}

/// One face in one frame, with the viewer it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedFace {
    pub viewer: u32,
    #[serde(flatten)]
    pub face: FaceResult,
}

/// One sampled frame's faces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameResult {
    pub index: usize,
    /// Presentation time, seconds after the first frame.
    pub time_s: f64,
    pub faces: Vec<TrackedFace>,
    /// Set when this frame could not be analysed (the video goes on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything found in one video.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VideoResult {
    pub source: String,
    pub info: VideoInfo,
    /// The sampling rate used, frames per second.
    pub sample_fps: f64,
    /// `true` when the whole video was analysed; otherwise `stopped` says where and why not.
    pub complete: bool,
    pub stopped: Option<Stopped>,
    pub decode: DecodeEnd,
    /// Seconds of video time covered by the timelines (last second + 1).
    pub seconds: u32,
    pub viewers: Vec<ViewerTimeline>,
    pub frames: Vec<FrameResult>,
    pub notes: Vec<String>,
    /// The contact sheet, when asked for (not serialised).
    #[serde(skip)]
    pub sheet: Option<image::RgbImage>,
}

impl VideoResult {
    /// The JSON object `emolens analyze --json` writes for this video (and the Python package
    /// returns): every serialised field plus `"kind": "video"`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_else(|e| {
            serde_json::json!({"source": self.source, "error": format!("cannot serialise: {e}")})
        });
        if let Some(o) = v.as_object_mut() {
            o.insert("kind".into(), "video".into());
        }
        v
    }
}

impl VideoError {
    /// The JSON object `emolens analyze --json` writes for a video that could not be analysed.
    pub fn to_json(&self, source: &str) -> serde_json::Value {
        serde_json::json!({
            "source": source,
            "kind": "video",
            "error": self.to_string(),
            "status": self.kind().report_status(),
        })
    }
}

/// Frames on their way through detection and classification.
#[derive(Default)]
struct Batch {
    /// (index, time) of each frame.
    times: Vec<(usize, f64)>,
    /// Each frame's name (source and time) and picture, as the analyzer takes them.
    images: Vec<(String, DynamicImage)>,
}

impl Batch {
    fn push(&mut self, f: SampledFrame, source: &str) {
        self.times.push((f.index, f.time_s));
        self.images.push((
            format!("{source} at {:.2} s", f.time_s),
            DynamicImage::ImageRgb8(f.image),
        ));
    }
}

enum Msg {
    Info(VideoInfo),
    Frame(SampledFrame),
    End(Result<DecodeEnd, VideoError>),
    Failed(VideoError),
}

/// Analyses the video at `path`: `progress` is called after each batch of frames.
pub fn analyze_video(
    path: &Path,
    analyzer: &Analyzer,
    opts: &VideoOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<VideoResult, VideoError> {
    if opts.frames_per_batch == 0 {
        return Err(VideoError::Config(
            "frames per batch must be at least 1".into(),
        ));
    }
    opts.tracker.validate().map_err(VideoError::Config)?;
    let source = path.display().to_string();
    let (tx, rx) = mpsc::sync_channel::<Msg>(CHANNEL_FRAMES);
    std::thread::scope(|scope| {
        // Owned by this closure: dropped on any early return, which ends a decoding thread
        // waiting to send (the scope then joins it instead of waiting forever).
        let rx = rx;
        let (fps, limits) = (opts.fps, opts.limits);
        scope.spawn(move || decode_thread(path, fps, limits, tx));
        let info = match rx.recv() {
            Ok(Msg::Info(i)) => i,
            Ok(Msg::Failed(e)) => return Err(e),
            _ => {
                return Err(VideoError::Corrupt {
                    source_name: source.clone(),
                    detail: "the decoder stopped before reading the header".into(),
                })
            }
        };
        let mut run = Run {
            analyzer,
            source: &source,
            tracker: Tracker::new(opts.tracker),
            frames: Vec::new(),
            faces: 0,
            sheet: (opts.sheet_tiles > 0)
                .then(|| ContactSheet::new(&info, opts.fps, opts.sheet_tiles)),
            notes: Vec::new(),
        };
        let mut end = None;
        let mut in_flight: Option<(Batch, PreparedBatch)> = None;
        loop {
            // Collect the next batch of frames; decoding goes on meanwhile on its own thread.
            let mut next = Batch::default();
            while end.is_none() && next.images.len() < opts.frames_per_batch {
                match rx.recv() {
                    Ok(Msg::Frame(f)) => next.push(f, &source),
                    Ok(Msg::End(r)) => end = Some(r),
                    Ok(Msg::Failed(e)) => end = Some(Err(e)),
                    Ok(Msg::Info(_)) => {}
                    Err(_) => {
                        end = Some(Err(VideoError::Corrupt {
                            source_name: source.clone(),
                            detail: "the decoding thread ended without a result".into(),
                        }))
                    }
                }
            }
            if next.images.is_empty() && in_flight.is_none() {
                break;
            }
            if opts
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return Err(VideoError::Cancelled {
                    source_name: source.clone(),
                    at_s: run.progress(&info).time_s,
                });
            }
            // The previous batch is classified while this one is detected.
            let (done, batch) = match in_flight.take() {
                Some((done, batch)) => (Some(done), Some(batch)),
                None => (None, None),
            };
            let (classified, prepared) = analyzer.classify_while(batch, || {
                (!next.images.is_empty()).then(|| analyzer.prepare_images(&next.images))
            });
            if let (Some(done), Some(results)) = (done, classified) {
                run.take(done, results)?;
                progress(&run.progress(&info));
            }
            in_flight = prepared.map(|p| (next, p));
        }
        let end = end.unwrap_or_else(|| {
            Err(VideoError::Corrupt {
                source_name: source.clone(),
                detail: "decoding ended without a result".into(),
            })
        })?;
        Ok(run.finish(info, opts.fps, end))
    })
}

struct Run<'a> {
    analyzer: &'a Analyzer,
    source: &'a str,
    tracker: Tracker,
    frames: Vec<FrameResult>,
    faces: usize,
    sheet: Option<ContactSheet>,
    notes: Vec<String>,
}

impl Run<'_> {
    fn progress(&self, info: &VideoInfo) -> Progress {
        Progress {
            time_s: self.frames.last().map_or(0.0, |f| f.time_s),
            duration_s: info.duration_s,
            frames: self.frames.len(),
            faces: self.faces,
            viewers: self.tracker.viewers(),
        }
    }

    /// Tracks the classified faces of a batch of frames, in time order.
    fn take(
        &mut self,
        batch: Batch,
        results: Vec<Result<emolens_faces::PhotoResult, FacesError>>,
    ) -> Result<(), VideoError> {
        let mut results = results.into_iter();
        for ((index, time_s), (_, image)) in batch.times.into_iter().zip(&batch.images) {
            let r = results.next().unwrap_or_else(|| {
                Err(FacesError::Internal {
                    source_name: self.source.to_string(),
                    detail: "no result came back for a frame".into(),
                })
            });
            let photo = match r {
                Ok(p) => p,
                Err(e @ FacesError::Classifier(_)) | Err(e @ FacesError::Config(_)) => {
                    return Err(VideoError::Faces {
                        source_name: self.source.to_string(),
                        error: e,
                    })
                }
                Err(e) => {
                    tracing::warn!(source = self.source, time_s, "{e}");
                    self.frames.push(FrameResult {
                        index,
                        time_s,
                        faces: Vec::new(),
                        error: Some(e.to_string()),
                    });
                    continue;
                }
            };
            let obs: Vec<Observation> = photo
                .faces
                .iter()
                .map(|f| Observation {
                    bbox: f.bbox,
                    appearance: appearance(image, &f.crop),
                })
                .collect();
            let ids = self.tracker.update(time_s, &obs);
            let faces: Vec<TrackedFace> = ids
                .into_iter()
                .zip(photo.faces)
                .map(|(viewer, face)| TrackedFace { viewer, face })
                .collect();
            self.faces += faces.len();
            let result = FrameResult {
                index,
                time_s,
                faces,
                error: None,
            };
            if let Some(sheet) = &mut self.sheet {
                sheet.offer(image, &result);
            }
            self.frames.push(result);
        }
        Ok(())
    }

    fn finish(mut self, info: VideoInfo, fps: f64, decode: DecodeEnd) -> VideoResult {
        let classes = self.analyzer.classes().to_vec();
        let viewers = viewer_timelines(&self.frames, &classes);
        if viewers.is_empty() {
            self.notes.push(format!(
                "no face found in {} sampled frames",
                self.frames.len()
            ));
        }
        if decode.bad_packets > 0 {
            self.notes.push(format!(
                "{} damaged packet(s) skipped while decoding",
                decode.bad_packets
            ));
        }
        if decode.out_of_order_frames > 0 {
            self.notes.push(format!(
                "{} frame(s) with timestamps going backwards were dropped",
                decode.out_of_order_frames
            ));
        }
        let seconds = self
            .frames
            .last()
            .map_or(0, |f| f.time_s.max(0.0).floor() as u32 + 1);
        VideoResult {
            source: self.source.to_string(),
            info,
            sample_fps: fps,
            complete: decode.stopped.is_none(),
            stopped: decode.stopped.clone(),
            decode,
            seconds,
            viewers,
            frames: self.frames,
            notes: self.notes,
            sheet: self.sheet.map(|s| s.finish()),
        }
    }
}

/// Opens the video and sends its info, its sampled frames and how decoding ended.
fn decode_thread(path: &Path, fps: f64, limits: DecodeLimits, tx: mpsc::SyncSender<Msg>) {
    let mut sampler = match FrameSampler::open(path, fps, limits) {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Msg::Failed(e));
            return;
        }
    };
    if tx.send(Msg::Info(sampler.info().clone())).is_err() {
        return;
    }
    for frame in sampler.by_ref() {
        if tx.send(Msg::Frame(frame)).is_err() {
            // The analysis gave up (an error): stop decoding.
            return;
        }
    }
    let _ = tx.send(Msg::End(sampler.end()));
}
