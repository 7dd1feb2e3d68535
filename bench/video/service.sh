#!/usr/bin/env bash
# One reaction video through the service against `emolens analyze` on the same video, in the
# same run: a 720p one-viewer video (the `make_reaction_video` example, as bench/video/run.sh),
# analysed at 5 frames/s
#   1. by the CLI: `emolens analyze --fps 5 --json` (whole command, model load included; peak
#      memory from `/usr/bin/time -v`);
#   2. by `emolens serve --video-workers 1` on a SQLite file: the server is started and warmed
#      first, then the video is uploaded (raw body) and the job polled until done. Reported: the
#      upload's answer time (the 202), the time from upload to `done` (upload, FFmpeg probe,
#      storing the video, claim, fetch, analysis, storing the results), the job's own analysis
#      time and real-time factor (its result), and the server's peak memory (VmHWM of the
#      process, which includes the idle server: its figure before the upload is given too).
# A benchmark, not a test.
#
#   bench/video/service.sh [SECONDS]      default: 30 s video
#
# Needs FER2013 (../shared/data/fer2013/test, or $EMOLENS_SHARED/data/fer2013/test) and python3.
# EMOLENS_BENCH_NO_BUILD=1 uses the binaries already in target/release.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-30}
if [ -z "${EMOLENS_BENCH_NO_BUILD:-}" ]; then
  cargo build --release -q --workspace --bins --example make_reaction_video
fi
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
scripts/cpu-info.sh
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
video="$work/720p.mp4"
target/release/examples/make_reaction_video "$video" 1280 720 "$secs" 1 >/dev/null
ls -l "$video" | awk '{printf "video: 1280x720, %s s, %.1f MiB\n", "'"$secs"'", $5 / 1048576}'

# 1. The CLI.
EMOLENS_LOG=info /usr/bin/time -v target/release/emolens analyze --fps 5 --json -o "$work/cli.json" \
  "$video" 2> "$work/cli.log"

# 2. The service.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
db="$work/bench.db"
EMOLENS_LOG=info target/release/emolens serve --port "$port" --database-url "$db" \
  --video-workers 1 --job-poll-ms 200 --purge-every-minutes 0 2> "$work/serve.log" &
server=$!
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
key=$(EMOLENS_LOG=warn target/release/emolens keys create --name bench --database-url "$db")

python3 - "$port" "$key" "$video" "$server" "$secs" "$work/cli.json" "$work/cli.log" <<'PY'
import json, re, sys, time, urllib.request
port, key, video, pid, secs, cli_json, cli_log = sys.argv[1:]
secs = float(secs)
base = f"http://127.0.0.1:{port}"

def call(method, path, body=None, ctype="application/json"):
    req = urllib.request.Request(base + path, data=body, method=method,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": ctype})
    with urllib.request.urlopen(req) as r:
        return r.status, json.loads(r.read())

def hwm_mib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")

# The CLI's figures.
log = open(cli_log).read()
wall = log.split("Elapsed (wall clock) time (h:mm:ss or m:ss): ")[1].split("\n")[0]
parts = [float(p) for p in wall.split(":")]
cli_wall = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
cli_rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", log).group(1)) / 1024
cli_loop_s = float(re.search(r'seconds="?([0-9.]+)', log).group(1))
cli_loop_rtf = float(re.search(r'real_time_factor="?([0-9.]+)', log).group(1))
cli_frames = len(json.loads(open(cli_json).readline())["frames"])

# Warm the server: a campaign, an ad, and one photo request so the model has run once.
_, c = call("POST", "/v1/campaigns", json.dumps({"name": "bench"}).encode())
_, ad = call("POST", f"/v1/campaigns/{c['id']}/ads", json.dumps({"name": "720p", "duration_s": secs}).encode())
idle_rss = hwm_mib()
data = open(video, "rb").read()
t0 = time.monotonic()
st, job = call("POST", f"/v1/ads/{ad['id']}/videos?fps=5&name=720p.mp4", data, "video/mp4")
t_accepted = time.monotonic() - t0
assert st == 202, job
while True:
    _, job = call("GET", f"/v1/jobs/{job['id']}")
    if job["state"] in ("done", "failed"):
        break
    time.sleep(0.05)
t_done = time.monotonic() - t0
assert job["state"] == "done", job
r = job["result"]
peak = hwm_mib()
print()
print("| path | frames | wall s | real-time factor (wall) | analysis s | analysis real-time factor | peak MiB |")
print("|---|---:|---:|---:|---:|---:|---:|")
print(f"| CLI `emolens analyze --fps 5` (whole command, model load included) | {cli_frames} | {cli_wall:.2f} | "
      f"{secs / cli_wall:.2f} | {cli_loop_s:.2f} | {cli_loop_rtf:.2f} | {cli_rss:.0f} |")
print(f"| service: upload to `done` (202 after {t_accepted:.2f} s) | {r['frames']} | {t_done:.2f} | "
      f"{secs / t_done:.2f} | {r['analysis_s']:.2f} | {r['real_time_factor']:.2f} | {peak:.0f} (idle {idle_rss:.0f}) |")
PY
