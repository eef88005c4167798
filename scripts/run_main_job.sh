#!/usr/bin/env bash
# run_main_job.sh: the README's first command. Installs what is missing, builds, fetches the real
# all-MiniLM-L6-v2, and runs it over the SST-2 dev sentences: sentence embeddings and hidden states to
# HDF5, throughput and the memory table on stdout, a JSON report beside the HDF5 file.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
BUILD_DIR=$(bash scripts/build.sh | tail -n1)
MODEL=$(bash scripts/fetch_minilm.sh | tail -n1)
SHARED="${LADDER_SHARED:-$(cd .. && pwd)/shared}"
OUT="${LADDER_OUT:-runs/encode-sst2-dev}"
mkdir -p "$OUT"
"$BUILD_DIR/ladder" encode --model "$MODEL" --input "$SHARED/data/glue/SST-2/dev.tsv" --columns 0 --header \
  --pooling mean --normalize --output "$OUT/sst2_dev.h5" --report "$OUT/report.json"
echo "outputs in $OUT: sst2_dev.h5 (h5dump -H $OUT/sst2_dev.h5), report.json"
