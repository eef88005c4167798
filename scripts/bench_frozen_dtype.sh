#!/usr/bin/env bash
# bench_frozen_dtype.sh: LoRA on SST-2 with the frozen Linear weights held as f32 and as bf16
# (model.frozen_dtype), interleaved round by round; prints the median step, the frozen weights' bytes at the
# tracked peak, the tracked peak and the dev accuracy on EVAL examples of each.
#   ROUNDS=5 STEPS=60 THREADS=2 EVAL=872 bash scripts/bench_frozen_dtype.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-5}" STEPS="${STEPS:-60}" THREADS="${THREADS:-2}" EVAL="${EVAL:-872}"
BUILD_DIR="${LADDER_BUILD_DIR:-build}"
MODEL=$(bash scripts/fetch_minilm.sh | tail -n1)
OUT=runs/bench_frozen_dtype
mkdir -p "$OUT"
for ((r = 1; r <= ROUNDS; r++)); do
  for dt in f32 bf16; do
    echo "round $r: $dt" >&2
    rm -rf "$OUT/${dt}_$r"
    "$BUILD_DIR/ladder" train --config examples/sst2_lora.ini --model.dir "$MODEL" --train.max_steps "$STEPS" \
      --train.threads "$THREADS" --task.max_eval_examples "$EVAL" --model.frozen_dtype "$dt" \
      --checkpoint.dir "$OUT/${dt}_$r" --checkpoint.resume false --report "$OUT/${dt}_$r.json" > "$OUT/${dt}_$r.log"
  done
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}, {rounds} interleaved rounds, medians")
print(f"{'frozen dtype':<14}{'step ms':>9}{'frozen MiB':>12}{'tracked peak MiB':>18}{'dev acc':>9}")
for dt in ("f32", "bf16"):
    runs = [json.load(open(f"{out}/{dt}_{r}.json")) for r in range(1, rounds + 1)]
    step = statistics.median(d["timings"]["median_step_ms"] for d in runs)
    mem = runs[0]["memory"]
    frozen = next(m["at_peak_total_bytes"] for m in mem if m["category"] == "frozen weights") / 2**20
    peak = sum(m["at_peak_total_bytes"] for m in mem) / 2**20
    acc = runs[0]["metrics"]["final_eval"]["accuracy"] * 100
    print(f"{dt:<14}{step:>9.1f}{frozen:>12.1f}{peak:>18.1f}{acc:>9.2f}")
PY
