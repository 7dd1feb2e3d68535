//! The fuzz targets' bodies for model files and architecture files (which need emolens-model,
//! and with it burn: a build of its own, the `model` feature). Shared, as `targets.rs`, by the
//! AFL binaries and the workspace's corpus replay test.

/// The raw SHA-256 of `bytes`.
fn sha256(bytes: &[u8]) -> Vec<u8> {
    let hex = emolens_core::fingerprint::sha256_hex(bytes);
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digest"))
        .collect()
}

/// Networks at most this large are built (their weights loaded) by the targets; the parsers
/// see every architecture.
const MAX_BUILT_PARAMS: usize = 1 << 18;

/// Model-file loading: the input is a model file without its trailing checksum (the target
/// appends the right one, so the fuzzer gets past it); the file is parsed and checked, and
/// small networks are built and their weights loaded. True when the file decoded.
pub fn model_file(data: &[u8]) -> bool {
    let mut file = data.to_vec();
    file.extend(sha256(data));
    let Ok(m) = emolens_model::ModelFile::decode(&file, "fuzz") else {
        return false;
    };
    let input = &m.meta.input;
    let Ok(summary) = m.arch.summarise(
        input.channels(),
        input.height as usize,
        input.width as usize,
    ) else {
        return true;
    };
    if summary.params <= MAX_BUILT_PARAMS && input.height <= 128 && input.width <= 128 {
        let _ = m.network(&emolens_model::inference_device());
    }
    true
}

/// Architecture files (the original design's JSON, Keras model JSON, emolens's own): parsed,
/// summarised for a 48x48 grey input, and built when small. True when it parsed.
pub fn architecture(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(imp) = emolens_model::parse_architecture(text, "fuzz") else {
        return false;
    };
    let _ = imp.arch.to_json();
    let Ok(summary) = imp.arch.summarise(1, 48, 48) else {
        return true;
    };
    if summary.params <= MAX_BUILT_PARAMS {
        let _ =
            emolens_model::Network::new(&imp.arch, 1, 48, 48, &emolens_model::inference_device());
    }
    true
}
