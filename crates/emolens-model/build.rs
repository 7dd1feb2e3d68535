//! Embeds the bundled default model (`models/default.emolens` at the repository root) and the
//! bundled fast model (`models/fast.emolens`) when they exist, so the `emolens` binary classifies faces with no file beside it; and builds the
//! oneDNN fast path (`csrc/emolens_dnnl.c`) when oneDNN's headers are installed (Debian:
//! `libdnnl-dev`). `EMOLENS_ONEDNN=0` at build time leaves it out.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(emolens_bundled_model)");
    println!("cargo::rustc-check-cfg=cfg(emolens_onednn)");
    println!("cargo::rustc-check-cfg=cfg(emolens_bundled_fast_model)");
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
    onednn(&manifest);
}

fn onednn(manifest: &Path) {
    println!("cargo::rerun-if-env-changed=EMOLENS_ONEDNN");
    println!("cargo::rerun-if-env-changed=DNNL_INCLUDE_DIR");
    let shim = manifest.join("csrc/emolens_dnnl.c");
    println!("cargo::rerun-if-changed={}", shim.display());
    if std::env::var("EMOLENS_ONEDNN").is_ok_and(|v| v == "0") {
        return;
    }
    let include = std::env::var("DNNL_INCLUDE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/include"));
    let header = include.join("oneapi/dnnl/dnnl.h");
    println!("cargo::rerun-if-changed={}", header.display());
    if !header.exists() {
        println!(
            "cargo::warning=oneDNN headers not found at {}: building without the oneDNN CPU kernels (about 2-3x slower training); install libdnnl-dev to get them",
            header.display()
        );
        return;
    }
    cc::Build::new()
        .file(&shim)
        .include(&include)
        .opt_level(2)
        .warnings(true)
        .compile("emolens_dnnl");
    println!("cargo::rustc-link-lib=dylib=dnnl");
    // Debian's oneDNN runs on GNU OpenMP; the shim sets its per-thread thread count.
    println!("cargo::rustc-link-lib=dylib=gomp");
    println!("cargo::rustc-cfg=emolens_onednn");
}
