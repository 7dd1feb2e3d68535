#!/usr/bin/env bash
# Overload benchmark of `emolens serve` (issue 17, finding 7): starts the release binary on
# loopback with a fresh SQLite database, an admin key, a campaign and an ad, then runs
# bench/overload/overload.py: the saturated throughput of keyed 4-photo uploads, then open-loop
# load at 1x and 2x that rate (half keyed, half anonymous), reporting goodput, 429s, latency,
# and whether every acknowledged photo was stored. Prints the CPU it ran on.
#   bench/overload/run.sh        (DURATION=20 seconds per phase, WORKERS=inference workers)
set -euo pipefail
cd "$(dirname "$0")/../.."
export DURATION=${DURATION:-20}
export WORKERS=${WORKERS:-$(nproc)}
SHARED=${EMOLENS_SHARED:-../shared}
[ -n "${EMOLENS_BENCH_NO_BUILD:-}" ] || cargo build --release -p emolens
bin=./target/release/emolens
work=$(mktemp -d)
server=; trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
mapfile -t faces < <(ls "$SHARED"/data/fer2013/test/happy/*.jpg 2>/dev/null | head -32)
[ "${#faces[@]}" -gt 0 ] || { echo "FER2013 is missing under $SHARED/data/fer2013" >&2; exit 1; }

db="$work/overload.db"
port=$((20000 + RANDOM % 20000))
EMOLENS_LOG=warn "$bin" serve --host 127.0.0.1 --port "$port" --database-url "$db" \
  --inference-workers "$WORKERS" ${EMOLENS_MODEL:+--model "$EMOLENS_MODEL"} &
server=$!
for _ in $(seq 1 150); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.2
done
key=$("$bin" keys create --name overload --database-url "$db" 2>/dev/null)
auth="Authorization: Bearer $key"
campaign=$(curl -fsS -H "$auth" -H 'Content-Type: application/json' -d '{"name":"overload"}' \
  "http://127.0.0.1:$port/v1/campaigns" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
ad=$(curl -fsS -H "$auth" -H 'Content-Type: application/json' -d '{"name":"ad"}' \
  "http://127.0.0.1:$port/v1/campaigns/$campaign/ads" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
scripts/cpu-info.sh
echo "emolens serve, loopback, $WORKERS inference workers, default limits, ${DURATION}s per phase"
python3 bench/overload/overload.py "$port" "$key" "$ad" "${faces[@]}"
