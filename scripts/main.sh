#!/usr/bin/env bash
# The README's main command: builds emolens, then finds and classifies every face in the example
# photos with the bundled model, printing per-face results and writing annotated copies.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p emolens
mkdir -p out/annotated
./target/release/emolens analyze assets/photos --annotate out/annotated
echo "annotated copies: out/annotated/"
