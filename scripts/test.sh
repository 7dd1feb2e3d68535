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
# One cargo invocation for everything: features are unified over the packages a command
# selects, so `cargo build -p emolens` before `cargo test --workspace` can compile burn and
# others a second time with other features. `cargo test` builds the release binary
# (target/release/emolens, the program the CLI tests run) with the test binaries.
cargo test --release --workspace --no-fail-fast --no-run
phase "build (release binary and test binaries)"
cargo test --release --workspace --no-fail-fast
phase "tests"
# The vendored rustface (outside the workspace): its patched pyramid resize against the original.
# Its own target folder: it resolves its dependencies alone, and sharing would rebuild the workspace.
CARGO_TARGET_DIR="$PWD/target/vendor-rustface" cargo test --release --manifest-path vendor/rustface/Cargo.toml --lib
phase "vendored rustface"
