#!/usr/bin/env bash
# The GPU table of experiments/README.md §2 (issue 8), one JSON line per row in OUT/bench.jsonl.
#   bash experiments/gpu_bench.sh PHOTOS_FOLDER [OUT]
# PHOTOS_FOLDER: e.g. ../shared/data/scenes (2,000 photos are plenty: data.limit=2000).
# Environment: PYTHON (python), REFERENCE_EPOCHS (199: the reference's 200 epochs; fewer gives
# the per-epoch time to extrapolate from), RUN_TIMEOUT (seconds per run, 300).
# On the lent device machine (no hydra/kornia there): ship the wheels of
# ../shared/tools/device-wheels.sh and carry a copy of the photos inside the repository.
set -uo pipefail
photos=${1:?give the folder of photos}
out=${2:-gpu-bench}
python=${PYTHON:-python}
mkdir -p "$out"
common=(trainer=gpu logger=csv "~callbacks.progress_bar" "~callbacks.model_summary" bench.epochs=3)
photos_at() {  # image size
  echo data=folder "data.root=$photos" data.limit=2000 "data.image_size=$1" data.batch_size=64
}
run() {  # name, overrides...
  local name=$1; shift
  echo "$(date +%T) $name"
  timeout "${RUN_TIMEOUT:-300}" "$python" -m colorlab.bench "${common[@]}" "$@" "hydra.run.dir=$out/$name" \
    > "$out/$name.txt" 2>&1 && grep '^{' "$out/$name.txt" >> "$out/bench.jsonl" \
    || echo "FAILED: $name (see $out/$name.txt)"
}
# Default data (synthetic scenes painted on the GPU) and photos, cached and streamed; eager first.
run baseline_synthetic data.image_size=256 data.batch_size=64 data.num_images=2000
run baseline_photos $(photos_at 256) "bench.rows=[model,train,epoch]"
run baseline_photos_streamed $(photos_at 256) data.cache=none data.num_workers=14 "bench.rows=[model,train]"
run vgg16_photos model=vgg16 model.pretrained=false $(photos_at 224) "bench.rows=[model,train,epoch]"
run classification_photos loss=classification $(photos_at 256) "bench.rows=[model,train]"
run unet_photos model=unet $(photos_at 256) "bench.rows=[model,train]"
run baseline_synthetic_compiled data.image_size=256 data.batch_size=64 data.num_images=2000 compile=true "bench.rows=[model,train,epoch]"
# The reference's largest experiment: 2,000 photos x 200 epochs of vgg16 at 224 px (the epoch
# row's wall_s; its first epoch, compilation included, is the untimed one).
run reference_largest model=vgg16 model.pretrained=false compile=true $(photos_at 224) \
  "bench.epochs=${REFERENCE_EPOCHS:-199}" "bench.rows=[model,epoch,colorize]" bench.colorize_images=256 bench.colorize_batch=32
echo "rows: $(wc -l < "$out/bench.jsonl") in $out/bench.jsonl"
