#!/usr/bin/env bash
# Benchmarks behind BENCHMARKS.md, run side by side on this machine:
#   1. one 224 tile of the full-size model (random weights): coordinator bench vs PyTorch/TerraTorch
#   2. a 1000×700 scene: coordinator segment (in-process and 2 MPI workers) vs TerraTorch tiled_inference
#   3. coordinator peak RSS on a 6000×6000 6-band Int16 scene (small model, 2 MPI workers)
#   4. throughput with N = 1, 2 MPI workers of one BLAS thread
# PYTHON must point at an interpreter with terratorch installed for the references (skipped otherwise).
# Usage: scripts/bench/run-benchmarks.sh [tile|scene|memory|scaling|all]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=.build/release
what=${1:-all}
python=${PYTHON:-}
models=bench-models
mkdir -p "$models"
[ -f "$models/prithvi-300m/model.safetensors" ] || "$bin/coordinator" create-model "$models/prithvi-300m" --preset sen1floods11-300m
[ -f "$models/scene-1000x700.tif" ] || "$bin/coordinator" create-scene "$models/scene-1000x700.tif" --width 1000 --height 700
has_reference() { [ -n "$python" ] && "$python" -c "import terratorch" 2>/dev/null; }

if [ "$what" = tile ] || [ "$what" = all ]; then
    echo "== one 224×224 tile, full-size model, 2 threads (median of 5 passes; two alternating rounds)"
    for round in 1 2; do
        echo "ours:    $("$bin/coordinator" bench "$models/prithvi-300m" --tiles 5 --threads 2 | tail -1)"
        has_reference && echo "pytorch: $("$python" scripts/bench/pytorch_tile.py --threads 2 --tiles 5 2>/dev/null | tail -1)"
    done
fi

if [ "$what" = scene ] || [ "$what" = all ]; then
    echo "== 1000×700 scene, full-size model, 2 cores"
    scene=$models/scene-1000x700.tif
    /usr/bin/time -f "ours in-process (2 BLAS threads): %e s wall, peak RSS %M KB" \
        "$bin/coordinator" segment "$models/prithvi-300m" "$scene" /tmp/bench-mask.tif --quiet 2>&1 | grep -E "wall|wrote"
    mpirun -np 1 /usr/bin/time -f "ours mpirun 1+2 workers (1 BLAS thread each): coordinator %e s wall, peak RSS %M KB" \
        "$bin/coordinator" segment "$models/prithvi-300m" "$scene" /tmp/bench-mask.tif --quiet --threads 1 \
        : -np 2 "$bin/tileworker" 2>&1 | grep -E "wall|wrote"
    has_reference && "$python" scripts/bench/terratorch_scene.py "$scene" --threads 2 2>/dev/null | tail -2
fi

if [ "$what" = memory ] || [ "$what" = all ]; then
    echo "== coordinator memory on a 6000×6000 6-band Int16 scene (432 MB of pixels), small model"
    [ -f "$models/scene-6000.tif" ] || "$bin/coordinator" create-scene "$models/scene-6000.tif" --width 6000 --height 6000
    [ -f "$models/tiny/model.safetensors" ] || "$bin/coordinator" create-model "$models/tiny" --preset small --embed-dim 64 --heads 2 --depth 2 --decoder-channels 32
    mpirun -np 1 /usr/bin/time -f "coordinator: %e s wall, peak RSS %M KB" \
        "$bin/coordinator" segment "$models/tiny" "$models/scene-6000.tif" /tmp/bench-mask-6000.tif --quiet --threads 1 \
        : -np 2 "$bin/tileworker" 2>&1 | grep -E "wall|wrote"
fi

if [ "$what" = scaling ] || [ "$what" = all ]; then
    echo "== throughput, full-size model, N MPI workers of one BLAS thread (1000×700 scene, 20 tiles)"
    for n in 1 2; do
        mpirun -np 1 "$bin/coordinator" segment "$models/prithvi-300m" "$models/scene-1000x700.tif" /tmp/bench-mask.tif \
            --quiet --threads 1 : -np "$n" "$bin/tileworker" 2>&1 | grep wrote | sed "s/^/N=$n: /"
    done
fi
