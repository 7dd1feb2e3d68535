#!/usr/bin/env bash
# Load benchmark of `emolens serve` on loopback with wrk: requests/s, p50/p99 latency and the
# server's peak memory for /api/predict on a FER2013 face crop and /v1/analyze on a photo.
#   bench/load/run.sh            (DURATION=20 CONNECTIONS=8 THREADS=2 by default)
# Model: EMOLENS_MODEL if set, else the bundled model; if the build has none, a model of the
# original's best architecture (model_2_best, grayscale) is trained for 1 epoch on 50 images per
# class so the network is the real size (latency depends on the architecture, not the weights).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
SHARED=${EMOLENS_SHARED:-../shared}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
[ -n "${EMOLENS_BENCH_NO_BUILD:-}" ] || cargo build --release -p emolens
bin=./target/release/emolens
work=$(mktemp -d)
server=; trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT

for crop in "$SHARED"/data/fer2013/test/happy/*.jpg; do break; done
photo=assets/photos/astronaut.png
[ -f "$crop" ] || { echo "FER2013 is missing under $SHARED/data/fer2013" >&2; exit 1; }
[ -f "$photo" ] || { echo "$photo is missing" >&2; exit 1; }

model_args=()
if [ -n "${EMOLENS_MODEL:-}" ]; then
  model_args=(--model "$EMOLENS_MODEL")
elif ! "$bin" predict "$crop" >/dev/null 2>&1; then
  echo "no bundled model in this build: training model_2_best for 1 epoch (50 images per class) as a stand-in" >&2
  "$bin" train --arch "$SHARED/seed-reference/architectures/model_2_best.json" --data "$SHARED/data/fer2013" \
    --epochs 1 --max-train-per-class 50 --runs-dir "$work/runs" --augment none >&2
  model_args=(--model "$(ls "$work"/runs/*/best.emolens 2>/dev/null | head -1 || ls "$work"/runs/*/*.emolens | head -1)")
fi

port=$((20000 + RANDOM % 20000))
EMOLENS_LOG=warn "$bin" serve --host 127.0.0.1 --port "$port" --database-url "$work/bench.db" \
  --max-concurrent 1024 "${model_args[@]}" &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/info" | head -c 300; echo

multipart() { # file -> body file, prints content type
  local f=$1 out=$2 b=emolensbenchboundary
  { printf -- "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\nContent-Type: application/octet-stream\r\n\r\n" "$b" "$(basename "$f")"
    cat "$f"
    printf -- "\r\n--%s--\r\n" "$b"; } > "$out"
  echo "multipart/form-data; boundary=$b"
}

rss_peak() { # samples the server's RSS while wrk runs
  local peak=0 kb
  while kill -0 "$1" 2>/dev/null; do
    kb=$(awk '/VmRSS/ {print $2}' "/proc/$server/status" 2>/dev/null || echo 0)
    [ "${kb:-0}" -gt "$peak" ] && peak=$kb
    sleep 0.2
  done
  echo "$peak"
}

bench() { # name path file
  local name=$1 path=$2 file=$3 ct
  ct=$(multipart "$file" "$work/body")
  BODY_FILE="$work/body" CONTENT_TYPE="$ct" wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s bench/load/post.lua \
    "http://127.0.0.1:$port$path" >/dev/null # warm-up
  BODY_FILE="$work/body" CONTENT_TYPE="$ct" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
    -s bench/load/post.lua "http://127.0.0.1:$port$path" > "$work/wrk.txt" &
  local wrk_pid=$!
  local peak
  peak=$(rss_peak $wrk_pid)
  wait $wrk_pid
  local rps p50 p99 codes
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(awk '/^ +50%/ {print $2}' "$work/wrk.txt")
  p99=$(awk '/^ +99%/ {print $2}' "$work/wrk.txt")
  codes=$(grep -E 'Non-2xx|Socket errors' "$work/wrk.txt" | tr -s ' \n' ' ' || true)
  [ -n "$codes" ] || codes="all responses 2xx"
  printf "%-34s %10s req/s  p50 %8s  p99 %8s  peak RSS %6.1f MiB  [%s]\n" \
    "$name" "$rps" "$p50" "$p99" "$(echo "$peak / 1024" | bc -l)" "$codes"
}

echo "emolens serve, loopback, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $(nproc) CPUs"
idle=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
printf "idle RSS %.1f MiB\n" "$(echo "$idle / 1024" | bc -l)"
bench "POST /api/predict (48x48 crop)" /api/predict "$crop"
bench "POST /v1/analyze (512x512 photo)" /v1/analyze "$photo"
