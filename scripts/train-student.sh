#!/usr/bin/env bash
# The fast model for CPUs without AVX-512 (issue: every x86 CPU): vgg_t (architectures/vgg_t.json,
# 29.5 M multiply-accumulates per face, a quarter of vgg_s), trained from scratch on the same
# sources as the generalisation model (FER+ soft targets with FER2013's label as an extra vote,
# affectnet7 at weight 0.5, `wild` augmentation, mixup 0.2) and distilled from a trained vgg_s
# teacher (default: the first generalisation run's best model; TEACHER=path to change it):
# each target is 0.3 x labels + 0.7 x the teacher's probabilities on the same augmented image.
# Validation as always: FER+ PublicTest, the affectnet7 carve; test splits never.
#
#   scripts/train-student.sh [extra emolens train flags]
#
# Resumable (run the same command again; on a machine without /work/runs, from the snapshot
# committed in models/training/); runs at low priority.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${EMOLENS_SHARED:-../shared}
runs=${EMOLENS_RUNS_DIR:-/work/runs}
bin=${EMOLENS_BIN:-target/release/emolens}
teacher=${TEACHER:-models/training/vgg_s_adam_grayscale_64_wild/best.emolens}
run=vgg_t_adam_grayscale_64_student
if [ ! -d "$runs/$run/state" ] && [ -d "models/training/$run/state" ]; then
  mkdir -p "$runs"
  cp -r "models/training/$run" "$runs/$run"
  echo "resuming from the committed snapshot models/training/$run" >&2
fi
exec nice -n "${EMOLENS_NICE:-10}" "$bin" train --arch architectures/vgg_t.json --colour-mode grayscale --input-size 48 \
  --optimizer adam --lr 0.002 --schedule cosine --warmup-epochs 1 --min-lr 0.00002 \
  --epochs 24 --batch-size 64 --augment wild --mixup 0.2 --seed 5 --tag student \
  --teacher "$teacher" --distill-weight 0.7 --distill-temperature 1 \
  --source "fer2013=$shared/data/fer2013,labels=ferplus:$shared/data/ferplus/votes.csv,weight=1,folder_votes=1" \
  --source "affectnet=$shared/data/affectnet7,weight=0.5" \
  --runs-dir "$runs" --quiet "$@"
