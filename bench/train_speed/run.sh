#!/usr/bin/env bash
# Training and inference speed, emolens vs Keras (TensorFlow CPU), on the same architectures,
# batch sizes and synthetic data, alternating runs in one script. A benchmark, not a test.
#
#   bench/train_speed/run.sh [ROUNDS] [STEPS]   the comparison at batch 64, all cores: emolens
#                                               as shipped (oneDNN; inference on a compiled plan,
#                                               bf16 where the CPU has it), the same forced to
#                                               f32 (EMOLENS_PRECISION=f32), emolens with burn's
#                                               flex kernels (EMOLENS_KERNELS=flex), Keras; medians
#   bench/train_speed/run.sh scaling [STEPS]    batch 16/64/256 x 1/2 threads, emolens and Keras:
#                                               train and inference img/s, peak memory
#
# Needs the peer environment: scripts/setup-peers.sh (tensorflow-cpu in .venv-peers).
# EMOLENS_BENCH_NO_BUILD=1 uses the binary already in target/release.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=main
if [ "${1:-}" = scaling ]; then mode=scaling; shift; fi
rounds=${1:-3}
steps=${2:-5}
[ "$mode" = scaling ] && { steps=${1:-3}; rounds=1; }
[ -x .venv-peers/bin/python ] || scripts/setup-peers.sh
[ -n "${EMOLENS_BENCH_NO_BUILD:-}" ] || cargo build --release -q -p emolens
bin=target/release/emolens
# The CPU the figures belong to. ONEDNN_MAX_CPU_ISA=AVX2 caps both stacks' oneDNN (TensorFlow's
# too) at AVX2, as on an AVX2-only CPU.
scripts/cpu-info.sh
# The original design's best network, the bundled default model's architecture and the fast
# model's (what AVX2-only CPUs run); EMOLENS_BENCH_ARCHS="file:channels ..." to choose.
if [ -n "${EMOLENS_BENCH_ARCHS:-}" ]; then
  read -r -a archs <<< "$EMOLENS_BENCH_ARCHS"
else
  archs=("../shared/seed-reference/architectures/model_2_best.json:3" "architectures/vgg_s.json:1" "architectures/vgg_t.json:1")
fi
out=$(mktemp)

emolens_run() { # label file mode batch infer_batch threads
  local env=(EMOLENS_LOG=warn)
  [ "$1" = emolens-flex ] && env+=(EMOLENS_KERNELS=flex)
  [ "$1" = emolens-f32 ] && env+=(EMOLENS_PRECISION=f32)
  [ "$6" != 0 ] && env+=(OMP_NUM_THREADS="$6" RAYON_NUM_THREADS="$6")
  echo "$1 $(env "${env[@]}" $bin arch bench "$2" --colour-mode "$3" --batch-size "$4" --infer-batch "$5" --steps "$steps" --warmup 2)" >> "$out"
}
keras_run() { # file channels batch infer_batch threads
  echo "keras $(.venv-peers/bin/python bench/train_speed/keras_speed.py "$1" "$2" "$3" "$steps" 2 "$4" "$5" 2>/dev/null)" >> "$out"
}

for r in $(seq "$rounds"); do
  for a in "${archs[@]}"; do
    file=${a%%:*}; ch=${a##*:}
    cm=$([ "$ch" = 3 ] && echo rgb || echo grayscale)
    if [ "$mode" = main ]; then
      emolens_run emolens "$file" "$cm" 64 64 0
      keras_run "$file" "$ch" 64 64 0
      emolens_run emolens-f32 "$file" "$cm" 64 64 0
      emolens_run emolens-flex "$file" "$cm" 64 64 0
    else
      for t in 1 2; do
        for b in 16 64 256; do
          emolens_run emolens "$file" "$cm" "$b" "$b" "$t"
          emolens_run emolens-f32 "$file" "$cm" "$b" "$b" "$t"
          keras_run "$file" "$ch" "$b" "$b" "$t"
        done
      done
    fi
  done
done
python3 - "$out" "$mode" <<'PY'
import json, sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    who, js = line.split(" ", 1)
    d = json.loads(js)
    rows.setdefault((d["arch"], d["batch_size"], d["threads"], who), []).append(d)
keys = ("train_images_per_s", "infer_images_per_s", "infer_latency_ms", "peak_rss_mib")
def med(r):
    return [st.median(x[k] for x in r) for k in keys]
stacks = ("emolens", "emolens-f32", "emolens-flex", "keras")
print(f"{'architecture':<14} {'batch':>5} {'thr':>3} {'stack':<13} {'inference runs on':<20} {'train img/s':>11} {'infer img/s':>11} {'b1 ms':>7} {'peak MiB':>8}")
groups = sorted({(a, b, t) for a, b, t, _ in rows}, key=lambda g: (g[0], g[2], g[1]))
for arch, b, t in groups:
    m = {}
    for who in stacks:
        r = rows.get((arch, b, t, who))
        if not r:
            continue
        m[who] = med(r)
        e = m[who]
        runs_on = r[0].get("infer_runtime", r[0]["kernels"])[:20]
        print(f"{arch:<14} {b:>5} {t:>3} {who:<13} {runs_on:<20} {e[0]:>11.1f} {e[1]:>11.1f} {e[2]:>7.2f} {e[3]:>8.0f}")
    for who in ("emolens", "emolens-f32"):
        if who in m and "keras" in m:
            e, k = m[who], m["keras"]
            print(f"{arch:<14} {b:>5} {t:>3} {'ratio':<13} {who + ' / keras':<20} {e[0]/k[0]:>10.2f}x {e[1]/k[1]:>10.2f}x {k[2]/e[2]:>6.2f}x   (latency: keras / emolens)")
print(f"(medians over rounds; {'batch 64, all cores' if sys.argv[2] == 'main' else 'one round per cell'}; inference img/s at the training batch size in scaling mode, at 64 otherwise)")
PY
