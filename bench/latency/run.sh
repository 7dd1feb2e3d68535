#!/usr/bin/env bash
# One face through the bundled model: latency at batch 1 on one thread and one core, for each
# number format (int8, bf16, f32) and each test-time augmentation (gated as shipped, every face
# mirrored, none), through the `EmotionClassifier::predict` call every command uses. Cells run
# in rotating order each round; figures are medians over rounds. A benchmark, not a test.
#
#   bench/latency/run.sh [ROUNDS] [SECONDS]      defaults: 3 rounds, 3 s per cell
#
# Needs FER2013 (../shared/data/fer2013/test: every 14th file is timed). EMOLENS_BENCH_NO_BUILD=1
# uses the binaries already in target/release.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
seconds=${2:-3}
data=${EMOLENS_SHARED:-../shared}/data/fer2013/test
if [ -z "${EMOLENS_BENCH_NO_BUILD:-}" ]; then
  cargo build --release -q -p emolens --bin emolens
  cargo build --release -q -p emolens-model --example classifier_speed
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
find "$data" -type f | LC_ALL=C sort | awk 'NR % 14 == 1' > "$work/files.txt"
bin=target/release/emolens
$bin model set models/default.emolens --flip-tta-below none --out "$work/every.emolens" 2>/dev/null
$bin model set models/default.emolens --flip-tta false --out "$work/none.emolens" 2>/dev/null
cp models/default.emolens "$work/gated.emolens"
scripts/cpu-info.sh
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" >&2
cells=()
for p in int8 bf16 f32; do for t in gated every none; do cells+=("$p:$t"); done; done
for r in $(seq "$rounds"); do
  n=${#cells[@]}
  for i in $(seq 0 $((n - 1))); do
    cell=${cells[$(((i + r) % n))]}
    p=${cell%%:*}; t=${cell##*:}
    line=$(EMOLENS_PRECISION=$p OMP_NUM_THREADS=1 RAYON_NUM_THREADS=1 taskset -c 0 \
      target/release/examples/classifier_speed --model "$work/$t.emolens" --list "$work/files.txt" \
      --seconds "$seconds" --mode latency 2>/dev/null | tail -n 1)
    echo "$p $t $line" >> "$work/out.txt"
  done
done
python3 - "$work/out.txt" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    p, t, js = line.split(" ", 2)
    d = json.loads(js)
    rows.setdefault((p, t), []).append(d["latency_ms"] | {"runtime": d["runtime"]})
print(f"{'format':<6} {'TTA':<7} {'runtime':<20} {'median ms':>10} {'p90 ms':>8} {'mean ms':>8}   (medians over {len(next(iter(rows.values())))} rounds)")
order = [(p, t) for p in ("int8", "bf16", "f32") for t in ("gated", "every", "none")]
for (p, t), v in sorted(rows.items(), key=lambda kv: order.index(kv[0])):
    med = lambda k: statistics.median(x[k] for x in v)
    print(f"{p:<6} {t:<7} {v[0]['runtime']:<20} {med('median'):>10.3f} {med('p90'):>8.3f} {med('mean'):>8.3f}")
PY
