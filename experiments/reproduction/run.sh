#!/usr/bin/env bash
# The reference sweep (baseline at 50 and 100 epochs, VGG-16 at 50, 100 and 200; MSE,
# RMSprop) on the scene photos, then its report (experiments/reproduction/README.md).
#
#   bash experiments/reproduction/run.sh            # CPU: 64 px, 1/25 of the epochs (2, 4, 8)
#   GPU=1 bash experiments/reproduction/run.sh      # the reference: 256 / 224 px, 50, 100, 200
#
# COLORLAB_SCENES: the photos (default ../shared/data/scenes); OUT: where runs and report go.
# VGG16_WEIGHTS=random runs VGG-16 without ImageNet weights (where they cannot be downloaded).
set -euo pipefail
SCENES=${COLORLAB_SCENES:-../shared/data/scenes}
OUT=${OUT:-runs/reproduction}
PYTHON=${PYTHON:-python}
DATA=(data=folder "data.root=$SCENES" data.limit=2000 logger=csv)
VGG=()
if [ "${VGG16_WEIGHTS:-imagenet}" = random ]; then VGG=(model.pretrained=false); fi

if [ "${GPU:-0}" = 1 ]; then
    DATA+=(trainer=gpu)
    BASELINE_EPOCHS=50,100 VGG_EPOCHS=50,100,200 SIZE=()
    NOTE="The reference's budget: 256 px (baseline) and 224 px (VGG-16), 50/100 and 50/100/200 epochs."
    MACHINE=${MACHINE:-"$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), $(nproc) CPU cores"}
else
    DATA+=(trainer.accelerator=cpu data.num_workers=1)
    BASELINE_EPOCHS=2,4 VGG_EPOCHS=2,4,8 SIZE=(data.image_size=64)
    NOTE="A reduced CPU run: 64 px instead of 256/224, 2/4 and 2/4/8 epochs instead of 50/100 and 50/100/200 (1/25)."
    MACHINE=${MACHINE:-"$(nproc) CPU cores, no GPU"}
fi

"$PYTHON" -m colorlab.train -m experiment=seed_baseline "trainer.max_epochs=$BASELINE_EPOCHS" \
    "${DATA[@]}" "${SIZE[@]}" "hydra.sweep.dir=$OUT/runs/baseline"
"$PYTHON" -m colorlab.train -m experiment=seed_vgg16 "trainer.max_epochs=$VGG_EPOCHS" \
    "${DATA[@]}" "${SIZE[@]}" "${VGG[@]}" "hydra.sweep.dir=$OUT/runs/vgg16"
"$PYTHON" -m colorlab.report "runs=$OUT/runs" "output=$OUT/report" data.image_size=128 grid_cell=128 \
    "title=colorlab: the reference experiment reproduced" \
    "notes=[\"$NOTE\",\"Machine: $MACHINE; $(date -u +%Y-%m-%d).\",\"The reference reported mean accuracy (seed_accuracy) 67.48 / 67.62 % (baseline, 50 / 100 epochs) and 67.77 / 67.91 / 67.43 % (VGG-16, 50 / 100 / 200 epochs).\"]"
