//! Writes a synthetic reaction video for the benchmark (`bench/video/run.sh`): FER2013 test
//! faces (read from the shared data folder at run time) enlarged on a plain background, each
//! viewer changing expression every 5 seconds, 30 frames/s, H.264 (or VP9 for `.webm`).
//!
//! cargo run --release --workspace --example make_reaction_video -- OUT.mp4 WIDTH HEIGHT SECONDS [VIEWERS]

use emolens_video::synth::{compose, fer_faces, Placement};
use emolens_video::{VideoCodec, VideoWriter, WriterSettings};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        return Err("usage: make_reaction_video OUT WIDTH HEIGHT SECONDS [VIEWERS]".into());
    }
    let out = PathBuf::from(&args[0]);
    let (width, height): (u32, u32) = (args[1].parse()?, args[2].parse()?);
    let seconds: f64 = args[3].parse()?;
    let viewers: u32 = args.get(4).map_or(Ok(1), |v| v.parse())?;
    let classes = ["happy", "neutral", "surprise", "sad"];
    let mut faces = Vec::new();
    for c in classes {
        faces.push(fer_faces("test", c, viewers as usize)?);
    }
    let codec = if out.extension().is_some_and(|e| e == "webm") {
        VideoCodec::Vp9
    } else {
        VideoCodec::H264
    };
    let fps = 30;
    let mut w = VideoWriter::create(
        &out,
        WriterSettings {
            codec,
            width,
            height,
            fps,
            rotation: 0,
        },
    )?;
    let side = height / 3;
    let frames = (seconds * fps as f64).round() as u32;
    for k in 0..frames {
        let t = k as f64 / fps as f64;
        let phase = (t / 5.0) as usize % classes.len();
        let placements: Vec<Placement> = (0..viewers)
            .map(|v| {
                let slot = width / viewers;
                // A little sway, as a seated viewer moves.
                let sway = ((t * 1.3 + v as f64).sin() * side as f64 * 0.05) as i64;
                Placement {
                    face: &faces[phase][v as usize % faces[phase].len()].1,
                    x: ((v * slot + slot / 2) as i64 - side as i64 / 2 + sway).max(0) as u32,
                    y: height / 3,
                    side,
                }
            })
            .collect();
        w.push(&compose(width, height, &placements), t)?;
    }
    w.finish()?;
    println!(
        "{}: {width}x{height}, {seconds} s, {viewers} viewer(s), {codec:?}",
        out.display()
    );
    Ok(())
}
