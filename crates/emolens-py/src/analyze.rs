//! `emolens._native.Analyzer` and `collect_inputs`: `emolens analyze` for Python. Photos are
//! read, decoded, detected and classified in batches exactly as `crates/emolens/src/cmd_analyze.rs`
//! does (the same `emolens_faces::Analyzer` calls, batch N classified while batch N+1 is
//! prepared), videos through `emolens_video::analyze_video` as `cmd_video.rs` does, with the GIL
//! released; each photo and video comes back as the CLI's `--json` line.

use crate::error;
use emolens_faces::{AnalyzerConfig, FacesError, PreparedBatch};
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;

/// One photo's outcome for Python: its source name, its JSON (the CLI's `--json` line) or its
/// error message, and the HTTP status the server would answer (200 when it was analysed).
type Outcome = (String, Option<String>, Option<String>, u16);

/// A photo to analyse: a file (read here, as the CLI reads it) or bytes already in memory.
enum Input {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

/// Finds and classifies every face in photos (`emolens analyze`), reusable across calls.
#[pyclass(module = "emolens._native", frozen)]
pub struct Analyzer {
    inner: Arc<emolens_faces::Analyzer>,
}

#[pymethods]
impl Analyzer {
    /// Loads `model` (a `.emolens` file; the bundled model when None), checks the settings as
    /// the CLI does and warms the classifier up. `None` settings keep the CLI's defaults.
    #[new]
    #[pyo3(signature = (model=None, *, assume_crop=false, min_face_px=None, margin=None,
        min_confidence=None, min_sharpness=None, min_detector_score=None, detect_max_side=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: Option<String>,
        assume_crop: bool,
        min_face_px: Option<u32>,
        margin: Option<f32>,
        min_confidence: Option<f32>,
        min_sharpness: Option<f32>,
        min_detector_score: Option<f32>,
        detect_max_side: Option<u32>,
    ) -> PyResult<Self> {
        let mut config = AnalyzerConfig {
            assume_crop,
            ..AnalyzerConfig::default()
        };
        if let Some(v) = min_face_px {
            config.min_face_px = v;
        }
        if let Some(v) = margin {
            config.margin = v;
        }
        if let Some(v) = min_confidence {
            config.min_confidence = v;
        }
        if let Some(v) = min_sharpness {
            config.min_sharpness = v;
        }
        if let Some(v) = min_detector_score {
            config.min_detector_score = v;
        }
        if let Some(v) = detect_max_side {
            config.detector.max_side = v;
        }
        py.detach(|| {
            let classifier = crate::load_model(model.as_deref(), true)?;
            let analyzer = emolens_faces::Analyzer::new(classifier, config).map_err(error)?;
            analyzer.warm_up().map_err(error)?;
            Ok(Analyzer {
                inner: Arc::new(analyzer),
            })
        })
    }

    /// The model's class names, in output order.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.inner.classes().to_vec()
    }

    /// Analyses `items`, `(source name, path or bytes)` pairs, in batches of `batch_size`
    /// photos; one `(source, json, error, status)` per item, in order. `release_gil=False`
    /// holds the GIL throughout: only the package's own test uses it, as the control that
    /// shows its measurement of the GIL release can fail.
    #[pyo3(signature = (items, batch_size=16, release_gil=true))]
    fn analyze(
        &self,
        py: Python<'_>,
        items: Vec<(String, Bound<'_, PyAny>)>,
        batch_size: usize,
        release_gil: bool,
    ) -> PyResult<Vec<Outcome>> {
        if batch_size == 0 {
            return Err(error("batch_size must be at least 1"));
        }
        let mut inputs = Vec::with_capacity(items.len());
        for (name, data) in items {
            let input = if let Ok(b) = data.extract::<&[u8]>() {
                Input::Bytes(b.to_vec())
            } else {
                Input::Path(data.extract::<PathBuf>().map_err(|_| {
                    error(format!(
                        "{name}: a photo must be a path or bytes, got {}",
                        data.get_type()
                    ))
                })?)
            };
            inputs.push((name, input));
        }
        let analyzer = self.inner.clone();
        if release_gil {
            Ok(py.detach(move || run(&analyzer, inputs, batch_size)))
        } else {
            Ok(run(&analyzer, inputs, batch_size))
        }
    }

    /// Analyses one video as `emolens analyze VIDEO --json` does: frames sampled at `fps` by
    /// presentation time, viewers tracked, per-viewer-per-second timelines. Returns
    /// `(source, json, error, status)` like `analyze`: a partial result (damage after the first
    /// frame) is a result, with `complete` false. `progress`, if given, is called with
    /// `(seconds done, duration or None, frames, viewers)` after each batch of frames.
    #[pyo3(signature = (path, fps=5.0, video_batch=8, max_seconds=7200.0, track_gap=1.0,
        progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn analyze_video(
        &self,
        py: Python<'_>,
        path: PathBuf,
        fps: f64,
        video_batch: usize,
        max_seconds: f64,
        track_gap: f64,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Outcome> {
        // The CLI's checks of --fps and --video-batch, with its wording.
        if !(fps > 0.0 && fps <= 120.0) {
            return Err(error(format!("--fps must be in (0, 120], got {fps}")));
        }
        if video_batch == 0 {
            return Err(error("--video-batch must be at least 1"));
        }
        let opts = emolens_video::VideoOptions::new(fps, video_batch, max_seconds)
            .with_track_gap(track_gap);
        let name = path.display().to_string();
        let analyzer = self.inner.clone();
        let result = py.detach(|| {
            emolens_video::analyze_video(&path, &analyzer, &opts, &mut |p| {
                if let Some(cb) = &progress {
                    // A failing callback must not stop the analysis: its error is printed.
                    Python::attach(|py| {
                        if let Err(e) = cb.call1(py, (p.time_s, p.duration_s, p.frames, p.viewers))
                        {
                            e.print(py);
                        }
                    });
                }
            })
        });
        Ok(match result {
            Ok(r) => (name, Some(r.to_json().to_string()), None, 200),
            Err(e) => (name, None, Some(e.to_string()), e.kind().report_status()),
        })
    }
}

/// The CLI's loop: batch N is classified while batch N+1 is read, decoded and detected.
fn run(
    analyzer: &emolens_faces::Analyzer,
    inputs: Vec<(String, Input)>,
    batch_size: usize,
) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(inputs.len());
    let mut rest = inputs.into_iter();
    let mut in_flight: Option<(Vec<ReadStatus>, PreparedBatch)> = None;
    loop {
        let next: Vec<(String, Input)> = rest.by_ref().take(batch_size).collect();
        if next.is_empty() && in_flight.is_none() {
            break;
        }
        let (reads, batch) = match in_flight.take() {
            Some((reads, batch)) => (Some(reads), Some(batch)),
            None => (None, None),
        };
        let (classified, prepared) = analyzer.classify_while(batch, || {
            (!next.is_empty()).then(|| {
                let (reads, items) = read_chunk(next);
                (reads, analyzer.prepare_batch(items))
            })
        });
        in_flight = prepared;
        let (Some(reads), Some(results)) = (reads, classified) else {
            continue;
        };
        let mut results = results.into_iter();
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
            out.push(match r {
                Ok(photo) => match serde_json::to_string(&photo) {
                    Ok(json) => (name, Some(json), None, 200),
                    Err(e) => (name, None, Some(format!("{e}")), 500),
                },
                Err(e) => (name, None, Some(e.to_string()), e.kind().report_status()),
            });
        }
    }
    out
}

/// A photo's name and, when it could not be read, why (its place in the output is kept).
type ReadStatus = (String, Option<FacesError>);

/// Reads a batch of photos as the CLI does: the status of each, in order, and the bytes.
fn read_chunk(chunk: Vec<(String, Input)>) -> (Vec<ReadStatus>, Vec<(String, Vec<u8>)>) {
    let mut reads = Vec::with_capacity(chunk.len());
    let mut items = Vec::with_capacity(chunk.len());
    for (name, input) in chunk {
        let bytes = match input {
            Input::Bytes(b) => Ok(b),
            Input::Path(path) => std::fs::read(&path).map_err(|e| FacesError::Io {
                path,
                detail: format!("cannot read photo: {e}"),
            }),
        };
        match bytes {
            Ok(bytes) => {
                reads.push((name.clone(), None));
                items.push((name, bytes));
            }
            Err(e) => reads.push((name, Some(e))),
        }
    }
    (reads, items)
}

/// The files `emolens analyze PATH...` would analyse, in its order, one list per input: the
/// file named, or the photo and video files found under the folder named (sorted, recursive),
/// each as `(path, is_video)`. Errors are the CLI's (`emolens_video::collect_inputs`).
#[pyfunction]
pub fn collect_inputs(paths: Vec<PathBuf>) -> PyResult<Vec<Vec<(PathBuf, bool)>>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let found = emolens_video::collect_inputs(&paths).map_err(|e| error(crate::chain_of(&e)))?;
    Ok(found
        .into_iter()
        .map(|files| {
            files
                .into_iter()
                .map(|p| {
                    let video = emolens_video::is_video_path(&p);
                    (p, video)
                })
                .collect()
        })
        .collect())
}

/// Draws the emotion timeline of a video result (its JSON, as `analyze_video` returned it) to
/// `path`: PNG, or SVG for a `.svg` name; the plot `emolens analyze --timeline` draws.
#[pyfunction]
pub fn write_timeline(
    py: Python<'_>,
    result_json: &str,
    classes: Vec<String>,
    path: PathBuf,
) -> PyResult<()> {
    let result: emolens_video::VideoResult = serde_json::from_str(result_json)
        .map_err(|e| error(format!("not a video result of emolens.analyze: {e}")))?;
    py.detach(|| emolens_video::write_timeline(&result, &classes, &path))
        .map_err(|e| error(crate::chain_of(&e)))
}
