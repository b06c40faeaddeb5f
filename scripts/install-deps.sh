#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, skipping those already present.
# As root it runs apt-get itself; otherwise through sudo when available, else it lists what to install.
set -euo pipefail
packages=(libgdal-dev gdal-bin libopenblas-dev libcurl4-openssl-dev libmpich-dev mpich pkg-config python3-requests)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
else
    echo "missing Debian packages: ${missing[*]} (run as root: apt-get install -y ${missing[*]})" >&2
    exit 1
fi
