//! Decoding and sampling: nearest-timestamp sampling of a variable-frame-rate video, rotation
//! metadata, WebM (VP8/VP9), and every kind of bad input (truncated, zero-length, audio-only,
//! not a video, empty file).

use emolens_video::{
    DecodeLimits, FrameSampler, SampledFrame, VideoCodec, VideoError, VideoWriter, WriterSettings,
};
use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};

fn tempdir(name: &str) -> PathBuf {
    emolens_test_support::scratch(&format!("video-{name}"))
}

/// Frame `i` is flat gray at this level, so a decoded frame says which one it is.
fn level(i: usize) -> u8 {
    (20 + 5 * i) as u8
}

fn flat(w: u32, h: u32, i: usize) -> RgbImage {
    RgbImage::from_pixel(w, h, Rgb([level(i); 3]))
}

/// Which frame a decoded flat frame is (by its mean level).
fn which(f: &SampledFrame) -> usize {
    let mean = f.image.pixels().map(|p| p[1] as f64).sum::<f64>() / f.image.pixels().len() as f64;
    ((mean - 20.0) / 5.0).round() as usize
}

fn write(
    path: &Path,
    codec: VideoCodec,
    w: u32,
    h: u32,
    rotation: u32,
    frames: &[(f64, RgbImage)],
) {
    let mut wr = VideoWriter::create(
        path,
        WriterSettings {
            codec,
            width: w,
            height: h,
            fps: 30,
            rotation,
        },
    )
    .unwrap();
    for (t, img) in frames {
        wr.push(img, *t).unwrap();
    }
    wr.finish().unwrap();
}

fn sample_all(path: &Path, fps: f64) -> (Vec<SampledFrame>, emolens_video::DecodeEnd) {
    let mut s = FrameSampler::open(path, fps, DecodeLimits::default()).unwrap();
    let frames: Vec<SampledFrame> = s.by_ref().collect();
    (frames, s.end().unwrap())
}

/// The reference: for each sample time k/fps, the frame nearest it (ties: the earlier one),
/// skipped when that frame was already taken; sample times end half an interval after the
/// last frame.
fn expected_picks(times: &[f64], fps: f64) -> Vec<(usize, f64)> {
    let interval = 1.0 / fps;
    let last = *times.last().unwrap();
    let mut out: Vec<(usize, f64)> = Vec::new();
    let mut k = 0u64;
    loop {
        let target = k as f64 * interval;
        if target > last + interval / 2.0 {
            break;
        }
        let mut best = 0;
        for (i, &t) in times.iter().enumerate() {
            if (t - target).abs() < (times[best] - target).abs() {
                best = i;
            }
        }
        if out.last().is_none_or(|(i, _)| *i != best) && !out.iter().any(|(i, _)| *i == best) {
            out.push((best, target));
        }
        k += 1;
    }
    out
}

#[test]
fn variable_frame_rate_is_sampled_by_nearest_timestamp_without_repeats() {
    let d = tempdir("vfr");
    let path = d.join("vfr.mkv");
    // Irregular gaps (ms), some longer than the 200 ms sampling interval.
    let gaps = [31, 53, 71, 307, 23, 449, 113];
    let mut ms = 0;
    let mut frames = Vec::new();
    for i in 0..40 {
        frames.push((ms as f64 / 1000.0, flat(64, 48, i)));
        ms += gaps[i % gaps.len()];
    }
    write(&path, VideoCodec::H264, 64, 48, 0, &frames);
    let times: Vec<f64> = frames.iter().map(|(t, _)| *t).collect();
    let (got, end) = sample_all(&path, 5.0);
    let want = expected_picks(&times, 5.0);
    let got_ids: Vec<usize> = got.iter().map(which).collect();
    let want_ids: Vec<usize> = want.iter().map(|(i, _)| *i).collect();
    assert_eq!(got_ids, want_ids, "frames picked");
    for (g, (i, target)) in got.iter().zip(&want) {
        assert!(
            (g.time_s - times[*i]).abs() < 1e-6,
            "{} vs {}",
            g.time_s,
            times[*i]
        );
        assert!((g.target_s - target).abs() < 1e-9);
    }
    // Never the same frame twice; some sample times were skipped (gaps > interval).
    assert!(got.windows(2).all(|w| w[0].time_s < w[1].time_s));
    let last = *times.last().unwrap();
    assert!(
        got.len() < (last * 5.0) as usize + 1,
        "skips expected: {}",
        got.len()
    );
    assert_eq!(end.frames_decoded, 40);
    assert!(end.stopped.is_none(), "{:?}", end.stopped);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn constant_rate_mp4_info_and_sample_count() {
    let d = tempdir("cfr");
    let path = d.join("cfr.mp4");
    let frames: Vec<(f64, RgbImage)> = (0..45)
        .map(|i| (i as f64 / 15.0, flat(96, 64, i)))
        .collect();
    write(&path, VideoCodec::H264, 96, 64, 0, &frames);
    let info = emolens_video::probe(&path).unwrap();
    assert_eq!((info.width, info.height, info.rotation), (96, 64, 0));
    assert_eq!(info.codec, "h264");
    assert!(info.container.contains("mp4"), "{}", info.container);
    let dur = info.duration_s.unwrap();
    assert!((dur - 3.0).abs() < 0.1, "duration {dur}");
    let (got, end) = sample_all(&path, 5.0);
    // 0, 0.2, ..., 2.8 and 3.0 is past the last frame (2.933) by less than half an interval.
    let ids: Vec<usize> = got.iter().map(which).collect();
    let want: Vec<usize> = expected_picks(&frames.iter().map(|f| f.0).collect::<Vec<_>>(), 5.0)
        .into_iter()
        .map(|p| p.0)
        .collect();
    let times: Vec<f64> = got.iter().map(|f| f.time_s).collect();
    assert_eq!(ids, want, "times {times:?}, {end:?}");
    assert_eq!(ids[..4], [0, 3, 6, 9]);
    assert!(end.stopped.is_none());
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn rotation_metadata_is_applied() {
    let d = tempdir("rot");
    let path = d.join("rot.mp4");
    // Coded 160x96 (landscape), a red block in the coded frame's top-left corner.
    let mut img = RgbImage::from_pixel(160, 96, Rgb([200, 200, 200]));
    for y in 0..24 {
        for x in 0..24 {
            img.put_pixel(x, y, Rgb([230, 20, 20]));
        }
    }
    let frames: Vec<(f64, RgbImage)> = (0..10).map(|i| (i as f64 / 10.0, img.clone())).collect();
    write(&path, VideoCodec::H264, 160, 96, 90, &frames);
    let info = emolens_video::probe(&path).unwrap();
    assert_eq!(info.rotation, 90);
    assert_eq!((info.width, info.height), (96, 160), "shown portrait");
    let (got, _) = sample_all(&path, 5.0);
    assert!(!got.is_empty());
    let f = &got[0].image;
    assert_eq!(f.dimensions(), (96, 160));
    // Turned 90 degrees clockwise, the top-left corner is now top-right.
    let red = |p: &Rgb<u8>| p[0] > 150 && p[1] < 90;
    assert!(red(f.get_pixel(96 - 8, 8)), "{:?}", f.get_pixel(96 - 8, 8));
    assert!(!red(f.get_pixel(8, 8)));
    assert!(!red(f.get_pixel(8, 160 - 8)));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn webm_vp8_and_vp9_decode_when_the_encoders_exist() {
    let d = tempdir("webm");
    for codec in [VideoCodec::Vp8, VideoCodec::Vp9] {
        if !codec.available() {
            println!(
                "SKIPPED {codec:?} WebM: this FFmpeg has no {} encoder",
                codec.encoder_name()
            );
            continue;
        }
        let path = d.join(format!("{codec:?}.webm"));
        let frames: Vec<(f64, RgbImage)> = (0..30)
            .map(|i| (i as f64 / 15.0, flat(64, 48, i)))
            .collect();
        write(&path, codec, 64, 48, 0, &frames);
        let info = emolens_video::probe(&path).unwrap();
        assert!(info.container.contains("webm"), "{}", info.container);
        assert_eq!(
            info.codec,
            if codec == VideoCodec::Vp8 {
                "vp8"
            } else {
                "vp9"
            }
        );
        let (got, end) = sample_all(&path, 5.0);
        let ids: Vec<usize> = got.iter().map(which).collect();
        // 0, 0.2, ..., 1.8 s, and 2.0 s takes the last frame (1.933 s, less than half an
        // interval before).
        assert_eq!(ids, [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 29], "{codec:?}");
        assert!(end.stopped.is_none());
    }
    std::fs::remove_dir_all(&d).ok();
}

/// Frames whose content changes, so packets are not trivially small.
fn busy(i: usize) -> RgbImage {
    RgbImage::from_fn(160, 120, |x, y| {
        let v = ((x * 7 + y * 13) as usize + i * 29) % 256;
        Rgb([v as u8, (v * 3 % 256) as u8, (255 - v) as u8])
    })
}

#[test]
fn a_truncated_file_gives_a_partial_result_saying_where_and_why() {
    let d = tempdir("trunc");
    let path = d.join("cut.mkv");
    let frames: Vec<(f64, RgbImage)> = (0..120).map(|i| (i as f64 / 30.0, busy(i))).collect();
    write(&path, VideoCodec::H264, 160, 120, 0, &frames);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let (got, end) = sample_all(&path, 5.0);
    assert!(
        got.len() >= 4,
        "the first half still decodes: {}",
        got.len()
    );
    let stopped = end.stopped.expect("the result says it is partial");
    assert!(stopped.at_s > 0.5 && stopped.at_s < 3.5, "{stopped:?}");
    assert!(stopped.reason.contains("4.0 s"), "{}", stopped.reason);
    assert!(stopped.reason.contains("truncated"), "{}", stopped.reason);
    assert!(got.last().unwrap().time_s <= stopped.at_s + 1e-9);

    // An MP4 cut before its index (written at the end) has no readable frame at all.
    let mp4 = d.join("cut.mp4");
    write(&mp4, VideoCodec::H264, 160, 120, 0, &frames);
    let bytes = std::fs::read(&mp4).unwrap();
    std::fs::write(&mp4, &bytes[..bytes.len() / 2]).unwrap();
    let err = FrameSampler::open(&mp4, 5.0, DecodeLimits::default())
        .err()
        .expect("no index, no frames");
    assert!(matches!(err, VideoError::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("cut.mp4") && msg.contains("truncated"),
        "{msg}"
    );
    assert_eq!(err.kind().report_status(), 400);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_video_with_no_frames_is_a_clear_error() {
    let d = tempdir("zero");
    let path = d.join("zero.mkv");
    write(&path, VideoCodec::H264, 64, 48, 0, &[]);
    // FFmpeg may refuse the header already, or open it and find no frame: either way, Empty.
    let err = match FrameSampler::open(&path, 5.0, DecodeLimits::default()) {
        Err(e) => e,
        Ok(mut s) => {
            assert_eq!(s.by_ref().count(), 0);
            s.end().expect_err("no frames")
        }
    };
    assert!(matches!(err, VideoError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("zero.mkv"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

/// A valid PCM WAV file: one second of a 440 Hz tone.
fn wav() -> Vec<u8> {
    let rate = 8000u32;
    let samples: Vec<i16> = (0..rate)
        .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 8000.0) as i16)
        .collect();
    let data_len = samples.len() as u32 * 2;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

#[test]
fn audio_only_not_a_video_and_empty_files_are_clear_errors() {
    let d = tempdir("bad");
    let audio = d.join("interview.wav");
    std::fs::write(&audio, wav()).unwrap();
    let err = FrameSampler::open(&audio, 5.0, DecodeLimits::default())
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            VideoError::AudioOnly {
                audio_streams: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("interview.wav") && err.to_string().contains("audio only"));
    assert_eq!(err.kind().report_status(), 415);

    let text = d.join("notes.mp4");
    std::fs::write(&text, "these are meeting notes, not a video\n".repeat(20)).unwrap();
    let err = FrameSampler::open(&text, 5.0, DecodeLimits::default())
        .err()
        .unwrap();
    assert!(matches!(err, VideoError::NotAVideo { .. }), "{err}");
    assert!(err.to_string().contains("notes.mp4"), "{err}");

    let empty = d.join("empty.webm");
    std::fs::write(&empty, b"").unwrap();
    let err = FrameSampler::open(&empty, 5.0, DecodeLimits::default())
        .err()
        .unwrap();
    assert!(matches!(err, VideoError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("0 bytes"), "{err}");

    let missing = FrameSampler::open(&d.join("nope.mp4"), 5.0, DecodeLimits::default())
        .err()
        .unwrap();
    assert!(matches!(missing, VideoError::Io { .. }), "{missing}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn limits_cut_long_and_huge_videos() {
    let d = tempdir("limits");
    let path = d.join("long.mp4");
    let frames: Vec<(f64, RgbImage)> = (0..40)
        .map(|i| (i as f64 / 10.0, flat(64, 48, i)))
        .collect();
    write(&path, VideoCodec::H264, 64, 48, 0, &frames);
    let limits = DecodeLimits {
        max_seconds: 1.5,
        ..Default::default()
    };
    let mut s = FrameSampler::open(&path, 5.0, limits).unwrap();
    let got: Vec<SampledFrame> = s.by_ref().collect();
    let end = s.end().unwrap();
    assert_eq!(got.len(), 8, "0.0 ..= 1.4 s");
    let stopped = end.stopped.expect("cut at the limit");
    assert!(
        stopped.reason.contains("--max-seconds"),
        "{}",
        stopped.reason
    );

    let small = DecodeLimits {
        max_pixels: 1000,
        ..Default::default()
    };
    let err = FrameSampler::open(&path, 5.0, small).err().unwrap();
    assert!(matches!(err, VideoError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("64x48"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}
