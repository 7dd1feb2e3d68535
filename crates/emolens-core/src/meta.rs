//! What a model file says about itself: its classes in output order, the input it expects and
//! how that input is normalised. Everything that prepares or reads a model's tensors takes these
//! from here, never from a hard-coded list.

use crate::error::CoreError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Colour mode of a model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColourMode {
    /// One channel (luma).
    Grayscale,
    /// Three channels; grayscale images are expanded by repeating the channel.
    Rgb,
}

impl ColourMode {
    pub fn channels(self) -> usize {
        match self {
            ColourMode::Grayscale => 1,
            ColourMode::Rgb => 3,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ColourMode::Grayscale => "grayscale",
            ColourMode::Rgb => "rgb",
        }
    }
}

impl fmt::Display for ColourMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ColourMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "grayscale" | "greyscale" | "gray" | "grey" | "l" => Ok(ColourMode::Grayscale),
            "rgb" | "color" | "colour" => Ok(ColourMode::Rgb),
            other => Err(format!(
                "unknown colour mode '{other}': use 'grayscale' or 'rgb'"
            )),
        }
    }
}

/// How u8 pixels become model inputs. Applied per channel after scaling to [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Normalisation {
    /// `x / 255`, the original design's `rescale=1./255`.
    Unit,
    /// `(x / 255 - mean[c]) / std[c]`.
    Standard { mean: Vec<f32>, std: Vec<f32> },
}

impl Normalisation {
    /// Per-channel `(scale, offset)` such that `value = pixel * scale + offset`, precomputed so
    /// the hot loop is one fused multiply-add per pixel.
    pub fn affine(&self, channels: usize) -> Vec<(f32, f32)> {
        (0..channels)
            .map(|c| match self {
                Normalisation::Unit => (1.0 / 255.0, 0.0),
                Normalisation::Standard { mean, std } => {
                    let m = mean.get(c).or(mean.first()).copied().unwrap_or(0.0);
                    let s = std.get(c).or(std.first()).copied().unwrap_or(1.0);
                    (1.0 / (255.0 * s), -m / s)
                }
            })
            .collect()
    }
}

/// The input a model expects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub height: u32,
    pub width: u32,
    pub colour_mode: ColourMode,
    pub normalisation: Normalisation,
}

impl InputSpec {
    /// The FER default: 48x48, x/255.
    pub fn fer(colour_mode: ColourMode) -> Self {
        InputSpec {
            height: 48,
            width: 48,
            colour_mode,
            normalisation: Normalisation::Unit,
        }
    }
    pub fn channels(&self) -> usize {
        self.colour_mode.channels()
    }
    /// Number of values in one preprocessed image (C*H*W).
    pub fn len(&self) -> usize {
        self.channels() * self.height as usize * self.width as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Metadata stored in every model file, beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Format version of the model file.
    pub format_version: u32,
    /// Human name of the model (e.g. the run name).
    pub name: String,
    /// Class names in the order of the model's outputs.
    pub classes: Vec<String>,
    pub input: InputSpec,
    /// The architecture, in emolens' own format (a JSON value, so this crate need not know it).
    pub architecture: serde_json::Value,
    /// The training configuration the weights came from, if trained by emolens.
    #[serde(default)]
    pub training: serde_json::Value,
    /// Fingerprint of the training data.
    #[serde(default)]
    pub data_fingerprint: Option<String>,
    /// Headline metrics (e.g. val_accuracy, test accuracy), name to value.
    #[serde(default)]
    pub metrics: std::collections::BTreeMap<String, f64>,
    /// Test-time augmentation: the model's answer for an image is the mean of its probabilities
    /// for the image and for its mirror image. Part of the model, so every consumer (predict,
    /// analyze, eval, serve) answers the same way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flip_tta: bool,
    /// With `flip_tta`, only images whose own top probability is below this are also run
    /// mirrored; confident answers stand after one pass. Chosen on validation data by
    /// `emolens model tune-tta`; absent, every image runs twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_tta_below: Option<f32>,
    /// Activation ranges for 8-bit inference, measured on real images by
    /// `emolens model quantize`. Without them the model runs in floating point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int8: Option<Int8Calibration>,
}

/// The ranges 8-bit inference quantizes to: the network's input and the output of each step
/// of its compiled form (the order `emolens_model::frozen` lists them in), measured by running
/// the weights in f32 on `images` real images. A range is `[min, max]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Int8Calibration {
    /// How many images the ranges were measured on.
    pub images: usize,
    /// Where they came from (a folder name and its fingerprint), for the model card.
    pub source: String,
    pub input: [f32; 2],
    pub steps: Vec<[f32; 2]>,
}

impl ModelMeta {
    pub const FORMAT_VERSION: u32 = 1;

    /// Checks the metadata is self-consistent; a model file that fails this is refused.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.format_version != Self::FORMAT_VERSION {
            return Err(CoreError::Meta(format!(
                "format version {} is not supported (this emolens reads version {}); re-export the model with this version",
                self.format_version,
                Self::FORMAT_VERSION
            )));
        }
        if self.classes.len() < 2 {
            return Err(CoreError::Meta(format!(
                "a classifier needs at least two classes, the file lists {}",
                self.classes.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.classes {
            if c.trim().is_empty() || !seen.insert(c) {
                return Err(CoreError::Meta(format!(
                    "class names must be distinct and non-empty, got {:?}",
                    self.classes
                )));
            }
        }
        if self.input.height == 0
            || self.input.width == 0
            || self.input.height > 1024
            || self.input.width > 1024
        {
            return Err(CoreError::Meta(format!(
                "input size {}x{} is out of range (1..=1024)",
                self.input.height, self.input.width
            )));
        }
        if let Normalisation::Standard { mean, std } = &self.input.normalisation {
            if mean.is_empty() || std.is_empty() || std.iter().any(|s| s.is_nan() || *s <= 0.0) {
                return Err(CoreError::Meta(
                    "standard normalisation needs a mean and a positive std per channel".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affine_matches_formula() {
        let n = Normalisation::Standard {
            mean: vec![0.5],
            std: vec![0.25],
        };
        let (s, o) = n.affine(1)[0];
        let px = 200.0f32;
        assert!((px * s + o - ((px / 255.0 - 0.5) / 0.25)).abs() < 1e-6);
        let (s, o) = Normalisation::Unit.affine(3)[2];
        assert!((255.0 * s + o - 1.0).abs() < 1e-7);
    }

    #[test]
    fn colour_mode_parses() {
        assert_eq!("RGB".parse::<ColourMode>().unwrap(), ColourMode::Rgb);
        assert_eq!(
            "grayscale".parse::<ColourMode>().unwrap(),
            ColourMode::Grayscale
        );
        assert!("cmyk".parse::<ColourMode>().is_err());
    }

    #[test]
    fn validate_rejects_duplicate_classes() {
        let m = ModelMeta {
            flip_tta: false,
            format_version: 1,
            name: "x".into(),
            classes: vec!["a".into(), "a".into()],
            input: InputSpec::fer(ColourMode::Grayscale),
            architecture: serde_json::Value::Null,
            training: serde_json::Value::Null,
            data_fingerprint: None,
            metrics: Default::default(),
            flip_tta_below: None,
            int8: None,
        };
        assert!(m.validate().unwrap_err().to_string().contains("distinct"));
    }
}
