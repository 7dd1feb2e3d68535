#!/usr/bin/env bash
# Fuzzes every target (or those named) for FUZZ_SECONDS each (600 by default), all at once, then
# prints each one's executions, run time, crashes and hangs from AFL's fuzzer_stats. Findings
# stay under fuzz/out/<target>/default/{crashes,hangs}. Run from anywhere; needs cargo-afl.
#   fuzz/run.sh                  FUZZ_SECONDS=60 fuzz/run.sh image request
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${FUZZ_SECONDS:-600}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(image request model_file architecture)
# The model-file and architecture targets need the `model` feature (burn: a long build).
features=--no-default-features
for t in "${targets[@]}"; do
  case $t in model_file|architecture) features= ;; esac
done
# Without `--cfg fuzzing`: under it rav1e (the image crate's AVIF encoder) links libfuzzer-sys,
# whose coverage callbacks clash with AFL's at link time (duplicate __sanitizer_cov_trace_pc_guard).
AFL_NO_CFG_FUZZING=1 cargo afl build --release $features
# The committed corpus; `cargo run --release --example fuzz_seeds -- fuzz` (workspace) rewrites
# its seeds.
[ -d corpus/image ] || { echo "fuzz/corpus is missing" >&2; exit 1; }
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1
pids=()
for t in "${targets[@]}"; do
  # -m: an allocation past 4 GiB of address space is a crash; -t: an input over 2 s is a hang.
  cargo afl fuzz -i "corpus/$t" -o "out/$t" -m 4096 -t 2000 -V "$SECONDS_EACH" "target/release/$t" \
    > "out-$t.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
for t in "${targets[@]}"; do
  s="out/$t/default/fuzzer_stats"
  [ -f "$s" ] || { echo "$t: no stats (see fuzz/out-$t.log)"; continue; }
  awk -v t="$t" -F' *: *' '{v[$1]=$2} END {printf "%s: %s execs in %s s (%s/s), corpus %s, crashes %s, hangs %s\n",
    t, v["execs_done"], v["run_time"], v["execs_per_sec"], v["corpus_count"], v["saved_crashes"], v["saved_hangs"]}' "$s"
done
