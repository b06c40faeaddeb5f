#!/usr/bin/env bash
# Runs a coordinator subcommand with N tile workers on this machine under mpirun (MPMD), one
# BLAS thread per core shared among the workers, and, if a rank dies, names it.
#
#   cluster/run-local.sh 2 segment MODEL scene.tif mask.tif
#   cluster/run-local.sh 4 serve MODEL --port 8000 --allowed-local-media-path /data
#
# Environment: PRITHVI_BIN (default .build/release beside this script), MPIRUN (default mpirun),
# CORES (default nproc). Prints the mpirun command line it runs; exits with mpirun's status.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${PRITHVI_BIN:-$here/.build/release}
mpirun=${MPIRUN:-mpirun}
if [ $# -lt 2 ] || ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ]; then
    echo "usage: $0 WORKERS SUBCOMMAND [ARGS...]   e.g. $0 2 segment MODEL in.tif out.tif" >&2
    exit 64
fi
workers=$1; shift
subcommand=$1; shift
cores=${CORES:-$(nproc)}
threads=$(( cores / workers )); [ "$threads" -ge 1 ] || threads=1
extra=()
case "$subcommand" in segment|serve) [[ " $* " == *" --threads "* ]] || extra=(--threads "$threads") ;; esac
# hydra names only the first failed process in rank order, often one it killed while cleaning
# up, so each worker runs under a small shell that writes down its own abnormal end: the first
# line is the worker that died first (hydra then kills each worker's process group, shell too).
deaths=$(mktemp)
log=$(mktemp)
trap 'rm -f "$log" "$deaths"' EXIT
export PRITHVI_DEATHS=$deaths
watch='"$0"; s=$?; [ "$s" -eq 0 ] || echo "$(date +%s.%N) $PMI_RANK $(hostname) $s" >> "$PRITHVI_DEATHS"; exit $s'
command=("$mpirun" -np 1 "$bin/coordinator" "$subcommand" "$@" "${extra[@]}" : -np "$workers" sh -c "$watch" "$bin/tileworker")
echo "+ $mpirun -np 1 $bin/coordinator $subcommand $* ${extra[*]} : -np $workers $bin/tileworker" >&2
"${command[@]}" 2>&1 | tee "$log" >&2
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
    if [ -s "$deaths" ]; then
        read -r _ rank host code < <(sort -n "$deaths" | head -1)
        how="exit status $code"; [ "$code" -gt 128 ] && how="signal $((code - 128))"
        pid=$(grep -o "rank $rank on [^ ]* (pid [0-9]*" "$log" | head -1 | grep -o '[0-9]*$')
        echo "run-local: tile worker rank $rank on $host (pid ${pid:-?}) died ($how); the job stopped with status $status" >&2
    else
        # No worker ended on its own: hydra's report names the process (the coordinator, most likely).
        pid=$(sed -n 's/.*PID \([0-9]*\) RUNNING AT.*/\1/p' "$log" | head -1)
        host=$(sed -n 's/.*PID [0-9]* RUNNING AT \([^ ]*\).*/\1/p' "$log" | head -1)
        [ -n "$pid" ] && echo "run-local: the process with pid $pid on $host died (the coordinator, or a worker before its hello); status $status" >&2
    fi
    [[ " $subcommand $* " == *" segment "* ]] && echo "run-local: progress is kept; rerun with --resume to continue" >&2
fi
exit "$status"
