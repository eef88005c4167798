#!/usr/bin/env bash
# bench_data_parallel.sh: data-parallel LoRA fine-tuning on SST-2 (all-MiniLM-L6-v2, max length 64) with
# the same global batch (32) at np=1 (1 and 2 threads), np=2 (1 thread per rank) and np=4 (oversubscribed,
# 1 thread per rank), then the gradient bytes all-reduced per step for full fine-tuning, LoRA and BitFit.
#   STEPS=300 bash scripts/bench_data_parallel.sh
# Scaling efficiency at np=2 = step(np=1, 1 thread) / (2 x step(np=2)). Results: runs/dp/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${STEPS:-300}"
BUILD_DIR="${LADDER_BUILD_DIR:-build}"
MODEL=$(bash scripts/fetch_minilm.sh | tail -n1)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p runs/dp
run() {  # name np threads batch method steps
  local name=$1 np=$2 threads=$3 batch=$4 method=$5 steps=$6 launch=()
  if [[ $np -gt 2 ]]; then launch=(mpirun -np "$np" --oversubscribe)
  elif [[ $np -gt 1 ]]; then launch=(mpirun -np "$np"); fi
  rm -rf "runs/dp/$name"
  echo "== $name: np=$np, $threads thread(s) per rank, batch $batch per rank, $method" >&2
  "${launch[@]}" "$BUILD_DIR/ladder" train --config "examples/sst2_$method.ini" --model.dir "$MODEL" \
    --train.batch_size "$batch" --train.max_steps "$steps" --train.threads "$threads" --eval.every 0 \
    --checkpoint.dir "runs/dp/$name" --checkpoint.resume false > "runs/dp/$name.log" 2>&1
}
run np1_t1 1 1 32 lora "$STEPS"
run np1_t2 1 2 32 lora "$STEPS"
run np2_t1 2 1 16 lora "$STEPS"
run np4_t1 4 1 8 lora "$STEPS"
for m in full lora bitfit; do run "bytes_$m" 2 1 16 "$m" 5; done
python3 - "$STEPS" <<'PY'
import json, sys
steps = sys.argv[1]
r = {n: json.load(open(f"runs/dp/{n}/report.json")) for n in ["np1_t1", "np1_t2", "np2_t1", "np4_t1", "bytes_full", "bytes_lora", "bytes_bitfit"]}
ms = {n: r[n]["timings"]["median_step_ms"] for n in ["np1_t1", "np1_t2", "np2_t1", "np4_t1"]}
out = [f"LoRA r=8 on SST-2, global batch 32, max length 64, {steps} steps (median step)\n",
       "| layout | threads per rank | median step | dev accuracy | all-reduce wait (median) |", "|---|---|---|---|---|"]
for n, label, t in [("np1_t1", "1 process", 1), ("np1_t2", "1 process", 2), ("np2_t1", "mpirun -np 2", 1), ("np4_t1", "mpirun -np 4 --oversubscribe", 1)]:
    out.append(f"| {label} | {t} | {ms[n]:.1f} ms | {100*r[n]['metrics']['final_eval']['accuracy']:.2f}% | {r[n]['timings'].get('median_allreduce_wait_ms', 0):.2f} ms |")
out.append(f"\nScaling efficiency at np=2 (1 thread per rank) vs np=1 with 1 thread: {100*ms['np1_t1']/(2*ms['np2_t1']):.1f}%\n")
out += ["| method (np=2) | trainable parameters | bytes all-reduced per step | vs full |", "|---|---|---|---|"]
full = r["bytes_full"]["metrics"]["allreduce_bytes_per_step"]
for m in ["full", "lora", "bitfit"]:
    b = r[f"bytes_{m}"]["metrics"]["allreduce_bytes_per_step"]
    out.append(f"| {m} | {r[f'bytes_{m}']['metrics']['trainable_parameters']:,} | {b:,} | {100*b/full:.3f}% |")
open("runs/dp/summary.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
