#!/usr/bin/env bash
# System packages the test suite needs (idempotent; skips what is already there).
set -euo pipefail
need=()
# (test dependencies are added here as the suites that need them land)
# emolens-server: PostgreSQL (its tests start a private server with initdb/pg_ctl in a tempdir),
# chromium + node for the browser test (playwright-core drives Debian's chromium).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
# emolens-model: oneDNN, the CPU convolution/batch-norm/pooling kernels (tests check parity with burn's).
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || need+=(libdnnl-dev)
# emolens ONNX export tests: Python with venv, for ONNX Runtime from PyPI (below).
command -v python3 >/dev/null 2>&1 || need+=(python3)
if command -v dpkg >/dev/null 2>&1; then dpkg -s python3-venv >/dev/null 2>&1 || need+=(python3-venv); fi
# emolens-video: FFmpeg's libraries (the binary decodes videos; the tests encode theirs with
# libx264/libvpx, which Debian's libavcodec brings), pkg-config to find them, and libclang for
# the binding generator (ffmpeg-sys-next runs bindgen; so does emolens-dnnl-sys, on the header
# of emolens' oneDNN shim).
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if ! pkg-config --exists libavcodec libavformat libavutil libswscale 2>/dev/null; then
  need+=(libavcodec-dev libavformat-dev libavutil-dev libswscale-dev)
fi
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need+=(libclang-dev clang)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
# emolens-server browser test: playwright-core (no browser download; it uses /usr/bin/chromium).
browser_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
if [ ! -d "$browser_tests/node_modules/playwright-core" ]; then
  (cd "$browser_tests" && npm ci --no-audit --no-fund --loglevel=error)
fi
# The on-device page's browser runtimes (its browser test runs them; `emolens serve` serves them).
"$(dirname "$0")/install-web-deps.sh"
# emolens ONNX export tests (crates/emolens/tests/cli/onnx.rs): onnxruntime, numpy and pillow
# from PyPI, pinned in tools/onnx/requirements.txt, in .venv-test (git-ignored).
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-test"
if ! "$venv/bin/python" -c 'import onnxruntime, numpy, PIL' >/dev/null 2>&1; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$root/tools/onnx/requirements.txt"
fi
# The Python package (crates/emolens-py, scripts/test-python.sh) needs nothing more here: its
# wheel is packed from the workspace build, and its test venv installs its own requirements.
