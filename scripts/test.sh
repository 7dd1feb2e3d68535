#!/usr/bin/env bash
# The README's test command: installs what the tests need, builds the release binary exactly as
# the Dockerfile and scripts/main.sh do, then runs every test of the workspace. Prints how long
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
cargo build --release -p emolens
phase "release build"
cargo test --release --workspace --no-fail-fast --no-run
phase "test build"
cargo test --release --workspace --no-fail-fast
phase "tests"
# The vendored rustface (outside the workspace): its patched pyramid resize against the original.
# Its own target folder: it resolves its dependencies alone, and sharing would rebuild the workspace.
CARGO_TARGET_DIR="$PWD/target/vendor-rustface" cargo test --release --manifest-path vendor/rustface/Cargo.toml --lib
phase "vendored rustface"
