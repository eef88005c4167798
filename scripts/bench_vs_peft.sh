#!/usr/bin/env bash
# bench_vs_peft.sh: ladder's SST-2 fine-tuning runs beside the same runs in PyTorch + Hugging Face PEFT,
# one tool at a time on the same cores, same budget (STEPS steps of 32 sentences, max length 64, the same
# length-bucketed batch order), then the step-time ratio.
#   PYTHON=/path/to/venv/bin/python STEPS=1000 THREADS=2 bash scripts/bench_vs_peft.sh [lora] [full]
# PYTHON needs torch, transformers and peft (a development virtualenv; the build never needs them).
# Results: runs/peft/<method>_{ladder,peft}.json and runs/peft/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${STEPS:-1000}"
THREADS="${THREADS:-2}"
PYTHON="${PYTHON:-python3}"
BUILD_DIR="${LADDER_BUILD_DIR:-build}"
MODEL=$(bash scripts/fetch_minilm.sh | tail -n1)
"$PYTHON" -c "import torch, transformers, peft" 2>/dev/null || { echo "PYTHON=$PYTHON lacks torch/transformers/peft" >&2; exit 1; }
METHODS=("$@")
[[ ${#METHODS[@]} -gt 0 ]] || METHODS=(lora full)
mkdir -p runs/peft
for m in "${METHODS[@]}"; do
  echo "== $m: ladder ($STEPS steps)" >&2
  rm -rf "runs/peft/${m}_ckpt"
  "$BUILD_DIR/ladder" train --config "examples/sst2_$m.ini" --model.dir "$MODEL" --train.max_steps "$STEPS" \
    --train.threads "$THREADS" --eval.every 0 --checkpoint.dir "runs/peft/${m}_ckpt" --checkpoint.resume false \
    --report "runs/peft/${m}_ladder.json" > "runs/peft/${m}_ladder.log" 2>&1
  echo "== $m: PyTorch/PEFT ($STEPS steps)" >&2
  "$PYTHON" scripts/peft_glue.py --method "$m" --steps "$STEPS" --threads "$THREADS" --minilm "$MODEL" \
    --json "runs/peft/${m}_peft.json" > "runs/peft/${m}_peft.log" 2>&1
done
python3 - "$STEPS" "$THREADS" "${METHODS[@]}" <<'PY'
import json, sys
steps, threads, methods = sys.argv[1], sys.argv[2], sys.argv[3:]
out = [f"SST-2, all-MiniLM-L6-v2, {steps} steps of 32 (max length 64), {threads} threads\n",
       "| method | ladder dev acc | PEFT/PyTorch dev acc | ladder median step | PEFT/PyTorch median step | ratio | ladder peak RSS | PEFT/PyTorch peak RSS |",
       "|---|---|---|---|---|---|---|---|"]
for m in methods:
    l = json.load(open(f"runs/peft/{m}_ladder.json")); p = json.load(open(f"runs/peft/{m}_peft.json"))
    la = 100 * l["metrics"]["final_eval"]["accuracy"]; pa = 100 * p["dev_accuracy"]
    ls = l["timings"]["median_step_ms"]; ps = p["median_step_ms"]
    out.append(f"| {m} | {la:.2f} | {pa:.2f} | {ls:.1f} ms | {ps:.1f} ms | {ls/ps:.2f}x | "
               f"{l['peak_rss_bytes']/2**20:.0f} MiB | {p['peak_rss_bytes']/2**20:.0f} MiB |")
open("runs/peft/summary.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
