//! Embeds the bundled default model (`models/default.emolens` at the repository root) when it
//! exists, so the `emolens` binary classifies faces with no file beside it.
use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(emolens_bundled_model)");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let model = manifest.join("../../models/default.emolens");
    println!("cargo::rerun-if-changed={}", model.display());
    if let Ok(path) = model.canonicalize() {
        println!("cargo::rustc-cfg=emolens_bundled_model");
        println!("cargo::rustc-env=EMOLENS_BUNDLED_MODEL={}", path.display());
    }
}
