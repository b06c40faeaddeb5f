#!/usr/bin/env bash
# The main job on a fresh machine: a real segmentation under mpirun (1 coordinator + 2 tile
# workers) of a generated Sentinel-2-like scene the models never trained on, a quicklook PNG, and
# the mask scored against the scene's ground truth. The model is the published Sen1Floods11
# fine-tune when it is in the Hugging Face cache, else models/demo-water: a toy of the same
# architecture trained on synthetic scenes (scripts/train_demo_model.py; not a flood model).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release
workers=${WORKERS:-2}
mkdir -p demo
published=ibm-nasa-geospatial/Prithvi-EO-2.0-300M-TL-Sen1Floods11
hub=${HF_HUB_CACHE:-${HF_HOME:-$HOME/.cache/huggingface}/hub}
if ls "$hub/models--${published/\//--}/snapshots/"*/config.* >/dev/null 2>&1; then
    model=$published
else
    model=models/demo-water
    echo "note: $published is not in $hub; using $model (same architecture, a toy trained on synthetic scenes: see its README.md)" >&2
fi
# Seed 7 is held out: the demo model trained on seeds 101 and up.
[ -f demo/scene.tif ] && [ -f demo/truth.tif ] ||
    "$bin/coordinator" create-scene demo/scene.tif --landscape varied --seed 7 --clouds 0.1 --width 1000 --height 700 --truth demo/truth.tif
rm -f demo/mask.tif
# One BLAS thread per worker: the workers share this machine's cores.
mpirun -np 1 "$bin/coordinator" segment "$model" demo/scene.tif demo/mask.tif --threads 1 : -np "$workers" "$bin/tileworker"
gdalinfo demo/mask.tif | grep -E "^Size|UTM|Origin|Pixel Size|NoData" || true
"$bin/coordinator" quicklook demo/scene.tif demo/mask.tif demo/quicklook.png
"$bin/coordinator" score demo/mask.tif demo/truth.tif
echo "mask: demo/mask.tif (water 255, land 0, nodata 0); picture: demo/quicklook.png (false colour, water in cyan)"
