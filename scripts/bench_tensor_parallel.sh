#!/usr/bin/env bash
# bench_tensor_parallel.sh: LoRA fine-tuning on SST-2 (all-MiniLM-L6-v2, max length 64, global batch 32)
# with the frozen backbone sharded by tensor parallelism: tp=1 (one process), tp=2 (mpirun -np 2),
# tp=4 (mpirun -np 4 --oversubscribe) and dp=2 x tp=2 (np 4), 1 thread per rank. Reports the frozen-weight
# bytes each rank holds, the median step, the median time in tp all-reduces per step and dev accuracy.
#   STEPS=100 bash scripts/bench_tensor_parallel.sh
# Results: runs/tp/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${STEPS:-100}"
BUILD_DIR="${LADDER_BUILD_DIR:-build}"
MODEL=$(bash scripts/fetch_minilm.sh | tail -n1)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p runs/tp
run() {  # name np tp batch-per-replica
  local name=$1 np=$2 tp=$3 batch=$4 launch=()
  if [[ $np -gt 2 ]]; then launch=(mpirun -np "$np" --oversubscribe)
  elif [[ $np -gt 1 ]]; then launch=(mpirun -np "$np"); fi
  rm -rf "runs/tp/$name"
  echo "== $name: np=$np, tp=$tp, batch $batch per replica" >&2
  "${launch[@]}" "$BUILD_DIR/ladder" train --config examples/sst2_lora.ini --model.dir "$MODEL" \
    --train.batch_size "$batch" --train.max_steps "$STEPS" --train.threads 1 --parallel.tp "$tp" \
    --checkpoint.dir "runs/tp/$name" --checkpoint.resume false > "runs/tp/$name.log" 2>&1
}
run tp1 1 1 32
run tp2 2 2 32
run tp4 4 4 32
run dp2tp2 4 2 16
python3 - "$STEPS" <<'PY'
import json, sys
steps = sys.argv[1]
names = ["tp1", "tp2", "tp4", "dp2tp2"]
r = {n: json.load(open(f"runs/tp/{n}/report.json")) for n in names}
base = r["tp1"]["metrics"]["frozen_weight_bytes_per_rank"]
out = [f"LoRA r=8 on SST-2, global batch 32, max length 64, {steps} steps, 1 thread per rank\n",
       "| layout | frozen weights per rank | vs tp=1 | median step | tp all-reduce per step | dev accuracy |",
       "|---|---|---|---|---|---|"]
for n, label in zip(names, ["tp=1 (1 process)", "tp=2 (np 2)", "tp=4 (np 4, oversubscribed)", "dp=2 x tp=2 (np 4, oversubscribed)"]):
    m, t = r[n]["metrics"], r[n]["timings"]
    b = m["frozen_weight_bytes_per_rank"]
    out.append(f"| {label} | {b/2**20:.1f} MiB | {b/base:.3f}x | {t['median_step_ms']:.1f} ms | {t.get('median_tp_allreduce_ms', 0):.1f} ms | {100*m['final_eval']['accuracy']:.2f}% |")
open("runs/tp/summary.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
