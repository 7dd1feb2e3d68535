#!/usr/bin/env bash
# Reaction videos through `emolens analyze` at 5 frames/s: a 720p and a 1080p video of one
# viewer (FER2013 test faces enlarged on a plain background, changing expression every 5 s,
# H.264 at 30 frames/s, made here by the `make_reaction_video` example), each analysed once.
# Prints frames/s and the real-time factor (video seconds per second of analysis) for the whole
# command (model load included) and for the analysis loop alone (emolens' own log line), and
# the peak memory (`/usr/bin/time -v`, Debian package `time`), and how many viewer ids the
# tracker gave (the one face is missed for over a second at some expression changes, which
# ends its track: see docs/video.md). A benchmark, not a test.
#
#   bench/video/run.sh [SECONDS]      default: 30 s videos
#
# Needs FER2013 (../shared/data/fer2013/test, or $EMOLENS_SHARED/data/fer2013/test).
# EMOLENS_BENCH_NO_BUILD=1 uses the binaries already in target/release.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-30}
if [ -z "${EMOLENS_BENCH_NO_BUILD:-}" ]; then
  # The whole workspace selected, so features unify as in every other build (no rebuild of burn).
  cargo build --release -q --workspace --bins --example make_reaction_video
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scripts/cpu-info.sh
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
printf '| video | seconds | frames sampled | viewer ids | command s | frames/s | real-time factor | analysis frames/s | analysis real-time factor | peak MiB |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for size in 1280x720 1920x1080; do
  w=${size%x*}
  h=${size#*x}
  video="$work/$size.mp4"
  target/release/examples/make_reaction_video "$video" "$w" "$h" "$secs" 1 >/dev/null
  EMOLENS_LOG=info EMOLENS_LOG_FORMAT=text /usr/bin/time -v target/release/emolens analyze \
    --fps 5 --json -o "$work/$size.json" "$video" 2> "$work/$size.log"
  python3 - "$work/$size.json" "$work/$size.log" "$size" "$secs" <<'PY'
import json, re, sys
result = json.loads(open(sys.argv[1]).readline())
log = open(sys.argv[2]).read()
wall = log.split("Elapsed (wall clock) time (h:mm:ss or m:ss): ")[1].split("\n")[0]
parts = [float(p) for p in wall.split(":")]
wall_s = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rss_mib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", log).group(1)) / 1024
loop_fps = float(re.search(r'frames_per_s="?([0-9.]+)', log).group(1))
loop_rtf = float(re.search(r'real_time_factor="?([0-9.]+)', log).group(1))
frames = len(result["frames"])
video_s = float(sys.argv[4])
viewers = len(result["viewers"])
print(f"| {sys.argv[3]} | {video_s:.0f} | {frames} | {viewers} | {wall_s:.2f} | {frames / wall_s:.1f} | "
      f"{video_s / wall_s:.2f} | {loop_fps:.1f} | {loop_rtf:.2f} | {rss_mib:.0f} |")
PY
done
