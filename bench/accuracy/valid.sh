#!/usr/bin/env bash
# Validation figures for choosing between trained models (never a test split): for each model
# file, accuracy and macro-F1 on FER+ PublicTest (majority labels), on FER2013 PublicTest with
# its original labels, and the share of neutral faces (FER+ majority) read as angry, disgust,
# fear or sad. Prints one table; the eval reports go under $out/<n>-<set>/.
#
# usage: bench/accuracy/valid.sh MODEL.emolens [MODEL.emolens ...]
# env: EMOLENS_SHARED (default ../shared), EMOLENS_BIN (default target/release/emolens),
#      EMOLENS_VALID_OUT (default reports/valid), EMOLENS_EVAL_FLIP_TTA=1 for flip TTA.
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${EMOLENS_SHARED:-../shared}
bin=${EMOLENS_BIN:-target/release/emolens}
out=${EMOLENS_VALID_OUT:-reports/valid}
[ $# -gt 0 ] || { sed -n '2,9p' "$0"; exit 2; }
# FER2013 PublicTest with the original labels: a folder of links to the PublicTest_* files.
pub="$out/fer2013-publictest"
if [ ! -d "$pub" ]; then
  for d in "$shared"/data/fer2013/test/*/; do
    c=$(basename "$d"); mkdir -p "$pub/$c"
    for f in "$d"PublicTest_*; do ln -s "$(realpath "$f")" "$pub/$c/"; done
  done
fi
printf '%-60s %18s %18s %14s\n' model "FER+ valid acc/F1" "FER2013 pub acc/F1" "neutral->neg"
n=0
for m in "$@"; do
  n=$((n + 1))
  "$bin" eval --model "$m" --data "$shared/data/fer2013" --labels "ferplus:$shared/data/ferplus/votes.csv" \
    --split valid --out "$out/$n-ferplus" >/dev/null 2>"$out/$n-ferplus.log" || { cat "$out/$n-ferplus.log" >&2; exit 1; }
  "$bin" eval --model "$m" --data "$pub" --out "$out/$n-orig" >/dev/null 2>"$out/$n-orig.log" || { cat "$out/$n-orig.log" >&2; exit 1; }
  python3 - "$m" "$out/$n-ferplus/report.json" "$out/$n-orig/report.json" <<'PY'
import json, sys
def fig(path):
    r = json.load(open(path))["sections"][0]["report"]
    return r["accuracy"], r["macro_avg"]["f1"], r
fa, ff, fr = fig(sys.argv[2])
oa, of, _ = fig(sys.argv[3])
cls = fr["classes"]; conf = fr["confusion"]; ni = cls.index("neutral")
neg = sum(conf[ni][cls.index(c)] for c in ("angry", "disgust", "fear", "sad"))
print(f"{sys.argv[1][-60:]:<60} {fa:8.4f}/{ff:.4f} {oa:8.4f}/{of:.4f} {neg / sum(conf[ni]):13.1%}")
PY
done
