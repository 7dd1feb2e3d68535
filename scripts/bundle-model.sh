#!/usr/bin/env bash
# Makes a finished training run's best model the bundled one (models/default.emolens, embedded in
# the binary at build time), the same way every time:
#   1. int8 calibration on 2,000 FER2013 *train* images (`emolens model quantize`);
#   2. the flip-TTA gate chosen on FER+ PublicTest, the validation split (`emolens model tune-tta`
#      on a folder of links labelled by the FER+ majority, made here from votes.csv);
#   3. the name set; the run's config.json, history.json and dataset.json copied to
#      models/default-run/ beside it.
# Test splits are not touched; measure afterwards with bench/accuracy/run.sh and regenerate
# MODEL_CARD.md (tools/model_card/render.py), then rebuild so the binary embeds the new file.
#
#   scripts/bundle-model.sh RUN_DIR [NAME]
#   EMOLENS_BUNDLE_AS=fast scripts/bundle-model.sh RUN_DIR [NAME]   the fast model instead:
#       models/fast.emolens, its run files in models/fast-run/ (what `EMOLENS_BUNDLED=auto` runs
#       on CPUs without AVX-512 or VNNI)
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?usage: scripts/bundle-model.sh RUN_DIR [NAME]}
name=${2:-$(basename "$run")}
case "${EMOLENS_BUNDLE_AS:-default}" in
  default) target=models/default.emolens; run_dir=models/default-run ;;
  fast) target=models/fast.emolens; run_dir=models/fast-run ;;
  *) echo "EMOLENS_BUNDLE_AS must be default or fast" >&2; exit 2 ;;
esac
shared=${EMOLENS_SHARED:-../shared}
bin=${EMOLENS_BIN:-target/release/emolens}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -f "$run/best.emolens" ] || { echo "error: $run/best.emolens not found; give a finished run folder" >&2; exit 1; }
python3 - "$shared" "$work/ferplus-valid/valid" <<'PY'
import csv, os, sys
shared, root = sys.argv[1], sys.argv[2]
seven = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
         "anger": "angry", "disgust": "disgust", "fear": "fear"}
cols = list(seven) + ["contempt", "unknown", "NF"]
n = 0
for r in csv.DictReader(open(os.path.join(shared, "data/ferplus/votes.csv"))):
    if r["usage"] != "PublicTest" or r["neutral"] == "":
        continue
    v = [int(r[c]) for c in cols]
    top = max(v)
    if v.count(top) != 1 or cols[v.index(top)] not in seven:
        continue
    d = os.path.join(root, seven[cols[v.index(top)]])
    os.makedirs(d, exist_ok=True)
    os.symlink(os.path.realpath(os.path.join(shared, "data/fer2013", r["file"])), os.path.join(d, os.path.basename(r["file"])))
    n += 1
print(f"FER+ PublicTest with a unique seven-emotion majority: {n} images", file=sys.stderr)
PY
"$bin" model quantize "$run/best.emolens" --data "$shared/data/fer2013/train" --images 2000 --out "$work/q.emolens"
"$bin" model tune-tta "$work/q.emolens" --data "$work/ferplus-valid" --out "$work/t.emolens"
"$bin" model set "$work/t.emolens" --name "$name" --out "$target"
mkdir -p "$run_dir"
rm -f "$run_dir"/*.json
for f in config.json history.json dataset.json; do [ -f "$run/$f" ] && cp "$run/$f" "$run_dir/"; done
ls -l "$target"
echo "bundled $run/best.emolens as '$name'; now: cargo build --release --workspace, bench/accuracy/run.sh, tools/model_card/render.py" >&2
