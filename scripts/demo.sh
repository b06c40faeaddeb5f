#!/usr/bin/env bash
# The main job on a fresh machine: a real segmentation under mpirun (1 coordinator + 2 tile
# workers) of a synthetic Sentinel-2-like scene, with the published Sen1Floods11 model when it is
# in the Hugging Face cache, else a small model of the same architecture with random weights.
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
    model=demo/small-model
    [ -f "$model/model.safetensors" ] || "$bin/coordinator" create-model "$model" --preset small
    echo "note: $published is not in $hub; using $model (same architecture, random weights: the mask is meaningless)" >&2
fi
[ -f demo/scene.tif ] || "$bin/coordinator" create-scene demo/scene.tif --width 1000 --height 700
rm -f demo/mask.tif
# One BLAS thread per worker: the workers share this machine's cores.
mpirun -np 1 "$bin/coordinator" segment "$model" demo/scene.tif demo/mask.tif --threads 1 : -np "$workers" "$bin/tileworker"
gdalinfo -stats demo/mask.tif | grep -E "^Size|UTM|Origin|Pixel Size|NoData|STATISTICS_MEAN" || true
echo "mask: demo/mask.tif (water 255, land 0, nodata 0)"
