#!/usr/bin/env bash
# Accuracy per FLOP for CPUs without AVX-512 (issue: every x86 CPU): vgg_tm (16-32-72-160 channels,
# 35.3 M multiply-accumulates, 1.2x vgg_t's 29.5 M, 0.30x vgg_s' 117 M) trained from scratch for 40
# epochs, distilled from the bundled model (models/default.emolens, pooled validation 0.7407) with
# the recipe of scripts/train-student.sh (same sources, augmentation and validation sets: FER+
# PublicTest and the affectnet7 carve; test splits never). The question it answers: do wider late
# stages close the gap between the fast model (vgg_t, 0.7257) and the default one at a cost an
# AVX2-only CPU runs in 0.5 ms?
#
#   scripts/train-vgg-tm.sh [extra emolens train flags]
#
# Resumable (run the same command again); runs at low priority.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${EMOLENS_SHARED:-../shared}
runs=${EMOLENS_RUNS_DIR:-/work/runs}
bin=${EMOLENS_BIN:-target/release/emolens}
teacher=${TEACHER:-models/default.emolens}
run=vgg_tm_adam_grayscale_64_tm
# On a machine without the run folder, resume from the committed snapshot (epoch 10 of 40).
if [ ! -d "$runs/$run/state" ] && [ -d "models/training/$run/state" ]; then
  mkdir -p "$runs"
  cp -r "models/training/$run" "$runs/$run"
  echo "resuming from the committed snapshot models/training/$run" >&2
fi
exec nice -n "${EMOLENS_NICE:-10}" "$bin" train --arch architectures/vgg_tm.json --colour-mode grayscale --input-size 48 \
  --optimizer adam --lr 0.002 --schedule cosine --warmup-epochs 1 --min-lr 0.00002 \
  --epochs 40 --batch-size 64 --augment wild --mixup 0.2 --seed 7 --tag tm \
  --teacher "$teacher" --distill-weight 0.7 --distill-temperature 1 \
  --source "fer2013=$shared/data/fer2013,labels=ferplus:$shared/data/ferplus/votes.csv,weight=1,folder_votes=1" \
  --source "affectnet=$shared/data/affectnet7,weight=0.5" \
  --runs-dir "$runs" --quiet "$@"
