//! `emolens analyze VIDEO` end to end: reaction videos made here with the FFmpeg libraries
//! (H.264 in MP4 and Matroska) from real FER2013 test faces pasted on a background, never
//! committed; the real binary and model.
//!
//! The expected emotions are not written down: each face is first analysed as a photo (the
//! same composite picture, through the same binary), and the video's timeline must follow that.

use crate::analyze::{assets, csv_fields, emolens, model_args, s};
use emolens_video::synth::{compose, fer_faces, Placement};
use emolens_video::{VideoCodec, VideoWriter, WriterSettings};
use image::{GrayImage, RgbImage};
use serde_json::Value;
use std::path::{Path, PathBuf};

const W: u32 = 640;
const H: u32 = 360;
const SIDE: u32 = 144;

fn tempdir(name: &str) -> PathBuf {
    emolens_test_support::scratch(&format!("cli-video-{name}"))
}

fn one_face(face: &GrayImage, x: u32) -> RgbImage {
    compose(
        W,
        H,
        &[Placement {
            face,
            x,
            y: 108,
            side: SIDE,
        }],
    )
}

/// Encodes `frames(k)` for k in 0..n at `fps`.
fn encode(path: &Path, n: usize, fps: u32, frames: impl Fn(usize) -> RgbImage) {
    let mut w = VideoWriter::create(
        path,
        WriterSettings {
            codec: VideoCodec::H264,
            width: W,
            height: H,
            fps,
            rotation: 0,
        },
    )
    .unwrap();
    for k in 0..n {
        w.push(&frames(k), k as f64 / fps as f64).unwrap();
    }
    w.finish().unwrap();
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn probs(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| p["probability"].as_f64().unwrap())
        .collect()
}

/// A face as the photo path classifies it.
struct Known {
    face: GrayImage,
    predicted: String,
    confidence: f64,
    probabilities: Vec<f64>,
}

/// FER2013 test faces of several classes, each pasted as in the videos and analysed as a photo.
fn known_faces(d: &Path, model: &[String]) -> Vec<Known> {
    let mut faces = Vec::new();
    for class in ["happy", "surprise", "sad", "angry"] {
        faces.extend(
            fer_faces("test", class, 3)
                .unwrap()
                .into_iter()
                .map(|f| f.1),
        );
    }
    let dir = d.join("photos");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, f) in faces.iter().enumerate() {
        one_face(f, 248)
            .save(dir.join(format!("c{i:02}.png")))
            .unwrap();
    }
    let mut args = model.to_vec();
    args.extend(["--json".into(), s(&dir)]);
    let out = emolens(&args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), faces.len());
    faces
        .into_iter()
        .zip(lines)
        .filter_map(|(face, l)| {
            let found = l["faces"].as_array().unwrap();
            (found.len() == 1).then(|| Known {
                face,
                predicted: found[0]["predicted_emotion"].as_str().unwrap().to_string(),
                confidence: found[0]["confidence"].as_f64().unwrap(),
                probabilities: probs(&found[0]["probabilities"]),
            })
        })
        .collect()
}

/// Two faces the classifier tells apart: the most confident pair with different answers.
fn two_different(known: &[Known]) -> (&Known, &Known) {
    let mut best: Option<(&Known, &Known)> = None;
    for a in known {
        for b in known {
            if a.predicted != b.predicted
                && best.is_none_or(|(x, y)| {
                    a.confidence.min(b.confidence) > x.confidence.min(y.confidence)
                })
            {
                best = Some((a, b));
            }
        }
    }
    best.expect("the classifier gives the same answer for every face; cannot test a change")
}

#[test]
fn one_viewer_timeline_follows_the_classifier_through_an_emotion_change() {
    let d = tempdir("one");
    let model = model_args(&d);
    let known = known_faces(&d, &model);
    let (a, b) = two_different(&known);
    // 6 s at 25 fps: face A until 2.9 s, face B from then on.
    let video = d.join("reaction.mp4");
    encode(&video, 150, 25, |k| {
        one_face(if k < 73 { &a.face } else { &b.face }, 248)
    });
    let timeline = d.join("timeline.png");
    let sheets = d.join("annotated");
    let mut args = model.clone();
    args.extend([
        "--json".into(),
        "--timeline".into(),
        s(&timeline),
        "--annotate".into(),
        s(&sheets),
        s(&video),
    ]);
    let out = emolens(&args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 1);
    let r = &lines[0];
    assert_eq!(r["kind"], "video");
    assert_eq!(r["complete"], true, "{}", r["stopped"]);
    assert_eq!(r["info"]["codec"], "h264");
    assert_eq!(r["info"]["width"], W);
    let frames = r["frames"].as_array().unwrap();
    assert!(frames.len() >= 30, "5 fps over 6 s: {}", frames.len());
    for f in frames {
        let faces = f["faces"].as_array().unwrap();
        assert_eq!(faces.len(), 1, "one face in every frame: {f}");
        assert_eq!(faces[0]["viewer"], 1);
    }
    let viewers = r["viewers"].as_array().unwrap();
    assert_eq!(viewers.len(), 1, "one viewer");
    let seconds = viewers[0]["seconds"].as_array().unwrap();
    assert_eq!(seconds.len(), 6);
    for sec in seconds {
        let n = sec["second"].as_u64().unwrap();
        let want = if n < 3 { a } else { b };
        assert_eq!(sec["face_share"], 1.0, "{sec}");
        assert_eq!(
            sec["top_emotion"].as_str().unwrap(),
            want.predicted,
            "second {n}: {sec}"
        );
        let got = probs(&sec["probabilities"]);
        let worst = got
            .iter()
            .zip(&want.probabilities)
            .map(|(g, w)| (g - w).abs())
            .fold(0.0, f64::max);
        // The video frames went through H.264; the photo did not.
        assert!(
            worst < 0.1,
            "second {n}: video {got:?} vs photo {:?}",
            want.probabilities
        );
        let valence = sec["valence"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&valence));
    }
    let png = image::open(&timeline).expect("timeline PNG written");
    assert_eq!((png.width(), png.height()), (1000, 80 + 260));
    let sheet = image::open(sheets.join("reaction.sheet.png")).expect("contact sheet written");
    assert!(sheet.width() >= 4 * 320, "{}", sheet.width());
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn two_viewers_side_by_side_get_two_ids_that_never_merge() {
    let d = tempdir("two");
    let model = model_args(&d);
    let faces: Vec<GrayImage> = fer_faces("test", "happy", 1)
        .unwrap()
        .into_iter()
        .chain(fer_faces("test", "neutral", 1).unwrap())
        .map(|f| f.1)
        .collect();
    // A name a spreadsheet would run as a formula, to check the CSV.
    let video = d.join("=two viewers.mp4");
    encode(&video, 100, 25, |k| {
        // Both sway a little, in opposite directions.
        let sway = ((k as f64 * 0.3).sin() * 10.0) as i64;
        compose(
            W,
            H,
            &[
                Placement {
                    face: &faces[0],
                    x: (40 + sway) as u32,
                    y: 100,
                    side: SIDE,
                },
                Placement {
                    face: &faces[1],
                    x: (420 - sway) as u32,
                    y: 110,
                    side: SIDE,
                },
            ],
        )
    });
    let mut args = model.clone();
    args.extend(["--json".into(), s(&video)]);
    let out = emolens(&args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = &json_lines(&out.stdout)[0];
    let viewers = r["viewers"].as_array().unwrap();
    assert_eq!(viewers.len(), 2, "exactly two viewers: {}", r["viewers"]);
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for f in r["frames"].as_array().unwrap() {
        let faces = f["faces"].as_array().unwrap();
        assert_eq!(faces.len(), 2, "{f}");
        for face in faces {
            let id = face["viewer"].as_u64().unwrap();
            if face["bbox"]["x"].as_f64().unwrap() < W as f64 / 2.0 {
                left.push(id);
            } else {
                right.push(id);
            }
        }
    }
    assert!(
        left.iter().all(|&i| i == left[0]),
        "left viewer keeps one id: {left:?}"
    );
    assert!(
        right.iter().all(|&i| i == right[0]),
        "right viewer keeps one id: {right:?}"
    );
    assert_ne!(left[0], right[0]);
    for v in viewers {
        for sec in v["seconds"].as_array().unwrap() {
            assert_eq!(sec["face_share"], 1.0, "{sec}");
        }
    }

    // The same video as CSV, named relatively (as a spreadsheet user would): one row per
    // viewer per second, formula-safe text.
    let out = emolens_test_support::success(
        emolens_test_support::emolens!()
            .current_dir(&d)
            .arg("analyze")
            .args(&model)
            .args(["--csv", "=two viewers.mp4"]),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<String>> = text.lines().map(csv_fields).collect();
    let header = &rows[0];
    let col = |n: &str| {
        header
            .iter()
            .position(|h| h == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    let expected_rows: usize = viewers
        .iter()
        .map(|v| v["seconds"].as_array().unwrap().len())
        .sum();
    assert_eq!(rows.len(), 1 + expected_rows, "{text}");
    for row in &rows[1..] {
        assert_eq!(row.len(), header.len());
        assert!(
            row[col("source")].starts_with("'="),
            "{}",
            row[col("source")]
        );
        assert!(["1", "2"].contains(&row[col("viewer")].as_str()));
        let valence: f64 = row[col("valence")].parse().unwrap();
        assert!((-1.0..=1.0).contains(&valence));
        assert_eq!(row[col("complete")], "true");
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn photos_and_videos_in_one_call_keep_their_own_status() {
    let d = tempdir("mixed");
    let model = model_args(&d);
    let face = fer_faces("test", "happy", 1).unwrap().remove(0).1;
    let clip = d.join("clip.mp4");
    encode(&clip, 50, 25, |_| one_face(&face, 248));
    // A Matroska file cut in half: a partial result.
    let cut = d.join("cut.mkv");
    {
        let mut w = VideoWriter::create(
            &cut,
            WriterSettings {
                codec: VideoCodec::H264,
                width: W,
                height: H,
                fps: 25,
                rotation: 0,
            },
        )
        .unwrap();
        for k in 0..100 {
            w.push(&one_face(&face, 200 + (k % 40) as u32), k as f64 / 25.0)
                .unwrap();
        }
        w.finish().unwrap();
        let bytes = std::fs::read(&cut).unwrap();
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    }
    let notes = d.join("notes.mp4");
    std::fs::write(&notes, "not a video\n".repeat(50)).unwrap();
    // A sound-only file (an MP4 container with no video would do the same).
    let wav = d.join("interview.wav");
    std::fs::write(&wav, crate::video::wav()).unwrap();
    let photo = d.join("astronaut.png");
    std::fs::copy(assets().join("astronaut.png"), &photo).unwrap();

    let inputs: Vec<String> = [&photo, &clip, &wav, &notes, &cut]
        .iter()
        .map(|p| s(p))
        .collect();
    let mut args = model.clone();
    args.push("--json".into());
    args.extend(inputs.iter().cloned());
    let out = emolens(&args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "two inputs failed: {stderr}");
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(lines[0]["source"]
        .as_str()
        .unwrap()
        .ends_with("astronaut.png"));
    assert_eq!(lines[0]["faces"].as_array().unwrap().len(), 1);
    assert_eq!(lines[1]["kind"], "video");
    assert_eq!(lines[1]["complete"], true);
    assert_eq!(lines[1]["viewers"].as_array().unwrap().len(), 1);
    assert_eq!(lines[2]["status"], 415);
    assert!(
        lines[2]["error"].as_str().unwrap().contains("audio only"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3]["status"], 415);
    assert!(
        lines[3]["error"].as_str().unwrap().contains("not a video"),
        "{}",
        lines[3]
    );
    let partial = &lines[4];
    assert_eq!(partial["complete"], false, "{partial}");
    let reason = partial["stopped"]["reason"].as_str().unwrap();
    assert!(reason.contains("truncated"), "{reason}");
    let at = partial["stopped"]["at_s"].as_f64().unwrap();
    assert!(at > 0.5 && at < 3.5, "{at}");
    assert!(!partial["viewers"].as_array().unwrap().is_empty());
    assert!(
        stderr.contains("cut.mkv") && stderr.contains("partial"),
        "{stderr}"
    );

    // CSV cannot hold both tables: refused up front, saying what to do.
    let mut args = model;
    args.push("--csv".into());
    args.extend(inputs);
    let out = emolens(&args, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("two calls"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

/// A valid PCM WAV file: one second of a 440 Hz tone.
pub(crate) fn wav() -> Vec<u8> {
    let rate = 8000u32;
    let mut b = Vec::new();
    let data_len = rate * 2;
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..rate {
        let v = ((i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 8000.0) as i16;
        b.extend_from_slice(&v.to_le_bytes());
    }
    b
}
