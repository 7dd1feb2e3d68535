#!/usr/bin/env bash
# System packages the test suite needs (idempotent; skips what is already there).
set -euo pipefail
need=()
# (test dependencies are added here as the suites that need them land)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
