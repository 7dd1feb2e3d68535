//! Writing videos with FFmpeg's encoders: H.264 (libx264), VP8/VP9 (libvpx) or MPEG-4 Part 2
//! into any container FFmpeg picks from the file name (MP4, MKV, WebM, MOV). Frames are given
//! with their own presentation times, so variable frame rates can be written, and a rotation
//! can be recorded in the stream's display matrix. Tests and benchmarks make their reaction
//! videos with it at run time.

use crate::error::VideoError;
use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;
use image::RgbImage;
use std::path::{Path, PathBuf};

/// Timestamps are written in milliseconds.
const TIME_BASE: ffmpeg::Rational = ffmpeg::Rational(1, 1000);

/// A video encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    Vp8,
    Vp9,
    Mpeg4,
}

impl VideoCodec {
    /// FFmpeg's name of the encoder.
    pub fn encoder_name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "libx264",
            VideoCodec::Vp8 => "libvpx",
            VideoCodec::Vp9 => "libvpx-vp9",
            VideoCodec::Mpeg4 => "mpeg4",
        }
    }

    /// True when this FFmpeg build has the encoder.
    pub fn available(self) -> bool {
        crate::decode::init();
        ffmpeg::encoder::find_by_name(self.encoder_name()).is_some()
    }
}

/// How to write a video.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    pub codec: VideoCodec,
    /// Frame size (even numbers: the encoders use 4:2:0 chroma).
    pub width: u32,
    pub height: u32,
    /// Nominal frame rate (the frames' own times are what counts).
    pub fps: u32,
    /// Clockwise rotation (0, 90, 180, 270) a player applies to show the frames.
    pub rotation: u32,
}

/// Writes frames into a video file; call [`VideoWriter::finish`] at the end.
pub struct VideoWriter {
    path: PathBuf,
    output: ffmpeg::format::context::Output,
    encoder: ffmpeg::encoder::Video,
    scaler: scaling::Context,
    stream_tb: ffmpeg::Rational,
    width: u32,
    height: u32,
    last_pts: Option<i64>,
    /// Nominal duration of a frame, ms.
    frame_ms: i64,
}

impl VideoWriter {
    pub fn create(path: &Path, s: WriterSettings) -> Result<Self, VideoError> {
        crate::decode::init();
        let fail = |detail: String| VideoError::Encode {
            path: path.to_path_buf(),
            detail,
        };
        if s.width == 0 || s.height == 0 || s.width % 2 == 1 || s.height % 2 == 1 {
            return Err(fail(format!(
                "frame size {}x{} must be even and non-zero",
                s.width, s.height
            )));
        }
        if s.rotation % 90 != 0 || s.rotation >= 360 {
            return Err(fail(format!(
                "rotation {} is not 0, 90, 180 or 270",
                s.rotation
            )));
        }
        let codec = ffmpeg::encoder::find_by_name(s.codec.encoder_name()).ok_or_else(|| {
            fail(format!(
                "this FFmpeg has no {} encoder",
                s.codec.encoder_name()
            ))
        })?;
        let mut output = ffmpeg::format::output(&path)
            .map_err(|e| fail(format!("no container for this name: {e}")))?;
        let global_header = output
            .format()
            .flags()
            .contains(ffmpeg::format::Flags::GLOBAL_HEADER);
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(|e| fail(e.to_string()))?;
        enc.set_width(s.width);
        enc.set_height(s.height);
        enc.set_format(Pixel::YUV420P);
        enc.set_time_base(TIME_BASE);
        enc.set_frame_rate(Some(ffmpeg::Rational(s.fps.max(1) as i32, 1)));
        enc.set_gop(s.fps.max(1) * 2);
        enc.set_max_b_frames(0);
        if global_header {
            enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        }
        let mut opts = ffmpeg::Dictionary::new();
        match s.codec {
            VideoCodec::H264 => {
                opts.set("preset", "veryfast");
                opts.set("crf", "20");
            }
            VideoCodec::Vp8 | VideoCodec::Vp9 => {
                opts.set("deadline", "realtime");
                opts.set("cpu-used", "8");
                opts.set("crf", "20");
                enc.set_bit_rate(4_000_000);
            }
            VideoCodec::Mpeg4 => {
                enc.set_bit_rate(4_000_000);
            }
        }
        let encoder = enc.open_as_with(codec, opts).map_err(|e| {
            fail(format!(
                "cannot open the {} encoder: {e}",
                s.codec.encoder_name()
            ))
        })?;
        {
            let mut stream = output.add_stream(codec).map_err(|e| fail(e.to_string()))?;
            stream.set_parameters(&encoder);
            stream.set_time_base(TIME_BASE);
            if s.rotation != 0 {
                // SAFETY: the stream belongs to `output`, which is alive; the side data is 9
                // 32-bit entries, the size av_display_rotation_set writes.
                unsafe {
                    let sd = ffmpeg::ffi::av_stream_new_side_data(
                        stream.as_mut_ptr(),
                        ffmpeg::ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX,
                        36,
                    );
                    if sd.is_null() {
                        return Err(fail("cannot store the rotation".into()));
                    }
                    // av_display_rotation_get reads back minus this angle, and players (as
                    // ffmpeg's own `get_rotation`, and FrameSampler) turn the frames clockwise
                    // by minus what it reads: by `rotation`.
                    ffmpeg::ffi::av_display_rotation_set(sd as *mut i32, s.rotation as f64);
                }
            }
        }
        output
            .write_header()
            .map_err(|e| fail(format!("cannot write the header: {e}")))?;
        let stream_tb = output.stream(0).map_or(TIME_BASE, |st| st.time_base());
        let scaler = scaling::Context::get(
            Pixel::RGB24,
            s.width,
            s.height,
            Pixel::YUV420P,
            s.width,
            s.height,
            scaling::Flags::BILINEAR,
        )
        .map_err(|e| fail(e.to_string()))?;
        Ok(VideoWriter {
            path: path.to_path_buf(),
            output,
            encoder,
            scaler,
            stream_tb,
            width: s.width,
            height: s.height,
            last_pts: None,
            frame_ms: (1000 / s.fps.max(1)) as i64,
        })
    }

    fn fail(&self, detail: String) -> VideoError {
        VideoError::Encode {
            path: self.path.clone(),
            detail,
        }
    }

    /// Adds a frame shown from `time_s` seconds (after the previous frame's time, to the ms).
    pub fn push(&mut self, img: &RgbImage, time_s: f64) -> Result<(), VideoError> {
        if img.dimensions() != (self.width, self.height) {
            return Err(self.fail(format!(
                "frame is {}x{}, the video {}x{}",
                img.width(),
                img.height(),
                self.width,
                self.height
            )));
        }
        let pts = (time_s * 1000.0).round() as i64;
        if self.last_pts.is_some_and(|p| pts <= p) {
            return Err(self.fail(format!(
                "frame time {time_s:.3} s is not after the previous frame's"
            )));
        }
        self.last_pts = Some(pts);
        let mut rgb = ffmpeg::frame::Video::new(Pixel::RGB24, self.width, self.height);
        let stride = rgb.stride(0);
        let row = 3 * self.width as usize;
        let raw = img.as_raw();
        let data = rgb.data_mut(0);
        for y in 0..self.height as usize {
            data[y * stride..y * stride + row].copy_from_slice(&raw[y * row..(y + 1) * row]);
        }
        let mut yuv = ffmpeg::frame::Video::empty();
        self.scaler
            .run(&rgb, &mut yuv)
            .map_err(|e| self.fail(e.to_string()))?;
        yuv.set_pts(Some(pts));
        self.encoder
            .send_frame(&yuv)
            .map_err(|e| self.fail(format!("encoder refused a frame: {e}")))?;
        self.write_packets()
    }

    fn write_packets(&mut self) -> Result<(), VideoError> {
        let mut packet = ffmpeg::Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(0);
            if packet.duration() <= 0 {
                // The nominal frame time: MP4 takes the last frame's duration from it, and its
                // edit list would otherwise cut that frame off.
                packet.set_duration(self.frame_ms);
            }
            packet.rescale_ts(TIME_BASE, self.stream_tb);
            packet
                .write_interleaved(&mut self.output)
                .map_err(|e| self.fail(format!("cannot write a packet: {e}")))?;
        }
        Ok(())
    }

    /// Flushes the encoder and writes the trailer (index, duration).
    pub fn finish(mut self) -> Result<(), VideoError> {
        self.encoder
            .send_eof()
            .map_err(|e| self.fail(e.to_string()))?;
        self.write_packets()?;
        self.output
            .write_trailer()
            .map_err(|e| self.fail(format!("cannot write the trailer: {e}")))
    }
}
