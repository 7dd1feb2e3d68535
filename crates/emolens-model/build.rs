//! Embeds the bundled default model (`models/default.emolens` at the repository root) and the
//! bundled fast model (`models/fast.emolens`) when they exist, so the `emolens` binary
//! classifies faces with no file beside it (`classifier::BUNDLED_MODEL`, `BUNDLED_FAST_MODEL`).
//!
//! The oneDNN shim is built by `emolens-dnnl-sys`; this script only passes on its answer to
//! whether it was (`DEP_DNNL_AVAILABLE`) as `cfg(emolens_onednn)`, which the `onednn` module and
//! the network's fast paths are compiled under.
use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(emolens_bundled_model)");
    println!("cargo::rustc-check-cfg=cfg(emolens_bundled_fast_model)");
    println!("cargo::rustc-check-cfg=cfg(emolens_onednn)");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let model = manifest.join("../../models/default.emolens");
    println!("cargo::rerun-if-changed={}", model.display());
    if let Ok(path) = model.canonicalize() {
        println!("cargo::rustc-cfg=emolens_bundled_model");
        println!("cargo::rustc-env=EMOLENS_BUNDLED_MODEL={}", path.display());
    }
    // The fast model, run when asked for (see `classifier::Bundled`).
    let fast = manifest.join("../../models/fast.emolens");
    println!("cargo::rerun-if-changed={}", fast.display());
    if let Ok(path) = fast.canonicalize() {
        println!("cargo::rustc-cfg=emolens_bundled_fast_model");
        println!(
            "cargo::rustc-env=EMOLENS_BUNDLED_FAST_MODEL={}",
            path.display()
        );
    }
    if std::env::var("DEP_DNNL_AVAILABLE").is_ok_and(|v| v == "1") {
        println!("cargo::rustc-cfg=emolens_onednn");
    }
}
