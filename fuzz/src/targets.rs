//! The fuzz targets' bodies for images and requests: each takes arbitrary bytes through a path
//! the server takes with untrusted input, with the limits it applies (the model-file and
//! architecture targets are in `model_targets.rs`). Shared by the AFL binaries
//! (`fuzz/src/bin/*.rs`) and by the workspace's corpus replay test
//! (`crates/emolens/tests/cli/fuzz_corpus.rs`, which includes this file), so CI runs every
//! corpus file through exactly what was fuzzed. A target returns normally for any input (errors
//! are answers); a panic, a hang or an allocation past the limits is a finding.

use emolens_core::{decode_image, probe_image, DecodeLimits};
use emolens_server::ServerConfig;

/// The server's limits, scaled down so one input stays cheap: images up to 2048 px a side and
/// 64 MiB of decoder memory.
fn limits() -> DecodeLimits {
    DecodeLimits {
        max_side: 2048,
        max_alloc: 64 << 20,
    }
}

/// Image decoding as uploads go through it: the header probe that reserves decode memory, then
/// the decode within the limits. The probe must never promise less than the decode delivers.
/// True when the input decoded.
pub fn image(data: &[u8]) -> bool {
    let limits = limits();
    let probed = probe_image(data, "fuzz", &limits);
    let decoded = decode_image(data, "fuzz", &limits);
    if let (Ok(info), Ok(img)) = (&probed, &decoded) {
        // EXIF orientation may swap the sides.
        let sides = [(img.width(), img.height()), (img.height(), img.width())];
        assert!(
            sides.contains(&(info.width, info.height)),
            "probe said {}x{}, decode gave {}x{}",
            info.width,
            info.height,
            img.width(),
            img.height()
        );
        assert!(img.as_bytes().len() as u64 <= info.decoded_bytes.max(1) * 4);
    }
    let Ok(img) = decoded else {
        return false;
    };
    // The one preprocessing path, for a grey 48x48 model.
    let pre = emolens_core::Preprocessor::new(emolens_core::InputSpec::fer(
        emolens_core::ColourMode::Grayscale,
    ));
    assert_eq!(pre.prepare(&img, None).len(), 48 * 48);
    true
}

/// Request bodies: the first byte picks the parser (analyze JSON, TF-Serving JSON, multipart),
/// the rest is the body. True when the body was accepted.
pub fn request(data: &[u8]) -> bool {
    let Some((&which, body)) = data.split_first() else {
        return false;
    };
    let config = ServerConfig {
        max_files: 8,
        max_image_bytes: 64 << 10,
        ..ServerConfig::default()
    };
    match which % 3 {
        0 => {
            let Ok((uploads, _)) = emolens_server::upload::read_json(body, &config) else {
                return false;
            };
            assert!(!uploads.is_empty() && uploads.len() <= config.max_files);
            for u in &uploads {
                assert!(u.bytes.len() <= config.max_image_bytes);
            }
            true
        }
        1 => {
            let (max_instances, max_values) = (16, 48 * 48);
            let Ok(r) = emolens_server::tfparse::parse_predict(body, max_instances, max_values)
            else {
                return false;
            };
            assert!(!r.instances.is_empty() && r.instances.len() <= max_instances);
            for i in &r.instances {
                if let emolens_server::tfparse::Instance::Numbers { values, shape } = i {
                    assert!(values.len() <= max_values);
                    assert!(values.iter().all(|v| v.is_finite()));
                    let n: usize = shape.iter().product();
                    assert!(shape.len() <= 4 && (n == values.len() || values.is_empty()));
                }
            }
            true
        }
        _ => {
            let ct = "multipart/form-data; boundary=fuzzboundary";
            let Ok(uploads) =
                emolens_server::upload::read_multipart_bytes(body.to_vec(), ct, &config)
            else {
                return false;
            };
            assert!(!uploads.is_empty() && uploads.len() <= config.max_files);
            for u in &uploads {
                assert!(u.bytes.len() <= config.max_image_bytes);
            }
            true
        }
    }
}
