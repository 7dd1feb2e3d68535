//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets' own
//! code (`fuzz/src/targets.rs` and `model_targets.rs`, included here), so CI checks that no input that was ever kept
//! by the fuzzer (or synthesized as a seed) panics, hangs or breaks a limit. The fuzzing itself
//! runs with cargo-afl: see fuzz/README.md.

#[path = "../../../../fuzz/src/model_targets.rs"]
mod model_targets;
#[path = "../../../../fuzz/src/targets.rs"]
mod targets;

use std::path::PathBuf;
use std::time::{Duration, Instant};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} is missing ({e})", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn replay(target: &str, run: fn(&[u8])) {
    let start = Instant::now();
    let files = corpus(target);
    for (path, bytes) in &files {
        let t = Instant::now();
        if let Err(e) = std::panic::catch_unwind(|| run(bytes)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{target}: {} panics: {msg}", path.display());
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{target}: {} took {:?}",
            path.display(),
            t.elapsed()
        );
    }
    eprintln!(
        "{target}: {} corpus files replayed in {:?}",
        files.len(),
        start.elapsed()
    );
}

#[test]
fn image_corpus_replays_cleanly() {
    replay("image", targets::image);
}

#[test]
fn request_corpus_replays_cleanly() {
    replay("request", targets::request);
}

#[test]
fn model_file_corpus_replays_cleanly() {
    replay("model_file", model_targets::model_file);
}

#[test]
fn architecture_corpus_replays_cleanly() {
    replay("architecture", model_targets::architecture);
}
