//! Builds the shim (`csrc/*.c`, declared in `include/emolens_dnnl.h`) against the system's
//! oneDNN and generates its Rust bindings from the header, when oneDNN's headers are installed
//! (Debian: `libdnnl-dev`; elsewhere `DNNL_INCLUDE_DIR`). `EMOLENS_ONEDNN=0` at build time
//! leaves it out. Either way it sets `cfg(emolens_onednn)` for this crate and says to the
//! crates that depend on this one whether it did, as `DEP_DNNL_AVAILABLE` (`1` or `0`).
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(emolens_onednn)");
    println!("cargo::rerun-if-env-changed=EMOLENS_ONEDNN");
    println!("cargo::rerun-if-env-changed=DNNL_INCLUDE_DIR");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let built = std::env::var("EMOLENS_ONEDNN").map_or(true, |v| v != "0") && build(&manifest);
    println!("cargo::metadata=available={}", u8::from(built));
    if built {
        println!("cargo::rustc-cfg=emolens_onednn");
    }
}

/// Compiles and links the shim and writes the bindings; false (with a warning) when oneDNN's
/// headers are missing.
fn build(manifest: &Path) -> bool {
    let include = std::env::var("DNNL_INCLUDE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/include"));
    let dnnl_header = include.join("oneapi/dnnl/dnnl.h");
    println!("cargo::rerun-if-changed={}", dnnl_header.display());
    if !dnnl_header.exists() {
        println!(
            "cargo::warning=oneDNN headers not found at {}: building without the oneDNN CPU kernels (about 2-3x slower training); install libdnnl-dev to get them",
            dnnl_header.display()
        );
        return false;
    }
    let header = manifest.join("include/emolens_dnnl.h");
    let csrc = manifest.join("csrc");
    let sources = ["common.c", "layers.c", "plan.c"].map(|f| csrc.join(f));
    println!("cargo::rerun-if-changed={}", header.display());
    println!(
        "cargo::rerun-if-changed={}",
        csrc.join("internal.h").display()
    );
    for file in &sources {
        println!("cargo::rerun-if-changed={}", file.display());
    }
    cc::Build::new()
        .files(&sources)
        .include(&include)
        .include(manifest.join("include"))
        .opt_level(2)
        .warnings(true)
        .compile("emolens_dnnl");
    println!("cargo::rustc-link-lib=dylib=dnnl");
    // Debian's oneDNN runs on GNU OpenMP; the shim sets its per-thread thread count.
    println!("cargo::rustc-link-lib=dylib=gomp");
    bindings(&header);
    true
}

/// `$OUT_DIR/bindings.rs`: every `emo_*` function and type of the header, the post-op kinds as
/// a Rust enum, and bindgen's compile-time checks of the `emo_post` layout against the header.
fn bindings(header: &Path) {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("bindings.rs");
    bindgen::Builder::default()
        .header(header.to_str().expect("a UTF-8 path"))
        .allowlist_function("emo_.*")
        .allowlist_type("emo_.*")
        .rustified_enum("emo_post_kind")
        .prepend_enum_name(false)
        .layout_tests(true)
        .generate()
        .expect("generating the bindings of include/emolens_dnnl.h (bindgen needs libclang: Debian's libclang-dev)")
        .write_to_file(&out)
        .expect("writing the bindings");
}
