#!/usr/bin/env bash
# oneDNN kernel choices emolens made, measured: the dense layer's data gradient as oneDNN 2.6's
# inner-product primitive vs the brgemm matmul emolens uses, on model_2_best's 6400 x 2048
# layer at batch 16, 64 and 256 on one thread and 64 on two. A benchmark, not a test.
#
#   bench/kernels/run.sh          needs gcc and libdnnl-dev (scripts/install-test-deps.sh)
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -O2 -o "$out/dense_backward" dense_backward.c -ldnnl -lm
for n in 16 64 256; do OMP_NUM_THREADS=1 "$out/dense_backward" "$n" 6400 2048; done
echo "two threads:"
OMP_NUM_THREADS=2 "$out/dense_backward" 64 6400 2048
