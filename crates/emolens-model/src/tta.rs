//! Flip test-time augmentation has one owner: the model file's setting (`flip_tta`,
//! `flip_tta_below`), applied inside [`crate::BurnClassifier::predict`]. Commands that want
//! another setting for one run (`emolens eval --flip-tta`, `model tune-tta`) load the model with
//! the setting replaced here; nothing averages a mirror a second time on top.

use std::path::Path;
use std::sync::Arc;

use emolens_core::EmotionClassifier;

use crate::{BurnClassifier, ModelError, ModelFile};

/// Which flip test-time augmentation a loaded model runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlipTta {
    /// The model file's own setting.
    Model,
    /// Mirror every face and average the two answers.
    Always,
    /// Mirror the faces whose top probability is below the value.
    Below(f32),
    /// One pass, no mirror.
    Off,
}

impl FlipTta {
    /// `model`, `always`, `off`, or a gate between 0 and 1.
    pub fn parse(s: &str) -> Result<FlipTta, String> {
        match s.to_ascii_lowercase().as_str() {
            "model" => Ok(FlipTta::Model),
            "always" | "on" | "true" => Ok(FlipTta::Always),
            "off" | "false" | "none" => Ok(FlipTta::Off),
            v => match v.parse::<f32>() {
                Ok(t) if (0.0..=1.0).contains(&t) => Ok(FlipTta::Below(t)),
                _ => Err(format!(
                    "`{s}`: give `model`, `always`, `off`, or a confidence between 0 and 1"
                )),
            },
        }
    }
}

/// The model file's bytes (`path`, or the bundled model chosen by the run-time options) and a
/// name for messages.
pub fn read_model_bytes(path: Option<&Path>) -> Result<(Vec<u8>, String), ModelError> {
    Ok(match path {
        Some(p) => (
            std::fs::read(p).map_err(|e| ModelError::Io {
                path: p.to_path_buf(),
                detail: format!("cannot read model file: {e}"),
            })?,
            p.display().to_string(),
        ),
        None => {
            let choice = crate::runtime::options().bundled;
            (
                crate::bundled_model(choice)?.to_vec(),
                format!("bundled {}", choice.as_str()),
            )
        }
    })
}

/// The model file `bytes` with its flip-TTA setting replaced (unchanged for
/// [`FlipTta::Model`]).
pub fn with_flip_tta(bytes: &[u8], name: &str, tta: FlipTta) -> Result<Vec<u8>, ModelError> {
    if tta == FlipTta::Model {
        return Ok(bytes.to_vec());
    }
    let f = ModelFile::decode(bytes, name)?;
    let mut meta = f.meta.clone();
    (meta.flip_tta, meta.flip_tta_below) = match tta {
        FlipTta::Model => unreachable!("returned above"),
        FlipTta::Always => (true, None),
        FlipTta::Below(t) => (true, Some(t)),
        FlipTta::Off => (false, None),
    };
    f.reencode(&meta)
}

/// [`crate::load_classifier`] with the flip-TTA setting `tta`.
pub fn load_classifier_tta(
    path: Option<&Path>,
    tta: FlipTta,
) -> Result<Arc<dyn EmotionClassifier>, ModelError> {
    if tta == FlipTta::Model {
        return crate::load_classifier(path);
    }
    let (bytes, name) = read_model_bytes(path)?;
    let bytes = with_flip_tta(&bytes, &name, tta)?;
    Ok(Arc::new(BurnClassifier::from_bytes(
        &bytes,
        &name,
        &crate::inference_device(),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_refuses_the_rest() {
        assert_eq!(FlipTta::parse("model"), Ok(FlipTta::Model));
        assert_eq!(FlipTta::parse("Always"), Ok(FlipTta::Always));
        assert_eq!(FlipTta::parse("off"), Ok(FlipTta::Off));
        assert_eq!(FlipTta::parse("0.5"), Ok(FlipTta::Below(0.5)));
        assert!(FlipTta::parse("1.5")
            .unwrap_err()
            .contains("between 0 and 1"));
        assert!(FlipTta::parse("sometimes").is_err());
    }
}
