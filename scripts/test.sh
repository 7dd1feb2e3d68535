#!/usr/bin/env bash
# The README's test command: installs what the tests need, builds the release binary exactly as
# the Dockerfile and scripts/main.sh do, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo build --release -p emolens
cargo test --release --workspace --no-fail-fast
# The vendored rustface (outside the workspace): its patched pyramid resize against the original.
# Its own target folder: it resolves its dependencies alone, and sharing would rebuild the workspace.
CARGO_TARGET_DIR="$PWD/target/vendor-rustface" cargo test --release --manifest-path vendor/rustface/Cargo.toml --lib
