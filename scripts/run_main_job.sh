#!/usr/bin/env bash
# run_main_job.sh: the README's first command. Installs what is missing, builds, fetches the real
# all-MiniLM-L6-v2, and runs a short real fine-tuning job: LoRA (r=8 on query/value) on SST-2, 300 steps of
# 32 sentences, then the full dev set. Progress and the memory table go to stdout; the run directory
# (checkpoints, report.json) is runs/main-sst2-lora. Rerunning resumes (or, once finished, re-evaluates).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
BUILD_DIR=$(bash scripts/build.sh | tail -n1)
MODEL=$(bash scripts/fetch_minilm.sh | tail -n1)
SHARED="${LADDER_SHARED:-$(cd .. && pwd)/shared}"
OUT="${LADDER_OUT:-runs/main-sst2-lora}"
"$BUILD_DIR/ladder" train --config examples/sst2_lora.ini --model.dir "$MODEL" \
  --task.data_dir "$SHARED/data/glue/SST-2" --train.max_steps "${STEPS:-300}" --eval.every 0 \
  --checkpoint.dir "$OUT"
echo "run directory: $OUT (report.json; checkpoints/ readable with build/ladder inspect or h5dump)"
