#!/usr/bin/env bash
# Second stage of the fast model for CPUs without AVX-512 (issue: every x86 CPU): the vgg_t
# student of scripts/train-student.sh was still improving at its last epoch (pooled validation
# 0.7194 at epoch 24 of 24), so this continues it for one more cosine cycle (a warm restart at
# half the first peak rate), distilled from the bundled model (models/default.emolens, pooled
# validation 0.7407) instead of the first-round teacher (0.7349). Same sources, augmentation and
# validation sets (FER+ PublicTest, the affectnet7 carve; test splits never).
#
#   scripts/train-student2.sh [extra emolens train flags]
#
# Resumable (run the same command again); runs at low priority.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${EMOLENS_SHARED:-../shared}
runs=${EMOLENS_RUNS_DIR:-/work/runs}
bin=${EMOLENS_BIN:-target/release/emolens}
start=${START:-models/training/vgg_t_adam_grayscale_64_student/best.emolens}
teacher=${TEACHER:-models/default.emolens}
exec nice -n "${EMOLENS_NICE:-10}" "$bin" train --arch architectures/vgg_t.json --colour-mode grayscale --input-size 48 \
  --init-from "$start" \
  --optimizer adam --lr 0.001 --schedule cosine --warmup-epochs 0 --min-lr 0.00001 \
  --epochs 16 --batch-size 64 --augment wild --mixup 0.2 --seed 6 --tag student2 \
  --teacher "$teacher" --distill-weight 0.7 --distill-temperature 1 \
  --source "fer2013=$shared/data/fer2013,labels=ferplus:$shared/data/ferplus/votes.csv,weight=1,folder_votes=1" \
  --source "affectnet=$shared/data/affectnet7,weight=0.5" \
  --runs-dir "$runs" --quiet "$@"
