#!/usr/bin/env bash
# build.sh [BUILD_DIR]: configures (Release, CUDA backend if a toolkit is found) and builds everything.
# LADDER_ARCH=portable|native|<march> (environment) picks the CPU target (cmake/LadderArch.cmake); unset, an
# existing build directory keeps its choice and a new one is built for this machine (native).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-${LADDER_BUILD_DIR:-build}}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DLADDER_CUDA="${LADDER_CUDA:-AUTO}" \
  ${LADDER_ARCH:+-DLADDER_ARCH="$LADDER_ARCH"} >&2
cmake --build "$BUILD_DIR" -j"$(nproc)" >&2
echo "$BUILD_DIR"
