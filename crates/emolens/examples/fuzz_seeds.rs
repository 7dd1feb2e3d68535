//! Writes the fuzz targets' synthesized seed corpus (`fuzz/src/bin/seeds.rs`) from the normal
//! workspace build, for when no instrumented fuzz build is at hand:
//!   cargo run --release --example fuzz_seeds -- fuzz

#[path = "../../../fuzz/src/bin/seeds.rs"]
mod seeds;

fn main() {
    seeds::main();
}
