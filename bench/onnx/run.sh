#!/usr/bin/env bash
# The bundled model exported to ONNX and run in ONNX Runtime (Python, PyPI onnxruntime) against
# emolens' own compiled oneDNN plan, in the same run on this CPU: median latency of one face
# (batch 1, one thread pinned to one core) and the throughput of batches of 64 faces (one thread
# on one core, two threads on two cores). Both sides run the network alone, flip TTA off (the
# ONNX graph has no TTA; `model set --flip-tta false`), on faces prepared before the clock starts;
# both include the softmax. emolens runs in f32 (the ONNX graph's format) and in its automatic
# format on this CPU (int8 where the bundled model's calibration and AVX2 allow, bf16 or f32
# elsewhere). Cells run in rotating order each round; figures are medians over rounds. A
# benchmark, not a test.
#
#   bench/onnx/run.sh [ROUNDS] [SECONDS]      defaults: 3 rounds, 3 s per cell
#
# Needs FER2013 (../shared/data/fer2013/test: every 14th file) and .venv-test with onnxruntime
# (scripts/install-test-deps.sh; or EMOLENS_TEST_PYTHON). EMOLENS_BENCH_NO_BUILD=1 uses the
# binaries already in target/release.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
seconds=${2:-3}
data=${EMOLENS_SHARED:-../shared}/data/fer2013/test
python=${EMOLENS_TEST_PYTHON:-.venv-test/bin/python}
"$python" -c 'import onnxruntime' 2>/dev/null || {
  echo "$python has no onnxruntime: run scripts/install-test-deps.sh or set EMOLENS_TEST_PYTHON" >&2
  exit 1
}
if [ -z "${EMOLENS_BENCH_NO_BUILD:-}" ]; then
  # --workspace: the same features as every other build here (no rebuild of the dependencies).
  cargo build --release -q --workspace --bin emolens --example classifier_speed
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
find "$data" -type f | LC_ALL=C sort | awk 'NR % 14 == 1' > "$work/files.txt"
bin=target/release/emolens
$bin model set models/default.emolens --flip-tta false --out "$work/none.emolens" 2>/dev/null
$bin model export "$work/none.emolens" --format onnx --out "$work/model.onnx" 2>/dev/null
scripts/cpu-info.sh
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" >&2
# Cells: runtime:mode:threads.
cells=()
for rt in onnxruntime emolens-f32 emolens-auto; do
  cells+=("$rt:latency:1" "$rt:throughput:1" "$rt:throughput:2")
done
for r in $(seq "$rounds"); do
  n=${#cells[@]}
  for i in $(seq 0 $((n - 1))); do
    cell=${cells[$(((i + r) % n))]}
    IFS=: read -r rt mode threads <<< "$cell"
    cores=0
    [ "$threads" = 2 ] && cores=0,1
    if [ "$rt" = onnxruntime ]; then
      line=$(taskset -c "$cores" "$python" tools/onnx/ort_check.py bench "$work/model.onnx" \
        $(cat "$work/files.txt") --mode "$mode" --threads "$threads" --batch 64 --seconds "$seconds" | tail -n 1)
    else
      precision=f32
      [ "$rt" = emolens-auto ] && precision=
      line=$(EMOLENS_PRECISION=$precision OMP_NUM_THREADS=$threads RAYON_NUM_THREADS=$threads \
        taskset -c "$cores" target/release/examples/classifier_speed --model "$work/none.emolens" \
        --list "$work/files.txt" --mode "$mode" --batch 64 --seconds "$seconds" 2>/dev/null | tail -n 1)
    fi
    echo "$rt $mode $threads $line" >> "$work/out.txt"
  done
done
python3 - "$work/out.txt" "$(wc -l < "$work/files.txt")" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    rt, mode, threads, js = line.split(" ", 3)
    rows.setdefault((rt, mode, threads), []).append(json.loads(js))
def med(v, f):
    return statistics.median(f(d) for d in v)
names = {"onnxruntime": "ONNX Runtime (exported)", "emolens-f32": "emolens plan, f32", "emolens-auto": "emolens plan, automatic"}
rounds = len(next(iter(rows.values())))
print(f"{sys.argv[2]} FER2013 test faces, flip TTA off; medians over {rounds} rounds")
print(f"{'runtime':<26} {'format':<38} {'1 face, 1 thread (ms)':>22} {'batch 64, 1 thread (img/s)':>27} {'batch 64, 2 threads (img/s)':>28}")
for rt in ("onnxruntime", "emolens-f32", "emolens-auto"):
    lat = rows[(rt, "latency", "1")]
    fmt = lat[0]["tool"] if rt == "onnxruntime" else lat[0]["runtime"]
    print(f"{names[rt]:<26} {fmt:<38} {med(lat, lambda d: d['latency_ms']['median']):>22.3f}"
          f" {med(rows[(rt, 'throughput', '1')], lambda d: d['throughput_median_batch_images_per_s']):>27.0f}"
          f" {med(rows[(rt, 'throughput', '2')], lambda d: d['throughput_median_batch_images_per_s']):>28.0f}")
PY
