#!/usr/bin/env bash
# Training and inference speed, emolens vs Keras (TensorFlow CPU), on the same architectures,
# batch size and synthetic data, alternating runs in one script. A benchmark, not a test.
#   bench/train_speed/run.sh [ROUNDS] [STEPS]
# Needs the peer environment: scripts/setup-peers.sh (tensorflow-cpu in .venv-peers).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
steps=${2:-5}
[ -x .venv-peers/bin/python ] || scripts/setup-peers.sh
cargo build --release -q -p emolens
bin=target/release/emolens
archs=("../shared/seed-reference/architectures/model_2_best.json:3" "architectures/vgg_xs.json:1")
out=$(mktemp)
for r in $(seq "$rounds"); do
  for a in "${archs[@]}"; do
    file=${a%%:*}; ch=${a##*:}
    mode=$([ "$ch" = 3 ] && echo rgb || echo grayscale)
    echo "emolens $($bin --log warn arch bench "$file" --colour-mode "$mode" --batch-size 64 --steps "$steps" --warmup 2)" >> "$out"
    echo "keras $(.venv-peers/bin/python bench/train_speed/keras_speed.py "$file" "$ch" 64 "$steps" 2)" >> "$out"
  done
done
python3 - "$out" <<'PY'
import json, sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    who, js = line.split(" ", 1)
    d = json.loads(js)
    rows.setdefault((d["arch"], who), []).append(d)
print(f"{'architecture':<16} {'stack':<8} {'train img/s':>12} {'infer img/s (b64)':>18} {'latency ms (b1)':>16}   (medians over rounds)")
for arch in sorted({a for a, _ in rows}):
    med = {}
    for who in ("emolens", "keras"):
        r = rows.get((arch, who), [])
        if not r:
            continue
        med[who] = [st.median(x[k] for x in r) for k in ("train_images_per_s", "infer_images_per_s", "infer_latency_ms")]
        print(f"{arch:<16} {who:<8} {med[who][0]:>12.1f} {med[who][1]:>18.1f} {med[who][2]:>16.2f}")
    if len(med) == 2:
        e, k = med["emolens"], med["keras"]
        print(f"{arch:<16} {'ratio':<8} {e[0]/k[0]:>11.2f}x {e[1]/k[1]:>17.2f}x {k[2]/e[2]:>15.2f}x   (emolens / keras; latency: keras / emolens)")
PY
