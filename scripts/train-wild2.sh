#!/usr/bin/env bash
# Second round of the generalisation model (issue: a model that reads faces it has never seen):
# fine-tunes the first round's best model (models/training/vgg_s_adam_grayscale_64_wild/
# best.emolens, FER+ soft targets + affectnet7, `wild` augmentation) for a short cosine cycle,
# with the FER2013 folder label counted as extra FER+ votes (`folder_votes`) and optionally
# mixup. Two variants, one flag apart, make the ablation (selected on validation only: FER+
# PublicTest majority, the affectnet7 carve, and FER2013 PublicTest with its original labels):
#
#   scripts/train-wild2.sh fv1       # folder_votes=1 (FER2013's label as an 11th annotator)
#   scripts/train-wild2.sh fv1-mix   # the same plus --mixup 0.2
#
# Resumable (run the same command again); runs at low priority; extra flags after the variant
# go to `emolens train`.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${EMOLENS_SHARED:-../shared}
runs=${EMOLENS_RUNS_DIR:-/work/runs}
bin=${EMOLENS_BIN:-target/release/emolens}
variant=${1:?variant: fv1 or fv1-mix}
shift
case "$variant" in
  fv1) extra=() ;;
  fv1-mix) extra=(--mixup 0.2) ;;
  *) echo "unknown variant $variant (fv1, fv1-mix)" >&2; exit 2 ;;
esac
exec nice -n "${EMOLENS_NICE:-10}" "$bin" train --arch architectures/vgg_s.json --colour-mode grayscale --input-size 48 \
  --init-from models/training/vgg_s_adam_grayscale_64_wild/best.emolens \
  --optimizer adam --lr 0.0002 --schedule cosine --warmup-epochs 0 --min-lr 0.00001 \
  --epochs 6 --batch-size 64 --augment wild --label-smoothing 0.05 --seed 11 --tag "wild2-$variant" \
  --source "fer2013=$shared/data/fer2013,labels=ferplus:$shared/data/ferplus/votes.csv,weight=1,folder_votes=1" \
  --source "affectnet=$shared/data/affectnet7,weight=0.5" \
  "${extra[@]}" --runs-dir "$runs" --quiet "$@"
