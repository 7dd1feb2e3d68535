#!/usr/bin/env bash
# The README's main command: builds emolens, then finds and classifies every face in the example
# photos with the bundled model, printing per-face results and writing annotated copies.
set -euo pipefail
cd "$(dirname "$0")/.."
# oneDNN gives the CPU kernels (2-3x faster); without it emolens builds on burn's own kernels.
if [ ! -f /usr/include/oneapi/dnnl/dnnl.h ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libdnnl-dev >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libdnnl-dev; } \
    || echo "note: libdnnl-dev could not be installed; building with burn's kernels"
fi
# FFmpeg's libraries (video decoding; required), pkg-config and libclang (the generator of the
# FFmpeg bindings and of the oneDNN shim's).
if ! { command -v pkg-config >/dev/null && pkg-config --exists libavcodec libavformat libavutil libswscale \
       && ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1; }; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq pkg-config libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libclang-dev clang
  else
    echo "emolens needs FFmpeg's development files: as root, run" >&2
    echo "  apt-get install pkg-config libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libclang-dev clang" >&2
    exit 1
  fi
fi
cargo build --release -p emolens
mkdir -p out/annotated
./target/release/emolens analyze assets/photos --annotate out/annotated
echo "annotated copies: out/annotated/"
