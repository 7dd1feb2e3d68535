//! The `.emolens` model file: one file a user can copy, holding the weights and everything
//! needed to use them (classes in output order, input size, colour mode, normalisation,
//! architecture, training configuration, data fingerprint, headline metrics).
//!
//! Layout (little-endian):
//! ```text
//! magic     8 bytes  "EMOLENS\0"
//! version   u32      container version (1)
//! meta_len  u64      length of the metadata JSON
//! meta      JSON     emolens_core::ModelMeta
//! w_len     u64      length of the weights
//! weights   burnpack the network's parameters (burn ModuleRecord bytes)
//! sha256    32 bytes SHA-256 of everything before it, so corruption is caught on load
//! ```

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use emolens_core::ModelMeta;
use sha2::{Digest, Sha256};

use crate::arch::Architecture;
use crate::error::ModelError;
use crate::net::Network;

const MAGIC: &[u8; 8] = b"EMOLENS\0";
const CONTAINER_VERSION: u32 = 1;

/// A model file's contents, parsed and checked but not yet turned into a network.
pub struct ModelFile {
    pub meta: ModelMeta,
    pub arch: Architecture,
    weights: Vec<u8>,
}

/// The container: magic, version, metadata JSON, weights, SHA-256 of everything before it.
fn container(meta: &ModelMeta, weights: &[u8]) -> Vec<u8> {
    let meta_json = serde_json::to_vec(meta).expect("model metadata serialises to JSON");
    let mut out = Vec::with_capacity(64 + meta_json.len() + weights.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&CONTAINER_VERSION.to_le_bytes());
    out.extend_from_slice(&(meta_json.len() as u64).to_le_bytes());
    out.extend_from_slice(&meta_json);
    out.extend_from_slice(&(weights.len() as u64).to_le_bytes());
    out.extend_from_slice(weights);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

impl ModelFile {
    /// Serialises a trained network with its metadata.
    pub fn encode(meta: &ModelMeta, net: Network) -> Result<Vec<u8>, ModelError> {
        let weights = net
            .into_record()
            .into_bytes()
            .map_err(|e| ModelError::Inference(format!("could not serialise weights: {e}")))?;
        Ok(container(meta, &weights))
    }

    /// The same weights with new metadata (e.g. a changed name, metrics or `flip_tta`); the
    /// metadata must still describe the weights.
    pub fn reencode(&self, meta: &ModelMeta) -> Result<Vec<u8>, ModelError> {
        if meta.input != self.meta.input
            || meta.classes != self.meta.classes
            || meta.architecture != self.meta.architecture
        {
            return Err(ModelError::Inference(
                "new metadata must keep the classes, input and architecture of the weights".into(),
            ));
        }
        Ok(container(meta, &self.weights))
    }

    /// Parses and checks a model file. `source_name` names it in errors.
    pub fn decode(bytes: &[u8], source_name: &str) -> Result<Self, ModelError> {
        let err = |detail: String| ModelError::ModelFile {
            source_name: source_name.to_string(),
            detail,
        };
        if bytes.len() < 8 + 4 + 8 + 8 + 32 || &bytes[..8] != MAGIC {
            return Err(err(
                "not an emolens model file (bad magic bytes); pass a file written by `emolens train`".into(),
            ));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != digest {
            return Err(err(
                "checksum mismatch: the file is corrupt or truncated; copy it again".into(),
            ));
        }
        let version = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes"));
        if version != CONTAINER_VERSION {
            return Err(err(format!(
                "container version {version} is not supported (this emolens reads {CONTAINER_VERSION})"
            )));
        }
        let mut pos: usize = 12;
        let mut take = |n: usize| -> Result<&[u8], ModelError> {
            let end = pos
                .checked_add(n)
                .filter(|&e| e <= body.len())
                .ok_or_else(|| {
                    err("truncated: a length field points past the end of the file".into())
                })?;
            let s = &body[pos..end];
            pos = end;
            Ok(s)
        };
        let meta_len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes")) as usize;
        let meta: ModelMeta = serde_json::from_slice(take(meta_len)?)
            .map_err(|e| err(format!("metadata is not valid: {e}")))?;
        meta.validate().map_err(|e| err(e.to_string()))?;
        let arch = Architecture::from_value(meta.architecture.clone())
            .map_err(|e| err(format!("embedded architecture: {e}")))?;
        let summary = arch
            .summarise(
                meta.input.channels(),
                meta.input.height as usize,
                meta.input.width as usize,
            )
            .map_err(|e| err(format!("embedded architecture: {e}")))?;
        if summary.outputs != meta.classes.len() {
            return Err(err(format!(
                "the network has {} outputs but the file lists {} classes",
                summary.outputs,
                meta.classes.len()
            )));
        }
        let w_len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes")) as usize;
        let weights = take(w_len)?.to_vec();
        Ok(ModelFile {
            meta,
            arch,
            weights,
        })
    }

    /// Builds the network and loads the weights into it, on `device`.
    pub fn network(&self, device: &Device) -> Result<Network, ModelError> {
        let input = &self.meta.input;
        let net = Network::new(
            &self.arch,
            input.channels(),
            input.height as usize,
            input.width as usize,
            device,
        )?;
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.weights.clone()))
            .map_err(|e| ModelError::ModelFile {
                source_name: self.meta.name.clone(),
                detail: format!("weights are unreadable: {e}"),
            })?;
        // burn panics (instead of answering an error) when a stored tensor's number type is not
        // the parameter's, e.g. integers where floats belong: found by fuzzing (fuzz/, target
        // `model_file`). Such a file was written wrongly or on purpose; refuse it by name.
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            net.try_load_record(record)
        }))
        .map_err(|panic| ModelError::ModelFile {
            source_name: self.meta.name.clone(),
            detail: format!(
                "weights are not stored as this version of emolens reads them ({}); re-export the model with `emolens model set`, or train it again",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a tensor of the wrong type")
            ),
        })?;
        loaded.map_err(|e| ModelError::ModelFile {
            source_name: self.meta.name.clone(),
            detail: format!("weights do not fit the architecture: {e}"),
        })
    }
}
