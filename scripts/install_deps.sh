#!/usr/bin/env bash
# install_deps.sh: installs what ladder needs from Debian/Ubuntu packages, only if something is missing.
# Runs as root or through sudo. The CUDA toolkit is optional and never installed here: when nvcc is
# present the CUDA backend builds too (LADDER_CUDA=AUTO).
set -euo pipefail
PACKAGES=(build-essential cmake pkg-config git curl ca-certificates python3
          libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools
          libboost-program-options-dev libopenblas-openmp-dev nlohmann-json3-dev libicu-dev
          libgtest-dev python3-h5py)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install_deps: all ${#PACKAGES[@]} packages present" >&2
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install_deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install_deps: installing ${missing[*]}" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
