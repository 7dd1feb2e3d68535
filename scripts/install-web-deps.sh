#!/usr/bin/env bash
# The on-device page's browser runtimes (onnxruntime-web, @vladmandic/face-api) from the npm
# registry, pinned by web/vendor/package-lock.json, into web/vendor/node_modules: `emolens serve`
# serves them itself (--web-vendor-dir), so the page fetches nothing from a CDN. Idempotent.
set -euo pipefail
vendor="$(cd "$(dirname "$0")/.." && pwd)/web/vendor"
if [ ! -f "$vendor/node_modules/onnxruntime-web/dist/ort.wasm.min.js" ] ||
  [ ! -f "$vendor/node_modules/@vladmandic/face-api/dist/face-api.js" ]; then
  command -v npm >/dev/null 2>&1 || { echo "npm is missing: apt-get install npm (Node.js 18+)" >&2; exit 1; }
  (cd "$vendor" && npm ci --no-audit --no-fund --loglevel=error)
fi
