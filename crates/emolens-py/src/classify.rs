//! `emolens._native.Classifier`: `emolens predict` for Python. A model file (or the bundled
//! model) classifies preprocessed batches (`predict`, the `EmotionClassifier::predict` the CLI
//! calls, flip TTA included) and prepares face crops with the model's own preprocessing
//! (`preprocess`: the CLI's decode + `Preprocessor::prepare`). The GIL is released meanwhile.

use crate::error;
use emolens_core::{DecodeLimits, EmotionClassifier, Preprocessor};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::PathBuf;
use std::sync::Arc;

/// An emotion classifier loaded from a `.emolens` model file.
#[pyclass(module = "emolens._native", frozen)]
pub struct Classifier {
    model: Arc<dyn EmotionClassifier>,
    pre: Preprocessor,
}

#[pymethods]
impl Classifier {
    /// Loads `model` (a `.emolens` file; the bundled model when None).
    #[new]
    #[pyo3(signature = (model=None))]
    fn new(py: Python<'_>, model: Option<String>) -> PyResult<Self> {
        py.detach(|| {
            let model = crate::load_model(model.as_deref(), false)?;
            let pre = Preprocessor::new(model.meta().input.clone());
            Ok(Classifier { model, pre })
        })
    }

    /// Class names, in output order.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.model.meta().classes.clone()
    }

    /// The model file's metadata as JSON (the form `emolens model info --json` reads).
    #[getter]
    fn meta_json(&self) -> PyResult<String> {
        serde_json::to_string(self.model.meta()).map_err(error)
    }

    /// `(channels, height, width)` of one preprocessed face.
    #[getter]
    fn input_shape(&self) -> (usize, usize, usize) {
        let s = &self.model.meta().input;
        (s.channels(), s.height as usize, s.width as usize)
    }

    /// How the model runs (kernels and number format).
    #[getter]
    fn runtime(&self) -> String {
        self.model.runtime()
    }

    /// Probabilities for `n` preprocessed faces given as native-endian f32 bytes (`n` x C x H x
    /// W values): `n` x classes native-endian f32 bytes.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        inputs: &[u8],
        n: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        if n == 0 {
            return Ok(PyBytes::new(py, &[]));
        }
        let values: Vec<f32> = inputs
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let per_face = self.model.meta().input.len();
        if inputs.len() % 4 != 0 || values.len() != n * per_face {
            return Err(error(format!(
                "expected {n} faces of {per_face} values, got {} bytes",
                inputs.len()
            )));
        }
        let model = self.model.clone();
        let rows = py
            .detach(move || model.predict(&values, n))
            .map_err(error)?;
        let flat: Vec<u8> = rows
            .iter()
            .flatten()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        Ok(PyBytes::new(py, &flat))
    }

    /// Face crops, `(name, path or encoded bytes)` pairs, decoded by content and prepared with
    /// the model's own preprocessing, as `emolens predict` prepares its files: native-endian
    /// f32 bytes, one C x H x W face after the other. The first crop that cannot be read or
    /// decoded raises, with the CLI's message.
    fn preprocess<'py>(
        &self,
        py: Python<'py>,
        items: Vec<(String, Bound<'py, PyAny>)>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut inputs = Vec::with_capacity(items.len());
        for (name, data) in items {
            let bytes = if let Ok(b) = data.extract::<&[u8]>() {
                Ok(b.to_vec())
            } else {
                Err(data.extract::<PathBuf>().map_err(|_| {
                    error(format!(
                        "{name}: a face crop must be a path, bytes or a uint8 array, got {}",
                        data.get_type()
                    ))
                })?)
            };
            inputs.push((name, bytes));
        }
        let pre = self.pre.clone();
        let flat = py.detach(move || -> PyResult<Vec<u8>> {
            let limits = DecodeLimits::default();
            let mut flat = Vec::new();
            for (name, bytes) in inputs {
                let bytes = match bytes {
                    Ok(b) => b,
                    Err(path) => std::fs::read(&path)
                        .map_err(|e| error(format!("{name}: cannot read file: {e}")))?,
                };
                let img = emolens_core::decode_image(&bytes, &name, &limits).map_err(error)?;
                flat.extend(pre.prepare(&img, None).iter().flat_map(|v| v.to_ne_bytes()));
            }
            Ok(flat)
        })?;
        Ok(PyBytes::new(py, &flat))
    }
}
