#!/usr/bin/env bash
# The README's main command: builds emolens and runs the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p emolens
./target/release/emolens data stats ../shared/data/fer2013
