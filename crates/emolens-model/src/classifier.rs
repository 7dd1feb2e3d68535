//! [`EmotionClassifier`] over a burn network: the one inference path used by `predict`, `eval`,
//! `analyze` and the server.

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use emolens_core::{CoreError, EmotionClassifier, ModelMeta};

use crate::error::ModelError;
use crate::file::ModelFile;
use crate::net::Network;

/// The bundled default model's bytes, embedded at build time (see `build.rs`).
#[cfg(emolens_bundled_model)]
pub const BUNDLED_MODEL: Option<&[u8]> = Some(include_bytes!(env!("EMOLENS_BUNDLED_MODEL")));
#[cfg(not(emolens_bundled_model))]
pub const BUNDLED_MODEL: Option<&[u8]> = None;

/// A loaded model, ready for inference.
pub struct BurnClassifier {
    meta: ModelMeta,
    net: Network,
    device: Device,
}

impl std::fmt::Debug for BurnClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BurnClassifier")
            .field("model", &self.meta.name)
            .finish()
    }
}

impl BurnClassifier {
    pub fn from_bytes(
        bytes: &[u8],
        source_name: &str,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let file = ModelFile::decode(bytes, source_name)?;
        let net = file.network(device)?.valid();
        Ok(BurnClassifier {
            meta: file.meta,
            net,
            device: device.clone(),
        })
    }

    /// Logits for `n` preprocessed images.
    pub fn logits(&self, inputs: &[f32], n: usize) -> Result<Tensor<2>, ModelError> {
        let spec = &self.meta.input;
        if n == 0 || inputs.len() != n * spec.len() {
            return Err(ModelError::Inference(format!(
                "expected {n} images of {} values ({}x{}x{}), got {} values",
                spec.len(),
                spec.channels(),
                spec.height,
                spec.width,
                inputs.len()
            )));
        }
        let data = TensorData::new(
            inputs.to_vec(),
            [
                n,
                spec.channels(),
                spec.height as usize,
                spec.width as usize,
            ],
        );
        Ok(self.net.forward(Tensor::from_data(data, &self.device)))
    }
}

/// Planar (CHW) images, each row reversed: the mirror images.
fn mirror(inputs: &[f32], width: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(inputs.len());
    for row in inputs.chunks(width) {
        out.extend(row.iter().rev());
    }
    out
}

impl EmotionClassifier for BurnClassifier {
    fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    fn predict(&self, inputs: &[f32], n: usize) -> Result<Vec<Vec<f32>>, CoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        // With flip TTA the mirror images ride in the same batch, and each answer is the mean
        // of an image's two probability vectors.
        let batch = if self.meta.flip_tta {
            let mut both = inputs.to_vec();
            both.extend(mirror(inputs, self.meta.input.width as usize));
            std::borrow::Cow::Owned(both)
        } else {
            std::borrow::Cow::Borrowed(inputs)
        };
        let rows = if self.meta.flip_tta { 2 * n } else { n };
        let logits = self
            .logits(&batch, rows)
            .map_err(|e| CoreError::Inference(e.to_string()))?;
        let probs = softmax(logits, 1).into_data();
        let flat: Vec<f32> = probs
            .try_to_vec::<f32>()
            .map_err(|e| CoreError::Inference(format!("reading probabilities: {e:?}")))?;
        let k = self.meta.classes.len();
        Ok((0..n)
            .map(|i| {
                let p = &flat[i * k..(i + 1) * k];
                if self.meta.flip_tta {
                    let q = &flat[(n + i) * k..(n + i + 1) * k];
                    p.iter().zip(q).map(|(a, b)| (a + b) / 2.0).collect()
                } else {
                    p.to_vec()
                }
            })
            .collect())
    }
}

/// The device inference runs on: the CPU (flex backend) unless a GPU backend was compiled in
/// and `EMOLENS_DEVICE` asks for it.
pub fn inference_device() -> Device {
    match std::env::var("EMOLENS_DEVICE").as_deref() {
        #[cfg(feature = "cuda")]
        Ok("cuda") => Device::cuda(0),
        #[cfg(feature = "wgpu")]
        Ok("wgpu") => Device::wgpu(Default::default()),
        _ => Device::flex(),
    }
}

/// Loads a model: the given file, or the bundled default model when `path` is `None`.
pub fn load_classifier(path: Option<&Path>) -> Result<Arc<dyn EmotionClassifier>, ModelError> {
    let device = inference_device();
    let c = match path {
        Some(p) => {
            let bytes = std::fs::read(p).map_err(|e| ModelError::Io {
                path: p.to_path_buf(),
                detail: format!("cannot read model file: {e}"),
            })?;
            BurnClassifier::from_bytes(&bytes, &p.display().to_string(), &device)?
        }
        None => {
            let bytes = BUNDLED_MODEL.ok_or_else(|| ModelError::ModelFile {
                source_name: "bundled".into(),
                detail: "this build has no bundled model (models/default.emolens was missing at build time); pass --model FILE".into(),
            })?;
            BurnClassifier::from_bytes(bytes, "bundled default model", &device)?
        }
    };
    Ok(Arc::new(c))
}
