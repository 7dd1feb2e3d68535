//! The video half of `emolens analyze`: each reaction video is sampled, its viewers tracked and
//! their emotions summed up per second (`emolens_video::analyze_video`), then written as text,
//! JSON Lines (one object per video) or CSV (one row per viewer per second), with an optional
//! timeline plot and contact sheet.

use crate::cmd_analyze::csv_row;
use emolens_faces::Analyzer;
use emolens_video::{analyze_video, VideoError, VideoOptions, VideoResult};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Output format of the video results.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum VideoFormat {
    Text,
    Json,
    Csv,
}

/// What to write besides the results.
pub(crate) struct VideoOutputs<'a> {
    pub timeline: Option<&'a Path>,
    pub annotate: Option<&'a Path>,
    /// More than one video: the timeline path gets each video's name.
    pub several: bool,
}

/// Counts of a run over videos.
#[derive(Default)]
pub(crate) struct VideoTally {
    pub ok: usize,
    pub partial: usize,
    pub failed: usize,
    pub frames: usize,
}

/// The CSV columns of a video: one row per viewer per second.
pub(crate) fn csv_header(classes: &[String]) -> Vec<String> {
    let mut h: Vec<String> = [
        "source",
        "viewer",
        "second",
        "frames",
        "frames_with_face",
        "face_share",
        "classified_faces",
        "uncertain_faces",
        "top_emotion",
        "valence",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    h.extend(classes.iter().map(|c| format!("p_{c}")));
    h.extend(["complete", "stopped_at_s", "notes", "error"].map(String::from));
    h
}

/// Analyses each video in turn and writes its results to `w`.
pub(crate) fn analyze_videos(
    videos: &[PathBuf],
    analyzer: &Analyzer,
    opts: &VideoOptions,
    format: VideoFormat,
    outputs: &VideoOutputs<'_>,
    w: &mut dyn Write,
) -> anyhow::Result<VideoTally> {
    let classes = analyzer.classes().to_vec();
    let mut tally = VideoTally::default();
    for path in videos {
        let bar = ProgressBar::new(1000);
        bar.set_style(
            ProgressStyle::with_template("{spinner} video [{bar:30}] {msg} ETA {eta}")
                .expect("static template")
                .progress_chars("=> "),
        );
        let name = path.display().to_string();
        let started = std::time::Instant::now();
        let result = analyze_video(path, analyzer, opts, &mut |p| {
            if let Some(d) = p.duration_s.filter(|d| *d > 0.0) {
                bar.set_position(((p.time_s / d).clamp(0.0, 1.0) * 1000.0) as u64);
            }
            bar.set_message(format!(
                "{name}: {:.1} s, {} frames, {} viewer(s)",
                p.time_s, p.frames, p.viewers
            ));
        });
        bar.finish_and_clear();
        match result {
            Ok(r) => {
                let secs = started.elapsed().as_secs_f64();
                let video_s = r.frames.last().map_or(0.0, |f| f.time_s);
                tracing::info!(
                    source = %name,
                    frames = r.frames.len(),
                    viewers = r.viewers.len(),
                    seconds = format!("{secs:.2}"),
                    frames_per_s = format!("{:.2}", r.frames.len() as f64 / secs.max(1e-9)),
                    real_time_factor = format!("{:.2}", video_s / secs.max(1e-9)),
                    "video analysed"
                );
                tally.frames += r.frames.len();
                if r.complete {
                    tally.ok += 1;
                } else {
                    tally.partial += 1;
                    if let Some(s) = &r.stopped {
                        eprintln!("{name}: partial result up to {:.1} s: {}", s.at_s, s.reason);
                    }
                }
                write_extras(&r, &classes, outputs);
                write_result(w, format, &r, &classes)?;
            }
            Err(e) => {
                tally.failed += 1;
                tracing::warn!("{e}");
                write_error(w, format, &name, &e, &classes)?;
            }
        }
    }
    Ok(tally)
}

/// The timeline plot and contact sheet of one video; failures are warnings, not lost results.
fn write_extras(r: &VideoResult, classes: &[String], outputs: &VideoOutputs<'_>) {
    let stem = Path::new(&r.source)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("video")
        .to_string();
    if let Some(t) = outputs.timeline {
        let path = if outputs.several {
            let ext = t.extension().and_then(|e| e.to_str()).unwrap_or("png");
            let base = t.file_stem().and_then(|s| s.to_str()).unwrap_or("timeline");
            t.with_file_name(format!("{base}.{stem}.{ext}"))
        } else {
            t.to_path_buf()
        };
        match emolens_video::write_timeline(r, classes, &path) {
            Ok(()) => tracing::info!(path = %path.display(), "timeline written"),
            Err(e) => tracing::warn!("{e}"),
        }
    }
    if let (Some(dir), Some(sheet)) = (outputs.annotate, &r.sheet) {
        let path = dir.join(format!("{stem}.sheet.png"));
        if let Err(e) = sheet.save(&path) {
            tracing::warn!("{}: cannot write the contact sheet: {e}", path.display());
        }
    }
}

fn write_result(
    w: &mut dyn Write,
    format: VideoFormat,
    r: &VideoResult,
    classes: &[String],
) -> anyhow::Result<()> {
    match format {
        VideoFormat::Json => writeln!(w, "{}", r.to_json())?,
        VideoFormat::Csv => {
            let notes = r.notes.join("; ");
            let complete = r.complete.to_string();
            let stopped = r
                .stopped
                .as_ref()
                .map(|s| format!("{:.2}", s.at_s))
                .unwrap_or_default();
            if r.viewers.is_empty() {
                let mut row = vec![r.source.clone()];
                row.extend(std::iter::repeat_n(String::new(), 9 + classes.len()));
                row.extend([
                    complete.clone(),
                    stopped.clone(),
                    notes.clone(),
                    String::new(),
                ]);
                writeln!(w, "{}", csv_row(&row))?;
            }
            for v in &r.viewers {
                for s in &v.seconds {
                    let mut row = vec![
                        r.source.clone(),
                        v.viewer.to_string(),
                        s.second.to_string(),
                        s.frames.to_string(),
                        s.frames_with_face.to_string(),
                        format!("{:.4}", s.face_share),
                        s.classified_faces.to_string(),
                        s.uncertain_faces.to_string(),
                        s.top_emotion.clone().unwrap_or_default(),
                        s.valence.map(|x| format!("{x:.4}")).unwrap_or_default(),
                    ];
                    for c in classes {
                        let p = s.probabilities.iter().find(|p| &p.emotion == c);
                        row.push(
                            p.map(|p| format!("{:.4}", p.probability))
                                .unwrap_or_default(),
                        );
                    }
                    row.extend([
                        complete.clone(),
                        stopped.clone(),
                        notes.clone(),
                        String::new(),
                    ]);
                    writeln!(w, "{}", csv_row(&row))?;
                }
            }
        }
        VideoFormat::Text => write_text(w, r, classes)?,
    }
    Ok(())
}

fn write_text(w: &mut dyn Write, r: &VideoResult, classes: &[String]) -> anyhow::Result<()> {
    let i = &r.info;
    write!(w, "{}  video {}x{}", r.source, i.width, i.height)?;
    if let Some(d) = i.duration_s {
        write!(w, "  {d:.1} s")?;
    }
    if let Some(f) = i.fps {
        write!(w, "  {f:.2} fps")?;
    }
    if i.rotation != 0 {
        write!(w, "  rotated {}°", i.rotation)?;
    }
    writeln!(
        w,
        "  {}  {} frames sampled at {} fps  {} viewer(s){}",
        i.codec,
        r.frames.len(),
        r.sample_fps,
        r.viewers.len(),
        if r.complete { "" } else { "  PARTIAL" }
    )?;
    if let Some(s) = &r.stopped {
        writeln!(w, "  partial: analysed up to {:.1} s: {}", s.at_s, s.reason)?;
    }
    for n in &r.notes {
        writeln!(w, "  note: {n}")?;
    }
    let short: Vec<String> = classes
        .iter()
        .map(|c| c.chars().take(7).collect())
        .collect();
    for v in &r.viewers {
        write!(
            w,
            "  viewer {}: {:.1}-{:.1} s, face in {} frames",
            v.viewer, v.first_s, v.last_s, v.frames_with_face
        )?;
        if let Some(t) = &v.top_emotion {
            write!(w, ", mostly {t}")?;
        }
        if let Some(val) = v.valence {
            write!(w, ", valence {val:+.2}")?;
        }
        writeln!(w)?;
        write!(w, "    {:>5} {:>5} {:>5}", "s", "face", "val")?;
        for c in &short {
            write!(w, " {c:>7}")?;
        }
        writeln!(w, "  top")?;
        for s in &v.seconds {
            write!(
                w,
                "    {:>5} {:>4.0}% {:>5}",
                s.second,
                s.face_share * 100.0,
                s.valence
                    .map(|x| format!("{x:+.2}"))
                    .unwrap_or_else(|| "-".into())
            )?;
            if s.probabilities.is_empty() {
                for _ in classes {
                    write!(w, " {:>7}", "-")?;
                }
            } else {
                for p in &s.probabilities {
                    write!(w, " {:>7.2}", p.probability)?;
                }
            }
            writeln!(w, "  {}", s.top_emotion.as_deref().unwrap_or("-"))?;
        }
    }
    Ok(())
}

fn write_error(
    w: &mut dyn Write,
    format: VideoFormat,
    source: &str,
    e: &VideoError,
    classes: &[String],
) -> anyhow::Result<()> {
    match format {
        VideoFormat::Json => writeln!(w, "{}", e.to_json(source))?,
        VideoFormat::Csv => {
            let mut row = vec![source.to_string()];
            row.extend(std::iter::repeat_n(String::new(), 9 + classes.len() + 3));
            row.push(e.to_string());
            writeln!(w, "{}", csv_row(&row))?;
        }
        VideoFormat::Text => writeln!(w, "{source}  ERROR: {e}")?,
    }
    Ok(())
}
