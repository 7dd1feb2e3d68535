//! Loading-speed benchmark (not a test): decodes all of FER2013 train into the in-memory u8
//! training cache and prints images per second.
//!
//! `cargo run --release -p emolens-data --example load_speed [-- DATASET_DIR]`
//! (default: `emolens_core::paths::fer2013_dir()`; `RAYON_NUM_THREADS` sets the threads).

use emolens_core::{ColourMode, InputSpec, Preprocessor};
use emolens_data::{load_cache, open_for_training};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(emolens_core::paths::fer2013_dir);
    let t = Instant::now();
    let splits = match open_for_training(&dir, 0.0, 0) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let scan_s = t.elapsed().as_secs_f64();
    println!(
        "dataset: {} ({} train files, scanned in {scan_s:.3} s)",
        dir.display(),
        splits.train.len()
    );
    println!("threads: {}", rayon::current_num_threads());
    for mode in [ColourMode::Grayscale, ColourMode::Rgb] {
        let pre = Preprocessor::new(InputSpec::fer(mode));
        let t = Instant::now();
        let (cache, problems) = load_cache(&splits.train, &pre, false);
        let s = t.elapsed().as_secs_f64();
        println!(
            "{:>9}: {} images in {s:.2} s = {:.0} images/s, {} skipped, cache {:.1} MiB, fingerprint {}",
            mode.name(),
            cache.len(),
            cache.len() as f64 / s,
            problems.len(),
            cache.pixels.len() as f64 / (1 << 20) as f64,
            &cache.fingerprint()[..16]
        );
    }
}
