#!/usr/bin/env bash
# The training run behind the next bundled model (issue: a model that reads faces it has never
# seen): vgg_s, grayscale 48x48, fine-tuned from the current bundled model's weights (trained
# on FER2013 train only, bundled until 2026-12-02 and kept as models/training/vgg_s_fer2013/) on FER2013 with FER+ vote distributions as soft targets, plus
# affectnet7 (half of it, freshly drawn, each epoch), with the `wild` augmentation (domain-gap
# degradations). Validation: FER+ PublicTest (majority labels) and a seeded carve of affectnet7
# train; FER+ PrivateTest and affectnet7 test are never used.
#
# Resumable: run the same command again and it continues from the last finished epoch (the
# run folder is outside the work tree by default, so it survives a fresh checkout on the same
# machine). Where it is missing (a new machine), the snapshot committed at the end of the last
# working session, models/training/$run/ (config, history, best model and state/), is copied
# there first. Runs at low priority so builds and benchmarks keep the CPU they need.
#
#   scripts/train-wild.sh [extra emolens train flags, e.g. --stop-after-epochs 2]
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${EMOLENS_SHARED:-../shared}
runs=${EMOLENS_RUNS_DIR:-/work/runs}
bin=${EMOLENS_BIN:-target/release/emolens}
run=vgg_s_adam_grayscale_64_wild
if [ ! -d "$runs/$run/state" ] && [ -d "models/training/$run/state" ]; then
  mkdir -p "$runs"
  cp -r "models/training/$run" "$runs/$run"
  echo "resuming from the committed snapshot models/training/$run" >&2
fi
exec nice -n 15 "$bin" train --arch architectures/vgg_s.json --colour-mode grayscale --input-size 48 \
  --init-from models/training/vgg_s_fer2013/best.emolens \
  --optimizer adam --lr 0.0005 --schedule cosine --warmup-epochs 1 --min-lr 0.00001 \
  --epochs 24 --batch-size 64 --augment wild --label-smoothing 0.05 --seed 7 --tag wild \
  --source "fer2013=$shared/data/fer2013,labels=ferplus:$shared/data/ferplus/votes.csv,weight=1" \
  --source "affectnet=$shared/data/affectnet7,weight=0.5" \
  --runs-dir "$runs" --quiet "$@"
