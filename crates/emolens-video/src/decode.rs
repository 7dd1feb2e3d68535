//! Opening a video with FFmpeg and streaming frames sampled at a fixed rate by presentation time.
//!
//! Sample `k` is due at `k / fps` seconds after the first frame. It is the decoded frame whose
//! timestamp is nearest that time (ties go to the earlier frame), so variable frame rates are
//! handled. A frame is never emitted twice: when frames are sparser than the sampling rate, the
//! sample times that would repeat a frame are skipped. Rotation metadata (the display matrix) is
//! applied, frames are converted to RGB with swscale, and only two decoded frames are held at a
//! time, so memory does not grow with the video's length.
//!
//! Damage after the first frame does not fail the video: decoding goes on past corrupt packets
//! and [`DecodeEnd::stopped`] says up to which second frames came and why they stopped.

use crate::error::VideoError;
use ffmpeg::format::Pixel;
use ffmpeg::media::Type as Media;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Once;

/// Corrupt packets in a row after which decoding gives up (the rest is reported missing).
const MAX_BAD_PACKETS_IN_A_ROW: usize = 500;

/// What the container says about the video, before decoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoInfo {
    /// FFmpeg's name of the container, e.g. `mov,mp4,m4a,3gp,3g2,mj2` or `matroska,webm`.
    pub container: String,
    /// The video codec, e.g. `h264`, `vp9`.
    pub codec: String,
    /// Size of the frames as shown (after rotation).
    pub width: u32,
    pub height: u32,
    /// Clockwise rotation applied to the coded frames to show them (0, 90, 180 or 270).
    pub rotation: u32,
    /// Duration announced by the container, seconds (`None` when it announces none).
    pub duration_s: Option<f64>,
    /// Average frame rate announced by the container (`None` when unknown).
    pub fps: Option<f64>,
    /// Number of frames announced by the container (`None` when unknown).
    pub frame_count: Option<u64>,
    /// Audio streams beside the video (ignored by the analysis).
    pub audio_streams: usize,
}

/// Bounds on what is decoded.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Frames larger than this many pixels are refused (default 8K UHD, 7680x4320).
    pub max_pixels: u64,
    /// Only the first this many seconds are sampled; the rest is reported as not analysed.
    pub max_seconds: f64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_pixels: 7680 * 4320,
            max_seconds: 2.0 * 3600.0,
        }
    }
}

/// One sampled frame.
#[derive(Debug, Clone)]
pub struct SampledFrame {
    /// Position among the sampled frames (0, 1, 2, ...).
    pub index: usize,
    /// The frame's presentation time, seconds after the first frame.
    pub time_s: f64,
    /// The sample time it was picked for (`index`-th multiple of the interval, or a later one
    /// when earlier sample times were skipped as repeats).
    pub target_s: f64,
    /// The picture, rotated upright, RGB.
    pub image: RgbImage,
}

/// Why the frames stopped before the end of the video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stopped {
    /// The last second reached (presentation time of the last decoded frame).
    pub at_s: f64,
    pub reason: String,
}

/// How decoding ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodeEnd {
    /// Frames decoded (all of them, not only the sampled ones).
    pub frames_decoded: u64,
    /// Frames sampled.
    pub frames_sampled: usize,
    /// Presentation time of the last decoded frame, seconds.
    pub last_time_s: f64,
    /// Packets that could not be read or decoded and were skipped.
    pub bad_packets: u64,
    /// Frames dropped because their timestamp went backwards.
    pub out_of_order_frames: u64,
    /// Set when the video was not decoded to its end.
    pub stopped: Option<Stopped>,
}

/// FFmpeg's own logging goes quiet: problems reach the caller as errors or [`Stopped`].
pub(crate) fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Err(e) = ffmpeg::init() {
            tracing::error!("FFmpeg failed to initialise: {e}");
        }
        ffmpeg::log::set_level(ffmpeg::log::Level::Quiet);
    });
}

/// Clockwise rotation (0, 90, 180, 270) that shows the stream upright, from its display matrix.
fn stream_rotation(stream: &ffmpeg::format::stream::Stream) -> u32 {
    for sd in stream.side_data() {
        if sd.kind() != ffmpeg::codec::packet::side_data::Type::DisplayMatrix {
            continue;
        }
        let data = sd.data();
        if data.len() < 36 {
            continue;
        }
        let mut m = [0i32; 9];
        for (i, v) in m.iter_mut().enumerate() {
            *v = i32::from_ne_bytes([
                data[4 * i],
                data[4 * i + 1],
                data[4 * i + 2],
                data[4 * i + 3],
            ]);
        }
        // SAFETY: `m` is the nine 32-bit entries av_display_rotation_get reads.
        let ccw = unsafe { ffmpeg::ffi::av_display_rotation_get(m.as_ptr()) };
        if !ccw.is_finite() {
            return 0;
        }
        let cw = (-ccw).rem_euclid(360.0);
        return (((cw / 90.0).round() as u32) % 4) * 90;
    }
    0
}

fn rational(r: ffmpeg::Rational) -> Option<f64> {
    (r.numerator() > 0 && r.denominator() > 0).then(|| f64::from(r))
}

/// True when the first bytes look like a video container (MP4/MOV, Matroska/WebM, AVI, MPEG
/// program or transport stream, FLV, Ogg, ASF/WMV), whatever the file's name.
pub fn sniff_video(head: &[u8]) -> bool {
    let at = |i: usize, m: &[u8]| head.len() >= i + m.len() && &head[i..i + m.len()] == m;
    // Still-image formats in ISO boxes (AVIF, HEIC) are photos, not videos.
    let still = [&b"avif"[..], b"avis", b"heic", b"heix", b"mif1", b"msf1"];
    if at(4, b"ftyp") && still.iter().any(|b| at(8, b)) {
        return false;
    }
    at(4, b"ftyp")
        || at(4, b"moov")
        || at(4, b"mdat")
        || at(4, b"wide")
        || at(4, b"free")
        || at(0, &[0x1A, 0x45, 0xDF, 0xA3])
        || (at(0, b"RIFF") && at(8, b"AVI "))
        || at(0, &[0x00, 0x00, 0x01, 0xBA])
        || (head.len() > 188 && head[0] == 0x47 && head[188] == 0x47)
        || at(0, b"FLV")
        || at(0, b"OggS")
        || at(0, &[0x30, 0x26, 0xB2, 0x75])
}

fn head_of(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    buf.truncate(n);
    buf
}

/// Streams frames sampled at a fixed rate from one video (an iterator of [`SampledFrame`]);
/// [`FrameSampler::end`] then tells how decoding ended.
pub struct FrameSampler {
    source_name: String,
    info: VideoInfo,
    input: ffmpeg::format::context::Input,
    decoder: ffmpeg::decoder::Video,
    stream_index: usize,
    time_base: f64,
    limits: DecodeLimits,
    interval: f64,
    /// Index of the next sample time (`k * interval`).
    next_k: u64,
    /// Time origin: the first frame's timestamp (stream ticks).
    origin: Option<i64>,
    /// The latest decoded frame, its time and whether it was emitted.
    prev: Option<(f64, bool)>,
    prev_frame: ffmpeg::frame::Video,
    cur_frame: ffmpeg::frame::Video,
    scaler: Option<(Pixel, u32, u32, scaling::Context)>,
    ready: std::collections::VecDeque<SampledFrame>,
    sampled: usize,
    frames_decoded: u64,
    bad_packets: u64,
    bad_in_a_row: usize,
    out_of_order: u64,
    stopped: Option<Stopped>,
    eof: bool,
    /// The error that stopped decoding before any frame came, for the caller's message.
    first_error: Option<String>,
}

impl FrameSampler {
    /// Opens `path` and its best video stream; `fps` is the sampling rate (samples per second).
    pub fn open(path: &Path, fps: f64, limits: DecodeLimits) -> Result<Self, VideoError> {
        init();
        let source_name = path.display().to_string();
        if !(fps.is_finite() && fps > 0.0 && fps <= 120.0) {
            return Err(VideoError::Config(format!(
                "sampling rate {fps} frames/s is out of range (0, 120]"
            )));
        }
        if !(limits.max_seconds.is_finite() && limits.max_seconds > 0.0) {
            return Err(VideoError::Config(format!(
                "maximum duration {} s must be a positive number",
                limits.max_seconds
            )));
        }
        let meta = std::fs::metadata(path).map_err(|e| VideoError::Io {
            path: path.to_path_buf(),
            detail: format!("cannot read video: {e}"),
        })?;
        if meta.len() == 0 {
            return Err(VideoError::Empty {
                source_name,
                detail: ": the file is 0 bytes".into(),
            });
        }
        let input = ffmpeg::format::input(&path).map_err(|e| {
            if e == ffmpeg::Error::Eof {
                VideoError::Empty {
                    source_name: source_name.clone(),
                    detail: ": the container ends before its first frame".into(),
                }
            } else if sniff_video(&head_of(path)) {
                VideoError::Corrupt {
                    source_name: source_name.clone(),
                    detail: format!("FFmpeg cannot open the container: {e}"),
                }
            } else {
                VideoError::NotAVideo {
                    source_name: source_name.clone(),
                    detail: format!("FFmpeg: {e}"),
                }
            }
        })?;
        let is_picture = |s: &ffmpeg::format::stream::Stream| {
            s.parameters().medium() == Media::Video
                && !s
                    .disposition()
                    .contains(ffmpeg::format::stream::Disposition::ATTACHED_PIC)
        };
        let audio_streams = input
            .streams()
            .filter(|s| s.parameters().medium() == Media::Audio)
            .count();
        let best = input
            .streams()
            .best(Media::Video)
            .filter(|s| is_picture(s))
            .or_else(|| input.streams().find(|s| is_picture(s)));
        let Some(stream) = best else {
            return Err(if audio_streams > 0 {
                VideoError::AudioOnly {
                    source_name,
                    audio_streams,
                }
            } else {
                VideoError::NotAVideo {
                    source_name,
                    detail: format!("the {} file holds no video stream", input.format().name()),
                }
            });
        };
        let codec_name = stream.parameters().id().name().to_string();
        let stream_index = stream.index();
        let time_base = rational(stream.time_base()).unwrap_or(1.0 / 90_000.0);
        let rotation = stream_rotation(&stream);
        let fps_announced = rational(stream.avg_frame_rate()).or_else(|| rational(stream.rate()));
        let frames = stream.frames();
        let stream_duration = stream.duration();
        let container_duration = input.duration();
        let duration_s = if stream_duration > 0 {
            Some(stream_duration as f64 * time_base)
        } else if container_duration > 0 {
            Some(container_duration as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE))
        } else {
            None
        };
        let no_decoder = |detail: String| VideoError::NoDecodableStream {
            source_name: source_name.clone(),
            codec: codec_name.clone(),
            detail,
        };
        let mut ctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| no_decoder(e.to_string()))?;
        // Two decoding threads: the detector and the classifier use the other cores' time.
        ctx.set_threading(ffmpeg::threading::Config {
            kind: ffmpeg::threading::Type::Frame,
            count: 2,
            ..Default::default()
        });
        let decoder = ctx
            .decoder()
            .video()
            .map_err(|e| no_decoder(format!("FFmpeg has no decoder for it ({e})")))?;
        let (cw, ch) = (decoder.width(), decoder.height());
        if cw as u64 * ch as u64 > limits.max_pixels {
            return Err(VideoError::TooLarge {
                source_name,
                message: format!(
                    "frames are {cw}x{ch}, over the limit of {} megapixels per frame; downscale the video first (e.g. `ffmpeg -i IN -vf scale=1920:-2 OUT.mp4`)",
                    limits.max_pixels / 1_000_000
                ),
            });
        }
        let (width, height) = if rotation % 180 == 90 {
            (ch, cw)
        } else {
            (cw, ch)
        };
        let info = VideoInfo {
            container: input.format().name().to_string(),
            codec: codec_name,
            width,
            height,
            rotation,
            duration_s,
            fps: fps_announced,
            frame_count: (frames > 0).then_some(frames as u64),
            audio_streams,
        };
        tracing::debug!(source = %source_name, ?info, "video opened");
        Ok(FrameSampler {
            source_name,
            info,
            input,
            decoder,
            stream_index,
            time_base,
            limits,
            interval: 1.0 / fps,
            next_k: 0,
            origin: None,
            prev: None,
            prev_frame: ffmpeg::frame::Video::empty(),
            cur_frame: ffmpeg::frame::Video::empty(),
            scaler: None,
            ready: Default::default(),
            sampled: 0,
            frames_decoded: 0,
            bad_packets: 0,
            bad_in_a_row: 0,
            out_of_order: 0,
            stopped: None,
            eof: false,
            first_error: None,
        })
    }

    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// How decoding ended; call after the iterator is exhausted. A video with no frame at all
    /// is an error here ([`VideoError::Empty`] or [`VideoError::Corrupt`]).
    pub fn end(self) -> Result<DecodeEnd, VideoError> {
        if self.frames_decoded == 0 {
            let detail = self
                .first_error
                .or(self.stopped.as_ref().map(|s| s.reason.clone()));
            return Err(match detail {
                Some(d) => VideoError::Corrupt {
                    source_name: self.source_name,
                    detail: d,
                },
                None => VideoError::Empty {
                    source_name: self.source_name,
                    detail: String::new(),
                },
            });
        }
        Ok(DecodeEnd {
            frames_decoded: self.frames_decoded,
            frames_sampled: self.sampled,
            last_time_s: self.prev.map_or(0.0, |p| p.0),
            bad_packets: self.bad_packets,
            out_of_order_frames: self.out_of_order,
            stopped: self.stopped,
        })
    }

    fn stop(&mut self, reason: String) {
        if self.stopped.is_none() {
            let at_s = self.prev.map_or(0.0, |p| p.0);
            if self.frames_decoded == 0 && self.first_error.is_none() {
                self.first_error = Some(reason.clone());
            }
            self.stopped = Some(Stopped { at_s, reason });
        }
        self.eof = true;
    }

    /// Reads packets until the decoder gives frames or the input ends.
    fn pump(&mut self) {
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(&mut self.input) {
            Ok(()) => {
                if packet.stream() != self.stream_index {
                    return;
                }
                let again = ffmpeg::Error::Other {
                    errno: ffmpeg::util::error::EAGAIN,
                };
                let mut sent = self.decoder.send_packet(&packet);
                if sent == Err(again) {
                    // The decoder is full: take its frames, then hand the packet again.
                    self.drain();
                    sent = self.decoder.send_packet(&packet);
                }
                match sent {
                    Ok(()) => self.bad_in_a_row = 0,
                    Err(e) => self.bad_packet(format!("a packet failed to decode ({e})")),
                }
                self.drain();
            }
            Err(ffmpeg::Error::Eof) => {
                let _ = self.decoder.send_eof();
                self.drain();
                self.finish_stream();
            }
            Err(ffmpeg::Error::InvalidData) => {
                self.bad_packet("the file holds unreadable data".into())
            }
            Err(e) => self.stop(format!("reading the file failed: {e}")),
        }
    }

    fn bad_packet(&mut self, what: String) {
        self.bad_packets += 1;
        self.bad_in_a_row += 1;
        if self.bad_in_a_row >= MAX_BAD_PACKETS_IN_A_ROW {
            self.stop(format!(
                "{what}: {MAX_BAD_PACKETS_IN_A_ROW} damaged packets in a row, the rest of the file is unreadable"
            ));
        }
    }

    /// Receives every frame the decoder has ready.
    fn drain(&mut self) {
        while self.stopped.is_none() {
            if self.decoder.receive_frame(&mut self.cur_frame).is_err() {
                break;
            }
            self.on_frame();
        }
    }

    /// The stream ended: the last frame may still serve one sample time, and a stream shorter
    /// than its header announced is reported as truncated.
    fn finish_stream(&mut self) {
        if let Some((t, emitted)) = self.prev {
            let target = self.next_k as f64 * self.interval;
            if !emitted && target <= t + self.interval / 2.0 && target <= self.limits.max_seconds {
                self.emit_prev(target);
            }
            if self.stopped.is_none() {
                if let Some(d) = self.info.duration_s {
                    let frame_dur = self.info.fps.map_or(0.1, |f| 1.0 / f);
                    let missing = d - (t + frame_dur);
                    if missing > (2.0 * frame_dur).max(0.5) {
                        let why = if self.bad_packets > 0 {
                            format!(
                                "{} damaged packet(s) skipped, then the file ended",
                                self.bad_packets
                            )
                        } else {
                            "the file ends early".to_string()
                        };
                        self.stopped = Some(Stopped {
                            at_s: t,
                            reason: format!(
                                "frames stop at {t:.1} s of the {d:.1} s the header announces: {why} (truncated?)"
                            ),
                        });
                    }
                }
            }
        }
        self.eof = true;
    }

    fn on_frame(&mut self) {
        let Some(ts) = self.cur_frame.timestamp().or(self.cur_frame.pts()) else {
            // No timestamp at all: place it one announced frame after the previous one.
            let step = self.info.fps.map_or(self.interval, |f| 1.0 / f);
            let t = self.prev.map_or(0.0, |p| p.0 + step);
            return self.place(t);
        };
        let origin = *self.origin.get_or_insert(ts);
        let t = (ts - origin) as f64 * self.time_base;
        self.place(t);
    }

    fn place(&mut self, t: f64) {
        if let Some((pt, _)) = self.prev {
            if t <= pt {
                self.out_of_order += 1;
                return;
            }
        }
        self.frames_decoded += 1;
        let mut cur_emitted = false;
        loop {
            let target = self.next_k as f64 * self.interval;
            if target > t {
                break;
            }
            if target > self.limits.max_seconds {
                self.stop(format!(
                    "stopped at the limit of {:.0} s per video (--max-seconds); the rest was not analysed",
                    self.limits.max_seconds
                ));
                return;
            }
            let prev_closer = self.prev.is_some_and(|(pt, _)| target - pt <= t - target);
            if prev_closer {
                if self.prev.is_some_and(|(_, emitted)| !emitted) {
                    self.emit_prev(target);
                }
            } else if !cur_emitted {
                self.emit(target, t, true);
                cur_emitted = true;
            }
            self.next_k += 1;
        }
        std::mem::swap(&mut self.prev_frame, &mut self.cur_frame);
        self.prev = Some((t, cur_emitted));
    }

    fn emit_prev(&mut self, target: f64) {
        if let Some((t, _)) = self.prev {
            self.emit(target, t, false);
            self.prev = Some((t, true));
        }
    }

    /// Converts the current (`cur`) or previous frame to upright RGB and queues it.
    fn emit(&mut self, target: f64, t: f64, cur: bool) {
        let frame = if cur {
            &self.cur_frame
        } else {
            &self.prev_frame
        };
        match to_rgb(frame, &mut self.scaler) {
            Ok(img) => {
                let image = match self.info.rotation {
                    90 => image::imageops::rotate90(&img),
                    180 => image::imageops::rotate180(&img),
                    270 => image::imageops::rotate270(&img),
                    _ => img,
                };
                self.ready.push_back(SampledFrame {
                    index: self.sampled,
                    time_s: t,
                    target_s: target,
                    image,
                });
                self.sampled += 1;
            }
            Err(e) => {
                tracing::warn!(source = %self.source_name, time_s = t, "frame conversion failed: {e}");
                self.bad_packets += 1;
            }
        }
    }
}

impl Iterator for FrameSampler {
    type Item = SampledFrame;

    fn next(&mut self) -> Option<SampledFrame> {
        loop {
            if let Some(f) = self.ready.pop_front() {
                return Some(f);
            }
            if self.eof {
                return None;
            }
            self.pump();
        }
    }
}

/// Converts a decoded frame to RGB at its own size (the scaler is rebuilt when the size or
/// pixel format changes mid-stream).
fn to_rgb(
    frame: &ffmpeg::frame::Video,
    scaler: &mut Option<(Pixel, u32, u32, scaling::Context)>,
) -> Result<RgbImage, String> {
    let (fmt, w, h) = (frame.format(), frame.width(), frame.height());
    if w == 0 || h == 0 {
        return Err("the frame has no pixels".into());
    }
    if !matches!(scaler, Some((f, sw, sh, _)) if *f == fmt && *sw == w && *sh == h) {
        let ctx = scaling::Context::get(fmt, w, h, Pixel::RGB24, w, h, scaling::Flags::BILINEAR)
            .map_err(|e| format!("no conversion from {fmt:?} to RGB: {e}"))?;
        *scaler = Some((fmt, w, h, ctx));
    }
    let Some((_, _, _, ctx)) = scaler.as_mut() else {
        return Err("no scaler".into());
    };
    let mut rgb = ffmpeg::frame::Video::empty();
    ctx.run(frame, &mut rgb).map_err(|e| e.to_string())?;
    let stride = rgb.stride(0);
    let row = 3 * w as usize;
    let data = rgb.data(0);
    let mut out = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        out.extend_from_slice(&data[y * stride..y * stride + row]);
    }
    RgbImage::from_raw(w, h, out).ok_or_else(|| "frame buffer size".to_string())
}

/// Reads only what the container says (no decoding).
pub fn probe(path: &Path) -> Result<VideoInfo, VideoError> {
    FrameSampler::open(path, 1.0, DecodeLimits::default()).map(|s| s.info)
}
