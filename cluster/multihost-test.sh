#!/usr/bin/env bash
# A real multi-host run on one machine: three network namespaces with their own addresses
# (10.77.N.2, routed through this host), one "host" for the coordinator and two for tile workers,
# MPI over TCP between them (UCX_TLS=tcp), hydra starting its proxies in each namespace through a
# launcher that stands in for ssh. The mask must equal an in-process run, with the workers
# reading their own tiles and with pixels shipped; every namespace and link
# is removed afterwards, and any failure exits non-zero. Needs root and iproute2; says why and
# skips (exit 0) when the machine does not allow it.
#
#   sudo cluster/multihost-test.sh            # PRITHVI_BIN=… to use other binaries
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${PRITHVI_BIN:-$here/.build/release}
skip() { echo "multihost-test: skipped: $*"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
[ -x "$bin/coordinator" ] && [ -x "$bin/tileworker" ] || { echo "multihost-test: build first (missing $bin/coordinator)" >&2; exit 1; }

tag=pm$$
hosts=("${tag}h0" "${tag}h1" "${tag}h2")
work=$(mktemp -d)
forward_was=$(cat /proc/sys/net/ipv4/ip_forward)
cleanup() {
    for i in 0 1 2; do
        ip link del "${tag}r$i" 2>/dev/null || true
        ip netns del "${hosts[$i]}" 2>/dev/null || true
    done
    echo "$forward_was" > /proc/sys/net/ipv4/ip_forward 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
if ! ip netns add "${hosts[0]}" 2>/dev/null; then skip "cannot create network namespaces here"; fi
for i in 0 1 2; do
    [ "$i" -eq 0 ] || ip netns add "${hosts[$i]}"
    ip link add "${tag}r$i" type veth peer name "${tag}n$i"
    ip link set "${tag}n$i" netns "${hosts[$i]}"
    ip addr add "10.77.$i.1/24" dev "${tag}r$i"
    ip link set "${tag}r$i" up
    # The same interface name on every "host", so UCX can be told to use only it.
    ip netns exec "${hosts[$i]}" ip link set "${tag}n$i" name mpi0
    ip netns exec "${hosts[$i]}" ip addr add "10.77.$i.2/24" dev mpi0
    ip netns exec "${hosts[$i]}" ip link set mpi0 up
    ip netns exec "${hosts[$i]}" ip link set lo up
    ip netns exec "${hosts[$i]}" ip route add default via "10.77.$i.1"
done
echo 1 > /proc/sys/net/ipv4/ip_forward
# Each namespace reaches the others through this host.
ip netns exec "${hosts[1]}" ip route get 10.77.2.2 >/dev/null || { echo "multihost-test: no route between namespaces" >&2; exit 1; }

# The "ssh" of this cluster: hydra calls it as `launcher [options] HOST COMMAND…`.
cat > "$work/netns-launcher" <<'LAUNCHER'
#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in -*) shift ;; *) break ;; esac; done
host=$1; shift
exec ip netns exec "$host" unshare --uts sh -c "hostname $host; $*"
LAUNCHER
chmod +x "$work/netns-launcher"

"$bin/coordinator" create-model "$work/model" --preset small --embed-dim 64 --heads 2 --depth 2 --decoder-channels 32 >/dev/null
"$bin/coordinator" create-scene "$work/scene.tif" --width 1000 --height 700 >/dev/null
"$bin/coordinator" segment "$work/model" "$work/scene.tif" "$work/reference.tif" --threads 1 --quiet 2>/dev/null

reference=$(gdalinfo -checksum "$work/reference.tif" | grep Checksum)
# Both data paths: workers reading their own tiles (they see the same files) and pixels shipped.
for path in auto coordinator; do
    echo "multihost-test: coordinator on ${hosts[0]} (10.77.0.2), workers on ${hosts[1]} and ${hosts[2]}, MPI over TCP, --data-path $path"
    timeout 300 mpiexec -genv PRITHVI_FINALIZE_TIMEOUT ${PRITHVI_FINALIZE_TIMEOUT:-10} -launcher ssh -launcher-exec "$work/netns-launcher" \
        -hosts "${hosts[0]}:1,${hosts[1]}:1,${hosts[2]}:1" -iface "${tag}r0" \
        -genv UCX_TLS tcp,self -genv UCX_NET_DEVICES mpi0 \
        -np 1 "$bin/coordinator" segment "$work/model" "$work/scene.tif" "$work/mask-$path.tif" --threads 1 --quiet --data-path "$path" \
        : -np 2 "$bin/tileworker" 2>&1 | tee "$work/log"
    status=${PIPESTATUS[0]}
    [ "$status" -eq 0 ] || { echo "multihost-test: FAILED: mpiexec exited with $status" >&2; exit 1; }
    grep -q "2 tile workers on 2 host(s)" "$work/log" || { echo "multihost-test: FAILED: the workers did not run on two hosts" >&2; exit 1; }
    for host in "${hosts[1]}" "${hosts[2]}"; do
        grep -q "on $host (pid" "$work/log" || { echo "multihost-test: FAILED: no worker on $host" >&2; exit 1; }
    done
    read_by_workers=$(grep -o "[0-9]* tiles read by the workers" "$work/log" | grep -o "^[0-9]*")
    if [ "$path" = auto ]; then
        [ "${read_by_workers:-0}" -gt 0 ] || { echo "multihost-test: FAILED: no worker read its own tiles" >&2; exit 1; }
    else
        [ "${read_by_workers:-1}" -eq 0 ] || { echo "multihost-test: FAILED: workers read tiles with --data-path coordinator" >&2; exit 1; }
    fi
    mask=$(gdalinfo -checksum "$work/mask-$path.tif" | grep Checksum)
    [ "$reference" = "$mask" ] || { echo "multihost-test: FAILED: the $path mask differs from the in-process run ($mask vs $reference)" >&2; exit 1; }
    echo "multihost-test: --data-path $path: the mask over 3 hosts equals the in-process mask ($mask); $read_by_workers tiles read by the workers"
done
echo "multihost-test: passed"
