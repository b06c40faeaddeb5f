#!/usr/bin/env bash
# Benchmarks behind BENCHMARKS.md, run side by side on this machine:
#   1. one 224 tile of the full-size model (random weights): coordinator bench vs PyTorch/TerraTorch
#   2. a 1000×700 scene: coordinator segment (in-process and 2 MPI workers) vs TerraTorch tiled_inference
#   3. coordinator peak RSS on a 6000×6000 6-band Int16 scene (small model, 2 MPI workers)
#   4. throughput with N = 1, 2 MPI workers of one BLAS thread
#   5. serve: /pooling load test (throughput, p50/p99 latency, HTTP overhead beside the tiles)
#   6. tiling: the same scene with --tiling overlap (default) and --tiling vllm, alternating, 3 rounds
#   7. capacity: coordinator CPU per tile, tiles/s and MPI bytes per tile for both data paths
#      (micro model, 6000² and 10980² scenes, 1 and 2 workers), a ceiling model, and 3 scenes in
#      one job vs three jobs
#   8. scores: the demo model (models/demo-water) on held-out generated scenes, water IoU against
#      their ground truth for the default tiling, --tiling vllm, --stride 224 and other scales
#   9. peers: one 224 tile of the full-size model, coordinator bench vs ONNX Runtime and OpenVINO (fp32) on the
#      same exported model, 1 and 2 threads, batch 1, 5 alternating rounds, medians and ratios
# PYTHON must point at an interpreter with terratorch installed for the references (skipped otherwise);
# peers also needs onnx, onnxscript, onnxruntime and openvino there.
# Usage: scripts/bench/run-benchmarks.sh [tile|scene|memory|scaling|serve|tiling|capacity|scores|peers|all]
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
# Whether two rasters hold the same pixels: both decoded to raw bytes and compared.
same_pixels() {
    gdal_translate -q -of ENVI "$1" /tmp/bench-same-a.raw && gdal_translate -q -of ENVI "$2" /tmp/bench-same-b.raw \
        && cmp -s /tmp/bench-same-a.raw /tmp/bench-same-b.raw
}

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
    rm -f /tmp/bench-water-6000.gpkg
    mpirun -np 1 /usr/bin/time -f "coordinator with --vector: %e s wall, peak RSS %M KB" \
        "$bin/coordinator" segment "$models/tiny" "$models/scene-6000.tif" /tmp/bench-mask-6000.tif --quiet --threads 1 \
        --vector /tmp/bench-water-6000.gpkg : -np 2 "$bin/tileworker" 2>&1 | grep -E "wall|wrote"
fi

if [ "$what" = scaling ] || [ "$what" = all ]; then
    echo "== throughput, full-size model, N MPI workers of one BLAS thread (1000×700 scene, 20 tiles)"
    for n in 1 2; do
        mpirun -np 1 "$bin/coordinator" segment "$models/prithvi-300m" "$models/scene-1000x700.tif" /tmp/bench-mask.tif \
            --quiet --threads 1 : -np "$n" "$bin/tileworker" 2>&1 | grep wrote | sed "s/^/N=$n: /"
    done
fi

if [ "$what" = serve ] || [ "$what" = all ]; then
    echo "== serve: /pooling load test, small model, 2 MPI workers, 224×224 and 520×430 inputs (path in, path out)"
    [ -f "$models/tiny/model.safetensors" ] || "$bin/coordinator" create-model "$models/tiny" --preset small --embed-dim 64 --heads 2 --depth 2 --decoder-channels 32
    mkdir -p "$models/media" "$models/outputs"
    [ -f "$models/media/tile.tif" ] || "$bin/coordinator" create-scene "$models/media/tile.tif" --width 224 --height 224 --nodata-corner 0
    [ -f "$models/media/medium.tif" ] || "$bin/coordinator" create-scene "$models/media/medium.tif" --width 520 --height 430
    log=$(mktemp)
    TERRATORCH_SEGMENTATION_IO_PROCESSOR_CONFIG="{\"output_path\": \"$PWD/$models/outputs\"}" \
        mpirun -np 1 "$bin/coordinator" serve "$models/tiny" --port 0 --allowed-local-media-path "$models/media" --threads 1 \
        : -np 2 "$bin/tileworker" > "$log" 2>&1 &
    server=$!
    for _ in $(seq 1 100); do grep -q "Listening on" "$log" && break; sleep 0.2; done
    url=$(grep -o "http://127.0.0.1:[0-9]*" "$log" | head -1)
    for c in 1 8; do
        echo "-- 224×224 (one tile), concurrency $c"
        "$bin/coordinator" loadtest "$url" --model "$models/tiny" --input "$PWD/$models/media/tile.tif" --requests 100 --concurrency $c
    done
    echo "-- 520×430 (9 tiles), concurrency 4"
    "$bin/coordinator" loadtest "$url" --model "$models/tiny" --input "$PWD/$models/media/medium.tif" --requests 40 --concurrency 4
    kill $server; wait $server 2>/dev/null || true
    rm -f "$log" "$models"/outputs/pool-*.tiff
fi

if [ "$what" = tiling ] || [ "$what" = all ]; then
    echo "== 1000×700 scene, full-size model, in-process, 2 threads: default tiling vs the vLLM plugin's"
    mkdir -p "$models/outputs"
    for round in 1 2 3; do
        for mode in overlap vllm; do
            start=$(date +%s.%N)
            "$bin/coordinator" segment "$models/prithvi-300m" "$models/scene-1000x700.tif" "$models/outputs/tiling-$mode.tif" \
                --tiling "$mode" --threads 2 --quiet 2>/dev/null
            echo "$mode: $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
        done
    done
fi

if [ "$what" = capacity ] || [ "$what" = all ]; then
    echo "== coordinator capacity: a 77k-parameter model (the workers are never the bottleneck), one BLAS thread per worker"
    micro=$models/micro
    [ -f "$micro/model.safetensors" ] || "$bin/coordinator" create-model "$micro" --embed-dim 32 --heads 1 --depth 1 --decoder-channels 8 >/dev/null
    [ -f "$models/scene-6000.tif" ] || "$bin/coordinator" create-scene "$models/scene-6000.tif" --width 6000 --height 6000
    [ -f "$models/scene-10980.tif" ] || "$bin/coordinator" create-scene "$models/scene-10980.tif" --width 10980 --height 10980
    mkdir -p "$models/outputs"
    log=$(mktemp)
    echo "   (each line: the run of median coordinator CPU among 3; the configurations alternate within a round)"
    declare -A runs=()
    for round in 1 2 3; do
        for scene in 6000 10980; do
            for workers in 1 2; do
                for path in auto coordinator; do
                    mpirun -np 1 /usr/bin/time -f "cpu %U %S wall %e rss %M" "$bin/coordinator" segment "$micro" "$models/scene-$scene.tif" \
                        "$models/outputs/capacity.tif" --quiet --threads 1 --data-path "$path" : -np "$workers" "$bin/tileworker" > "$log" 2>&1
                    runs[$scene-$workers-$path]+="$(awk -v scene="$scene" -v workers="$workers" -v path="$path" '
                        /wrote/ { for (i = 1; i <= NF; i++) if ($i == "computed,") computed = substr($(i - 1), 2) }
                        /MPI tile traffic/ { for (i = 1; i <= NF; i++) if ($i == "and") { sent = substr($(i - 1), 2); received = $(i + 1) } }
                        /^cpu/ { cpu = $2 + $3; wall = $5; rss = $7 }
                        END { printf "%.7f %5s² %-11s %d worker(s): coordinator CPU %.2f ms/tile (%.2f s for %d tiles), %.0f tiles/s wall, %s/%s bytes per tile sent/received, RSS %d MB\n",
                                     cpu / computed, scene, path, workers, 1000 * cpu / computed, cpu, computed, computed / wall, sent, received, rss / 1024 }' "$log")"$'\n'
                done
            done
        done
    done
    for scene in 6000 10980; do
        for workers in 1 2; do
            for path in auto coordinator; do
                printf '%s' "${runs[$scene-$workers-$path]}" | sort -n | sed -n 2p | cut -d' ' -f2-
            done
        done
    done
    rm -f "$log"
    echo "-- ceiling model (a prediction from the figures above, not a measurement): a worker core computes one 300M tile"
    echo "   in T seconds (coordinator bench, 1 thread), the coordinator spends C ms of CPU per tile, so one coordinator"
    echo "   feeds at most 1000·T/C worker cores; a 10980² Sentinel-2 tile is 2601 tiles at the default stride."
    echo "   e.g. T = 2.5 s, C = 1.2 ms: 2080 worker cores; 4 nodes × 32 cores: 2601·2.5/127 = 51 s; 16 nodes: 13 s; 64 nodes: max(2601·2.5/2047, 2601·0.0012) = 3.2 s"

    echo "== three 1000×700 scenes, small model, 2 workers: one job (--output-dir) vs three jobs"
    [ -f "$models/tiny/model.safetensors" ] || "$bin/coordinator" create-model "$models/tiny" --preset small --embed-dim 64 --heads 2 --depth 2 --decoder-channels 32
    for k in 1 2 3; do [ -f "$models/scene-multi-$k.tif" ] || "$bin/coordinator" create-scene "$models/scene-multi-$k.tif" --width 1000 --height 700 --seed "$k" >/dev/null; done
    for round in 1 2 3; do
        start=$(date +%s.%N)
        mpirun -np 1 "$bin/coordinator" segment "$models/tiny" "$models"/scene-multi-{1,2,3}.tif --output-dir "$models/outputs/multi" \
            --quiet --threads 1 : -np 2 "$bin/tileworker" > /dev/null 2>&1
        middle=$(date +%s.%N)
        for k in 1 2 3; do
            mpirun -np 1 "$bin/coordinator" segment "$models/tiny" "$models/scene-multi-$k.tif" "$models/outputs/single-$k.tif" \
                --quiet --threads 1 : -np 2 "$bin/tileworker" > /dev/null 2>&1
        done
        end=$(date +%s.%N)
        same=yes
        for k in 1 2 3; do same_pixels "$models/outputs/multi/scene-multi-$k.tif" "$models/outputs/single-$k.tif" || same=no; done
        awk -v a="$start" -v b="$middle" -v c="$end" -v same="$same" 'BEGIN { printf "one job %.1f s, three jobs %.1f s (%.2f×); masks identical: %s\n", b - a, c - b, (b - a) / (c - b), same }'
    done
fi

if [ "$what" = scores ] || [ "$what" = all ]; then
    echo "== demo model on held-out scenes (1000×700, clouds 0.1): water IoU / precision / recall against the truth"
    for seed in 7 3 5 9; do
        scene=$models/heldout-$seed.tif truth=$models/heldout-$seed-truth.tif
        [ -f "$truth" ] || "$bin/coordinator" create-scene "$scene" --landscape varied --seed $seed --clouds 0.1 \
            --width 1000 --height 700 --truth "$truth" >/dev/null
        for variant in "default" "--tiling vllm" "--stride 224" "--scale 1" "--scale 2"; do
            flags=${variant#default} out=/tmp/bench-score-${variant//[ -]/}.tif
            # shellcheck disable=SC2086
            "$bin/coordinator" segment models/demo-water "$scene" "$out" --quiet $flags >/dev/null 2>&1
            echo "seed $seed $variant: $("$bin/coordinator" score "$out" "$truth" | grep '^water' | tr -s ' ')"
        done
        mpirun -np 1 "$bin/coordinator" segment models/demo-water "$scene" /tmp/bench-score-mpi.tif --quiet --threads 1 \
            : -np 2 "$bin/tileworker" >/dev/null 2>&1
        same_pixels /tmp/bench-score-default.tif /tmp/bench-score-mpi.tif && echo "seed $seed: mpirun 1+2 workers mask identical to in-process" \
            || echo "seed $seed: mpirun mask DIFFERS from in-process"
    done
fi

if [ "$what" = peers ] || [ "$what" = all ]; then
    onnx=$models/prithvi-300m.onnx
    if [ -n "$python" ] && "$python" -c "import onnxruntime, openvino" 2>/dev/null && { [ -f "$onnx" ] || has_reference; }; then
        # The export (once) needs terratorch and onnxscript; its errors are shown.
        [ -f "$onnx" ] || "$python" scripts/bench/onnx_peers.py --export "$onnx" > /dev/null
        # Batch 1 is `segment`'s and `serve`'s default. (The exported graph takes one location row,
        # so the peers cannot run larger batches of it.)
        echo "== one 224×224 tile, full-size model, fp32, batch 1 (median of 5 passes; 5 alternating rounds per thread count)"
        median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
        for threads in 2 1; do
            : > "$models/outputs-peers-ours" ; : > "$models/outputs-peers-ort" ; : > "$models/outputs-peers-ov"
            for round in 1 2 3 4 5; do
                ours=$("$bin/coordinator" bench "$models/prithvi-300m" --tiles 5 --threads "$threads" --batch 1 | tail -1)
                ort=$("$python" scripts/bench/onnx_peers.py --model "$onnx" --runtime onnxruntime --threads "$threads" --batch 1 | tail -1)
                ov=$("$python" scripts/bench/onnx_peers.py --model "$onnx" --runtime openvino --threads "$threads" --batch 1 | tail -1)
                echo "threads $threads round $round: ours ${ours#median_tile_ms: } ms, onnxruntime ${ort#median_tile_ms: } ms, openvino ${ov#median_tile_ms: } ms per tile"
                echo "${ours#median_tile_ms: }" >> "$models/outputs-peers-ours"
                echo "${ort#median_tile_ms: }" >> "$models/outputs-peers-ort"
                echo "${ov#median_tile_ms: }" >> "$models/outputs-peers-ov"
            done
            o=$(median < "$models/outputs-peers-ours"); r=$(median < "$models/outputs-peers-ort"); v=$(median < "$models/outputs-peers-ov")
            awk -v t="$threads" -v o="$o" -v r="$r" -v v="$v" 'BEGIN {
                f = (r < v) ? r : v
                printf "threads %s medians: ours %.1f, onnxruntime %.1f, openvino %.1f ms; ours / faster peer %.3f, ours / onnxruntime %.3f\n", t, o, r, v, o / f, o / r }'
            rm -f "$models/outputs-peers-ours" "$models/outputs-peers-ort" "$models/outputs-peers-ov"
        done
    else
        echo "== peers skipped: PYTHON needs onnxruntime and openvino (and terratorch and onnxscript until $onnx exists)"
    fi
fi
