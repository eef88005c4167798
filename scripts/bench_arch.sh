#!/usr/bin/env bash
# bench_arch.sh: the same benchmarks from several builds of ladder (e.g. LADDER_ARCH=native and portable),
# interleaved round by round so that a busy machine disturbs every build alike; prints the medians.
#   ROUNDS=3 ITERS=10 STEPS=60 THREADS=2 bash scripts/bench_arch.sh LABEL=BUILD_DIR [LABEL=BUILD_DIR ...]
# Per round and build: `ladder bench` (MiniLM forward B=32 T=128, training step B=16 T=128) and LoRA on
# SST-2 (examples/sst2_lora.ini, STEPS steps, then its dev evaluation): the run's median optimizer step.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}" ITERS="${ITERS:-10}" STEPS="${STEPS:-60}" THREADS="${THREADS:-2}"
MODEL=$(bash scripts/fetch_minilm.sh | tail -n1)
OUT=runs/bench_arch
mkdir -p "$OUT"
for ((r = 1; r <= ROUNDS; r++)); do
  for spec in "$@"; do
    label=${spec%%=*} dir=${spec#*=}
    echo "round $r: $label ($dir)" >&2
    "$dir/ladder" bench --model "$MODEL" --threads "$THREADS" --iters "$ITERS" --report "$OUT/${label}_bench_$r.json" > /dev/null
    rm -rf "$OUT/${label}_lora_$r"
    "$dir/ladder" train --config examples/sst2_lora.ini --model.dir "$MODEL" --train.max_steps "$STEPS" \
      --train.threads "$THREADS" --checkpoint.dir "$OUT/${label}_lora_$r" > /dev/null
  done
done
python3 - "$OUT" "$ROUNDS" "$@" <<'PY'
import json, statistics, sys
out, rounds, specs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print(f"OPENBLAS_CORETYPE={__import__('os').environ.get('OPENBLAS_CORETYPE', 'unset')}, {rounds} interleaved rounds, medians")
print(f"{'build':<12}{'forward ms':>12}{'train step ms':>15}{'LoRA SST-2 step ms':>20}")
base = None
for spec in specs:
    label = spec.split("=", 1)[0]
    fw = statistics.median(json.load(open(f"{out}/{label}_bench_{r}.json"))["metrics"]["forward"]["ms"] for r in range(1, rounds + 1))
    ts = statistics.median(json.load(open(f"{out}/{label}_bench_{r}.json"))["metrics"]["train_step"]["ms"] for r in range(1, rounds + 1))
    lo = statistics.median(json.load(open(f"{out}/{label}_lora_{r}/report.json"))["timings"]["median_step_ms"] for r in range(1, rounds + 1))
    rel = "" if base is None else f"   ({fw / base[0]:.3f}x, {ts / base[1]:.3f}x, {lo / base[2]:.3f}x of {specs[0].split('=')[0]})"
    base = base or (fw, ts, lo)
    print(f"{label:<12}{fw:>12.1f}{ts:>15.1f}{lo:>20.1f}{rel}")
PY
