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
command=("$mpirun" -np 1 "$bin/coordinator" "$subcommand" "$@" "${extra[@]}" : -np "$workers" "$bin/tileworker")
echo "+ ${command[*]}" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"${command[@]}" 2>&1 | tee "$log" >&2
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
    # hydra names the dead process by pid and host; the coordinator's log maps pids to ranks.
    pid=$(sed -n 's/.*PID \([0-9]*\) RUNNING AT.*/\1/p' "$log" | head -1)
    host=$(sed -n 's/.*PID [0-9]* RUNNING AT \([^ ]*\).*/\1/p' "$log" | head -1)
    if [ -n "$pid" ]; then
        rank=$(grep -o "rank [0-9]* on [^ ]* (pid $pid[,)]" "$log" | head -1 | sed 's/ (pid.*//')
        if [ -n "$rank" ]; then
            echo "run-local: tile worker $rank (pid $pid) died; the job stopped with status $status" >&2
        else
            echo "run-local: the process with pid $pid on $host died (the coordinator, or a worker before its hello); status $status" >&2
        fi
    fi
    [[ " $subcommand $* " == *" segment "* ]] && echo "run-local: progress is kept; rerun with --resume to continue" >&2
fi
exit "$status"
