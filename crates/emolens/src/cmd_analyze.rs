//! `emolens analyze PHOTO|VIDEO|DIR...`: find every face in photos and classify each one; in
//! reaction videos, also track each viewer and sum their emotions up per second (`cmd_video`).
//!
//! Photos are streamed in batches (`--batch-size`): each batch is read, decoded and detected in
//! parallel, classified in one model call (while the next batch is being detected), written
//! out, and dropped, so memory stays flat over folders of thousands of photos. Videos are told
//! apart by extension or content and analysed after the photos, each keeping its own status.

use crate::cmd_video;
use anyhow::Context;
use emolens_faces::{Analyzer, AnalyzerConfig, FacesError, PhotoResult, PreparedBatch};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Exit status when some photos could not be analysed (the others were).
const SOME_FAILED: u8 = 2;

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// Photos, videos, or folders searched recursively for them.
    #[arg(required = true, env = "EMOLENS_ANALYZE_INPUTS", value_delimiter = ',')]
    inputs: Vec<PathBuf>,
    /// Model file (default: the model bundled in this binary).
    #[arg(long, env = "EMOLENS_MODEL")]
    model: Option<PathBuf>,
    /// Write JSON Lines: one object per photo or video (errors as {"source","error","status"}).
    #[arg(long, env = "EMOLENS_ANALYZE_JSON", conflicts_with = "csv")]
    json: bool,
    /// Write CSV: one row per face of a photo, or per viewer per second of a video (a photo or
    /// video without faces, or that failed, gets one row). Photos and videos need separate calls.
    #[arg(long, env = "EMOLENS_ANALYZE_CSV")]
    csv: bool,
    /// Write results to this file instead of stdout.
    #[arg(long, short, env = "EMOLENS_ANALYZE_OUTPUT")]
    output: Option<PathBuf>,
    /// Write copies of the photos with boxes and labels drawn into this folder (for a video, a
    /// contact sheet of its frames: `<name>.sheet.png`).
    #[arg(long, env = "EMOLENS_ANALYZE_ANNOTATE")]
    annotate: Option<PathBuf>,
    /// Each photo is already one face crop: skip detection.
    #[arg(long, env = "EMOLENS_ANALYZE_ASSUME_CROP")]
    assume_crop: bool,
    /// Faces smaller than this (px) are reported but not classified.
    #[arg(long, env = "EMOLENS_ANALYZE_MIN_FACE_PX")]
    min_face_px: Option<u32>,
    /// Context added around each detected face, per side, as a fraction of the box.
    #[arg(long, env = "EMOLENS_ANALYZE_MARGIN")]
    margin: Option<f32>,
    /// Top probability under which a face is reported as uncertain.
    #[arg(long, env = "EMOLENS_ANALYZE_MIN_CONFIDENCE")]
    min_confidence: Option<f32>,
    /// Sharpness (Laplacian variance) under which a face is reported as uncertain.
    #[arg(long, env = "EMOLENS_ANALYZE_MIN_SHARPNESS")]
    min_sharpness: Option<f32>,
    /// Detector score under which a face is reported as uncertain.
    #[arg(long, env = "EMOLENS_ANALYZE_MIN_DETECTOR_SCORE")]
    min_detector_score: Option<f32>,
    /// Face detector: `seetaface` (the SeetaFace cascade, no landmarks) or `blazeface`
    /// (MediaPipe's BlazeFace CNN, six landmarks per face).
    #[arg(long, env = "EMOLENS_ANALYZE_DETECTOR", default_value = "seetaface")]
    detector: emolens_faces::DetectorKind,
    /// Photos are downscaled to this longest side for detection (smaller = faster, misses
    /// small faces: the smallest findable face is 40 px at detection scale).
    #[arg(long, env = "EMOLENS_ANALYZE_DETECT_MAX_SIDE")]
    detect_max_side: Option<u32>,
    /// Photos per batch (one classifier call per batch; bounds memory).
    #[arg(long, env = "EMOLENS_ANALYZE_BATCH_SIZE", default_value_t = 16)]
    batch_size: usize,
    /// Video frames sampled per second of video time (by presentation time).
    #[arg(long, env = "EMOLENS_ANALYZE_FPS", default_value_t = 5.0)]
    fps: f64,
    /// Video frames per batch (one classifier call per batch; bounds memory).
    #[arg(long, env = "EMOLENS_ANALYZE_VIDEO_BATCH", default_value_t = 8)]
    video_batch: usize,
    /// Draw each video's emotion timeline here (PNG, or SVG for a `.svg` name; with several
    /// videos, the video's name is added before the extension).
    #[arg(long, env = "EMOLENS_ANALYZE_TIMELINE")]
    timeline: Option<PathBuf>,
    /// Only the first this many seconds of a video are analysed (the result says so).
    #[arg(long, env = "EMOLENS_ANALYZE_MAX_SECONDS", default_value_t = 7200.0)]
    max_seconds: f64,
    /// A viewer unseen for longer than this (seconds) ends; a returning face gets a new id.
    #[arg(long, env = "EMOLENS_ANALYZE_TRACK_GAP", default_value_t = 1.0)]
    track_gap: f64,
    #[command(flatten)]
    pub runtime: crate::runtime::RuntimeArgs,
}

pub fn analyze(a: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let mut config = AnalyzerConfig {
        assume_crop: a.assume_crop,
        detector_kind: a.detector,
        ..AnalyzerConfig::default()
    };
    if let Some(v) = a.min_face_px {
        config.min_face_px = v;
    }
    if let Some(v) = a.margin {
        config.margin = v;
    }
    if let Some(v) = a.min_confidence {
        config.min_confidence = v;
    }
    if let Some(v) = a.min_sharpness {
        config.min_sharpness = v;
    }
    if let Some(v) = a.min_detector_score {
        config.min_detector_score = v;
    }
    if let Some(v) = a.detect_max_side {
        config.detector.max_side = v;
    }
    anyhow::ensure!(a.batch_size >= 1, "--batch-size must be at least 1");

    let (photos, videos): (Vec<PathBuf>, Vec<PathBuf>) = emolens_video::collect_inputs(&a.inputs)?
        .into_iter()
        .flatten()
        .partition(|p| !emolens_video::is_video_path(p));
    anyhow::ensure!(
        !(a.csv && !photos.is_empty() && !videos.is_empty()),
        "--csv writes one table, and photos (a row per face) and videos (a row per viewer per \
         second) have different columns: analyse the {} photo(s) and the {} video(s) in two calls",
        photos.len(),
        videos.len()
    );
    anyhow::ensure!(
        a.fps > 0.0 && a.fps <= 120.0,
        "--fps must be in (0, 120], got {}",
        a.fps
    );
    anyhow::ensure!(a.video_batch >= 1, "--video-batch must be at least 1");
    let classifier =
        emolens_model::load_classifier(a.model.as_deref()).with_context(|| match &a.model {
            Some(p) => format!("loading model {}", p.display()),
            None => "loading the bundled model".to_string(),
        })?;
    let analyzer = Arc::new(Analyzer::new(classifier, config)?);
    if let Some(dir) = &a.annotate {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the annotation folder {}", dir.display()))?;
    }

    let format = if a.json {
        Format::Json
    } else if a.csv {
        Format::Csv
    } else {
        Format::Text
    };
    let sink: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let csv_for_videos = photos.is_empty();
    let mut out = Output::new(sink, format, analyzer.classes(), csv_for_videos)?;
    // The classifier's first call is slow; pay it before the clock that measures the photos.
    analyzer.warm_up()?;
    let (ok, failed, faces) = if photos.is_empty() {
        (0, 0, 0)
    } else {
        analyze_photos(&a, &photos, &analyzer, &mut out)?
    };
    let mut tally = cmd_video::VideoTally::default();
    if !videos.is_empty() {
        let opts = emolens_video::VideoOptions::new(a.fps, a.video_batch, a.max_seconds)
            .with_track_gap(a.track_gap)
            .with_sheet_tiles(if a.annotate.is_some() { 24 } else { 0 });
        let video_format = match format {
            Format::Text => cmd_video::VideoFormat::Text,
            Format::Json => cmd_video::VideoFormat::Json,
            Format::Csv => cmd_video::VideoFormat::Csv,
        };
        let outputs = cmd_video::VideoOutputs {
            timeline: a.timeline.as_deref(),
            annotate: a.annotate.as_deref(),
            several: videos.len() > 1,
        };
        tally = cmd_video::analyze_videos(
            &videos,
            &analyzer,
            &opts,
            video_format,
            &outputs,
            &mut *out.w,
        )?;
    } else if a.timeline.is_some() {
        tracing::warn!("--timeline is drawn for videos only; no video was given");
    }
    out.finish()?;
    let total_failed = failed + tally.failed;
    if total_failed > 0 {
        eprintln!(
            "{total_failed} of {} inputs could not be analysed (see the messages above)",
            photos.len() + videos.len()
        );
        return Ok(ExitCode::from(SOME_FAILED));
    }
    tracing::debug!(
        photos = ok,
        faces,
        videos = tally.ok + tally.partial,
        "analyze done"
    );
    Ok(ExitCode::SUCCESS)
}

/// The photo half: batches streamed through detection and classification; (ok, failed, faces).
fn analyze_photos(
    a: &AnalyzeArgs,
    photos: &[PathBuf],
    analyzer: &Arc<Analyzer>,
    out: &mut Output,
) -> anyhow::Result<(usize, usize, usize)> {
    let bar = crate::progress::bar(photos.len() as u64, "photos");
    let started = std::time::Instant::now();
    let mut annotated_names = HashSet::new();
    let (mut ok, mut failed, mut faces) = (0usize, 0usize, 0usize);
    // Batch N is classified and written while batch N+1 is read, decoded and detected.
    let mut chunks = photos.chunks(a.batch_size);
    let mut in_flight: Option<(Vec<ReadStatus>, PreparedBatch)> = None;
    loop {
        let next = chunks.next();
        if next.is_none() && in_flight.is_none() {
            break;
        }
        let (reads, batch) = match in_flight.take() {
            Some((reads, batch)) => (Some(reads), Some(batch)),
            None => (None, None),
        };
        let (classified, prepared) = analyzer.classify_while(batch, || {
            next.map(|chunk| {
                let (reads, items) = read_chunk(chunk);
                (reads, analyzer.prepare_batch(items))
            })
        });
        in_flight = prepared;
        let (Some(reads), Some(results)) = (reads, classified) else {
            continue;
        };
        let mut results = results.into_iter();
        let n = reads.len();
        for (name, read_error) in reads {
            let r = match read_error {
                Some(e) => Err(e),
                None => results.next().unwrap_or_else(|| {
                    Err(FacesError::Internal {
                        source_name: name.clone(),
                        detail: "no result came back".into(),
                    })
                }),
            };
            match r {
                Ok(photo) => {
                    ok += 1;
                    faces += photo.faces.len();
                    if let Some(dir) = &a.annotate {
                        if let Err(e) = write_annotated(dir, &photo, analyzer, &mut annotated_names)
                        {
                            tracing::warn!("{e}");
                        }
                    }
                    out.photo(&photo)?;
                }
                Err(e) => {
                    failed += 1;
                    tracing::warn!("{e}");
                    out.error(&name, &e)?;
                }
            }
        }
        bar.inc(n as u64);
        bar.set_message(format!("{faces} faces"));
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        photos = ok,
        failed,
        faces,
        seconds = format!("{secs:.2}"),
        photos_per_s = format!("{:.2}", ok as f64 / secs.max(1e-9)),
        "analysis done"
    );
    Ok((ok, failed, faces))
}

/// A photo's name and, when it could not be read, why (its place in the output is kept).
type ReadStatus = (String, Option<FacesError>);

/// Reads a batch of photos: the status of each, in order, and the bytes of those read.
fn read_chunk(chunk: &[PathBuf]) -> (Vec<ReadStatus>, Vec<(String, Vec<u8>)>) {
    let mut reads = Vec::with_capacity(chunk.len());
    let mut items = Vec::with_capacity(chunk.len());
    for path in chunk {
        let name = path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => {
                reads.push((name.clone(), None));
                items.push((name, bytes));
            }
            Err(e) => {
                let err = FacesError::Io {
                    path: path.clone(),
                    detail: format!("cannot read photo: {e}"),
                };
                reads.push((name, Some(err)));
            }
        }
    }
    (reads, items)
}

/// Annotated copies are `<stem>.annotated.jpg`; a clash of names from different folders gets
/// a counter, never an overwrite.
fn write_annotated(
    dir: &Path,
    photo: &PhotoResult,
    analyzer: &Analyzer,
    taken: &mut HashSet<PathBuf>,
) -> Result<(), FacesError> {
    let src = Path::new(&photo.source);
    let stem = src.file_stem().and_then(|s| s.to_str()).unwrap_or("photo");
    let mut out = dir.join(format!("{stem}.annotated.jpg"));
    let mut n = 1;
    while taken.contains(&out) {
        n += 1;
        out = dir.join(format!("{stem}.{n}.annotated.jpg"));
    }
    taken.insert(out.clone());
    let bytes = std::fs::read(src).map_err(|e| FacesError::Io {
        path: src.to_path_buf(),
        detail: format!("cannot re-read photo for annotation: {e}"),
    })?;
    emolens_faces::annotate::save_annotated(&bytes, photo, &analyzer.config().decode_limits, &out)
}

#[derive(Clone, Copy)]
enum Format {
    Text,
    Json,
    Csv,
}

struct Output {
    pub(crate) w: Box<dyn Write>,
    format: Format,
    classes: Vec<String>,
}

impl Output {
    /// `videos_only`: the CSV header is the videos' one (per viewer per second).
    fn new(
        mut w: Box<dyn Write>,
        format: Format,
        classes: &[String],
        videos_only: bool,
    ) -> anyhow::Result<Self> {
        if let (Format::Csv, true) = (format, videos_only) {
            writeln!(w, "{}", csv_row(&cmd_video::csv_header(classes)))?;
        } else if let Format::Csv = format {
            let mut header: Vec<String> = [
                "source",
                "width",
                "height",
                "face",
                "x",
                "y",
                "box_width",
                "box_height",
                "detector_score",
                "face_px",
                "sharpness",
                "top_emotion",
                "predicted_emotion",
                "confidence",
                "uncertain",
                "uncertain_reasons",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            header.extend(classes.iter().map(|c| format!("p_{c}")));
            header.extend(["notes".to_string(), "error".to_string()]);
            writeln!(w, "{}", csv_row(&header))?;
        }
        Ok(Output {
            w,
            format,
            classes: classes.to_vec(),
        })
    }

    fn photo(&mut self, p: &PhotoResult) -> anyhow::Result<()> {
        match self.format {
            Format::Json => writeln!(self.w, "{}", serde_json::to_string(p)?)?,
            Format::Csv => {
                let notes = p.notes.join("; ");
                let base = [p.source.clone(), p.width.to_string(), p.height.to_string()];
                if p.faces.is_empty() {
                    let mut row: Vec<String> = base.to_vec();
                    row.extend(std::iter::repeat_n(String::new(), 13 + self.classes.len()));
                    row.extend([notes.clone(), String::new()]);
                    writeln!(self.w, "{}", csv_row(&row))?;
                }
                for (i, f) in p.faces.iter().enumerate() {
                    let mut row: Vec<String> = base.to_vec();
                    row.extend([
                        (i + 1).to_string(),
                        format!("{:.1}", f.bbox.x),
                        format!("{:.1}", f.bbox.y),
                        format!("{:.1}", f.bbox.width),
                        format!("{:.1}", f.bbox.height),
                        format!("{:.3}", f.detector_score),
                        format!("{:.1}", f.quality.face_px),
                        format!("{:.1}", f.quality.sharpness),
                        f.top_emotion.clone(),
                        f.predicted_emotion.clone().unwrap_or_default(),
                        format!("{:.4}", f.confidence),
                        f.uncertain.to_string(),
                        f.uncertain_reasons.join("; "),
                    ]);
                    for c in &self.classes {
                        let v = f.probabilities.iter().find(|p| &p.emotion == c);
                        row.push(
                            v.map(|p| format!("{:.4}", p.probability))
                                .unwrap_or_default(),
                        );
                    }
                    row.extend([notes.clone(), String::new()]);
                    writeln!(self.w, "{}", csv_row(&row))?;
                }
            }
            Format::Text => {
                let s = &p.summary;
                write!(
                    self.w,
                    "{}  {}x{}  {} face(s): {} confident, {} uncertain, {} too small",
                    p.source,
                    p.width,
                    p.height,
                    s.face_count,
                    s.confident_count,
                    s.uncertain_count,
                    s.too_small_count
                )?;
                if let Some(d) = &s.dominant_emotion {
                    write!(self.w, "  dominant: {d}")?;
                }
                writeln!(self.w)?;
                for n in &p.notes {
                    writeln!(self.w, "  note: {n}")?;
                }
                for (i, f) in p.faces.iter().enumerate() {
                    write!(
                        self.w,
                        "  #{:<2} box {:.0},{:.0} {:.0}x{:.0}  score {:5.2}  sharp {:7.1}  {}",
                        i + 1,
                        f.bbox.x,
                        f.bbox.y,
                        f.bbox.width,
                        f.bbox.height,
                        f.detector_score,
                        f.quality.sharpness,
                        f.top_emotion
                    )?;
                    if let Some(e) = &f.predicted_emotion {
                        write!(self.w, " ({e} {:.0}%)", f.confidence * 100.0)?;
                    }
                    if f.uncertain {
                        write!(self.w, "  [{}]", f.uncertain_reasons.join("; "))?;
                    }
                    writeln!(self.w)?;
                }
            }
        }
        Ok(())
    }

    fn error(&mut self, source: &str, e: &FacesError) -> anyhow::Result<()> {
        match self.format {
            Format::Json => writeln!(
                self.w,
                "{}",
                serde_json::json!({"source": source, "error": e.to_string(), "status": e.kind().report_status()})
            )?,
            Format::Csv => {
                let mut row = vec![source.to_string()];
                row.extend(std::iter::repeat_n(
                    String::new(),
                    15 + self.classes.len() + 1,
                ));
                row.push(e.to_string());
                writeln!(self.w, "{}", csv_row(&row))?;
            }
            Format::Text => writeln!(self.w, "{source}  ERROR: {e}")?,
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.w.flush()?;
        Ok(())
    }
}

/// One CSV line: numbers as they are, every other field through the service's export rule
/// (RFC 4180 quoting, and a leading `'` on text a spreadsheet would run as a formula, such as a
/// file named `=HYPERLINK(...).png`), so the CLI's and the server's CSV files are equally safe.
pub(crate) fn csv_row(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| {
            if f.parse::<f64>().is_ok() {
                f.clone()
            } else {
                emolens_server::campaigns::csv_text(f)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}
