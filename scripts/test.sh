#!/usr/bin/env bash
# The README's test command: installs what the tests need, builds the release binary and the
# test binaries, then runs every test of the workspace. Prints how long
# each phase took (CI must stay under 30 minutes on 2 cores).
#
# Each crate's integration tests are one binary (tests/<crate>/main.rs): every test binary links
# burn, oneDNN and the image stack, so one per file cost a link and a codegen of the same
# generic code each. Examples and doctests are not built here (see the crates' Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
phase() { echo "== $1: $(( SECONDS - start ))s (total ${SECONDS}s)"; start=$SECONDS; }
start=$SECONDS
scripts/install-test-deps.sh
phase "test dependencies"
scripts/cpu-info.sh
# One build for everything, with the feature set of the tests: cargo unifies features over the
# targets it selects, and dev-dependencies (tempfile) turn on `std` of bitflags and `default` of
# fastrand, which reach burn's and the image stack's dependencies; a `cargo build` without the
# test targets would compile most of the tree a second time. `--lib` also builds the Python
# extension (crates/emolens-py), `--bins` the release binary the CLI and Python tests run.
cargo build --release --workspace --lib --bins --tests
phase "build (release binary, Python extension and test binaries)"
cargo test --release --workspace --no-fail-fast
phase "tests"
# The vendored rustface (outside the workspace): its patched pyramid resize against the original.
# Its own target folder: it resolves its dependencies alone, and sharing would rebuild the workspace.
CARGO_TARGET_DIR="$PWD/target/vendor-rustface" cargo test --release --manifest-path vendor/rustface/Cargo.toml --lib
phase "vendored rustface"
# The Python package: its wheel packed from the build above, pytest in a fresh venv.
scripts/test-python.sh
phase "Python package"
