//! `emolens._native.Analyzer` and `collect_photos`: `emolens analyze` for Python. Photos are
//! read, decoded, detected and classified in batches exactly as `crates/emolens/src/cmd_analyze.rs`
//! does (the same `emolens_faces::Analyzer` calls, batch N classified while batch N+1 is
//! prepared), with the GIL released; each photo comes back as the CLI's `--json` line.

use crate::error;
use emolens_faces::{AnalyzerConfig, FacesError, PreparedBatch};
use pyo3::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File extensions picked up when walking a folder: the CLI's list
/// (`cmd_analyze::PHOTO_EXTENSIONS`, which lives in the binary crate).
const PHOTO_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "gif", "tif", "tiff", "webp"];

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
                Err(e) => (name, None, Some(e.to_string()), e.http_status()),
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

/// The photos `emolens analyze PATH...` would analyse, in its order, one list per input: the
/// file named, or the photo files found under the folder named (sorted, recursive). Errors
/// are the CLI's, "no photos found" included (over all inputs together).
#[pyfunction]
pub fn collect_photos(paths: Vec<PathBuf>) -> PyResult<Vec<Vec<PathBuf>>> {
    let mut all = Vec::with_capacity(paths.len());
    for input in &paths {
        let meta = std::fs::metadata(input)
            .map_err(|e| error(format!("{}: no such photo or folder: {e}", input.display())))?;
        let mut photos = Vec::new();
        if meta.is_dir() {
            walk(input, &mut photos)?;
        } else {
            photos.push(input.clone());
        }
        all.push(photos);
    }
    if !paths.is_empty() && all.iter().all(|p| p.is_empty()) {
        return Err(error(format!(
            "no photos found in {paths:?} (looked for files ending in {})",
            PHOTO_EXTENSIONS.join(", ")
        )));
    }
    Ok(all)
}

fn walk(dir: &Path, photos: &mut Vec<PathBuf>) -> PyResult<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| error(format!("reading folder {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, photos)?;
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| PHOTO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            photos.push(p);
        }
    }
    Ok(())
}
