//! `emolens._native`: the Rust half of the Python package `emolens` (the Python half, under
//! `python/emolens/`, turns Python inputs into bytes and JSON results into objects).
//!
//! Every call goes through the same library functions as the CLI (`emolens_faces::Analyzer`
//! for `analyze`, `EmotionClassifier::predict` and `Preprocessor::prepare` for `predict`), so
//! results are the CLI's by construction; results cross into Python as the CLI's own JSON.
//! The GIL is released while Rust works (`Python::detach`), so Python threads run in parallel.
//! The package sets no run-time options (`emolens_model::runtime`): the CLI's `--precision`,
//! `--kernels` and `--device` are read from `EMOLENS_PRECISION`, `EMOLENS_KERNELS` and
//! `EMOLENS_DEVICE` here, the library's fallback.

mod analyze;
mod classify;

use pyo3::prelude::*;

pyo3::create_exception!(
    emolens,
    EmolensError,
    pyo3::exceptions::PyException,
    "An emolens failure, with the message the `emolens` CLI prints for it."
);

/// An [`EmolensError`] carrying `message` (the CLI's wording).
pub(crate) fn error(message: impl std::fmt::Display) -> PyErr {
    EmolensError::new_err(message.to_string())
}

/// How the CLI prints an error with its context: `context: cause: cause...` (anyhow's `{:#}`).
pub(crate) fn chain(context: &str, e: &dyn std::error::Error) -> String {
    format!("{context}: {}", chain_of(e))
}

/// Loads the model file at `path`, or the bundled model. Errors read as the CLI's: `emolens
/// analyze` puts `loading model FILE` before the cause (`with_context`), `emolens predict` not.
pub(crate) fn load_model(
    path: Option<&str>,
    with_context: bool,
) -> PyResult<std::sync::Arc<dyn emolens_core::EmotionClassifier>> {
    let p = path.map(std::path::Path::new);
    emolens_model::load_classifier(p).map_err(|e| {
        if !with_context {
            return error(chain_of(&e));
        }
        let context = match path {
            Some(p) => format!("loading model {p}"),
            None => "loading the bundled model".to_string(),
        };
        error(chain(&context, &e))
    })
}

/// An error and its causes, as anyhow's `{:#}` prints them.
pub(crate) fn chain_of(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("EmolensError", m.py().get_type::<EmolensError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<analyze::Analyzer>()?;
    m.add_class::<classify::Classifier>()?;
    m.add_function(wrap_pyfunction!(analyze::collect_inputs, m)?)?;
    m.add_function(wrap_pyfunction!(analyze::write_timeline, m)?)?;
    Ok(())
}
