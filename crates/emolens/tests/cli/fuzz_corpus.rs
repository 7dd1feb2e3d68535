//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets' own
//! code (`fuzz/src/targets.rs` and `model_targets.rs`, included here), so CI checks that no input that was ever kept
//! by the fuzzer (or synthesized as a seed) panics, hangs or breaks a limit; then a seeded
//! mutation pass over the corpus (bit flips, interesting values, cuts, splices), short in CI, as
//! long as `EMOLENS_FUZZ_SECONDS` says per target when run by hand. The coverage-guided fuzzing
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

/// A small seeded generator (xorshift64*), so a CI failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `input` (with `other`, another corpus file, for splices).
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len());
        match rng.below(8) {
            0 if !v.is_empty() => v[at] ^= 1 << rng.below(8),
            1 if !v.is_empty() => {
                v[at] = [0, 0xFF, 0x7F, 0x80, b'0', b'[', b'"', b'-'][rng.below(8)]
            }
            2 if v.len() >= 4 => {
                let x = [0u32, u32::MAX, 0x7FFF_FFFF, 0x8000_0000, 65_535, 60_000][rng.below(6)];
                let at = rng.below(v.len() - 3);
                v[at..at + 4].copy_from_slice(&x.to_be_bytes());
            }
            3 => v.truncate(at),
            4 if !v.is_empty() => {
                let len = rng.below((v.len() - at).min(64)) + 1;
                let piece = v[at..(at + len).min(v.len())].to_vec();
                let to = rng.below(v.len());
                v.splice(to..to, piece);
            }
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            6 if !v.is_empty() => {
                v.remove(at.min(v.len() - 1));
            }
            _ => v.insert(at.min(v.len()), rng.next() as u8),
        }
    }
    v
}

/// Runs `run` on mutations of the corpus: `EMOLENS_FUZZ_SECONDS` seconds when set, otherwise 30
/// mutations of each file.
fn mutations(target: &str, run: fn(&[u8]) -> bool) {
    let files = corpus(target);
    let seconds: Option<f64> = std::env::var("EMOLENS_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ target.len() as u64);
    let start = Instant::now();
    let mut execs = 0u64;
    'outer: for round in 0.. {
        for (i, (path, bytes)) in files.iter().enumerate() {
            let done = match seconds {
                Some(s) => start.elapsed().as_secs_f64() >= s,
                None => round >= 30,
            };
            if done {
                break 'outer;
            }
            let other = &files[rng.below(files.len())].1;
            let input = mutate(&mut rng, bytes, other);
            let t = Instant::now();
            if std::panic::catch_unwind(|| run(&input)).is_err() {
                let keep = std::env::temp_dir().join(format!("emolens-fuzz-{target}-{round}-{i}"));
                std::fs::write(&keep, &input).unwrap();
                panic!(
                    "{target}: a mutation of {} panics; the input is {}",
                    path.display(),
                    keep.display()
                );
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{target}: a mutation of {} took {:?}",
                path.display(),
                t.elapsed()
            );
            execs += 1;
        }
    }
    eprintln!(
        "{target}: {execs} mutations in {:.1} s, none failed",
        start.elapsed().as_secs_f64()
    );
}

fn replay(target: &str, run: fn(&[u8]) -> bool) {
    let start = Instant::now();
    let files = corpus(target);
    let mut accepted = 0;
    for (path, bytes) in &files {
        let t = Instant::now();
        match std::panic::catch_unwind(|| run(bytes)) {
            Ok(true) => accepted += 1,
            Ok(false) => {}
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("{target}: {} panics: {msg}", path.display());
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{target}: {} took {:?}",
            path.display(),
            t.elapsed()
        );
    }
    // The seeds reach past the first checks (a target refusing everything tests nothing).
    assert!(accepted > 0, "{target}: no corpus file was accepted");
    eprintln!(
        "{target}: {} corpus files replayed in {:?} ({accepted} accepted)",
        files.len(),
        start.elapsed()
    );
}

#[test]
fn image_corpus_replays_cleanly() {
    replay("image", targets::image);
    mutations("image", targets::image);
}

#[test]
fn request_corpus_replays_cleanly() {
    replay("request", targets::request);
    mutations("request", targets::request);
}

#[test]
fn model_file_corpus_replays_cleanly() {
    replay("model_file", model_targets::model_file);
    mutations("model_file", model_targets::model_file);
}

#[test]
fn architecture_corpus_replays_cleanly() {
    replay("architecture", model_targets::architecture);
    mutations("architecture", model_targets::architecture);
}
