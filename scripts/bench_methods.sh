#!/usr/bin/env bash
# bench_methods.sh: every method on SST-2 with all-MiniLM-L6-v2 under the same budget (max length 64, batch
# 32, STEPS optimizer steps, full dev evaluation at the end), one run at a time, then a results table.
#   STEPS=1000 THREADS=2 [PYTHON=/path/to/venv/bin/python] bash scripts/bench_methods.sh [method ...]
# With PYTHON (torch, transformers, peft), the PyTorch/PEFT peers of full and LoRA run right after ladder's.
# Runs go to runs/methods/<method>/ (report.json, checkpoints); the table to runs/methods/results.md.
# DyLoRA is compared with separate LoRA runs at ranks 1, 2, 4 and 8.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${STEPS:-1000}"
THREADS="${THREADS:-2}"
BUILD_DIR="${LADDER_BUILD_DIR:-build}"
MODEL=$(bash scripts/fetch_minilm.sh | tail -n1)
METHODS=("$@")
[[ ${#METHODS[@]} -gt 0 ]] || METHODS=(full bitfit lora dylora prompt houlsby pfeiffer compacter compacter++ krona krona_b krona_b_res lst lora_r1 lora_r2 lora_r4)
mkdir -p runs/methods
for m in "${METHODS[@]}"; do
  extra=()
  cfg="examples/sst2_$m.ini"
  if [[ $m == lora_r* ]]; then cfg=examples/sst2_lora.ini; extra=(--method.lora_r "${m#lora_r}"); fi
  out="runs/methods/$m"
  rm -rf "$out"
  echo "== $m ($STEPS steps)" >&2
  "$BUILD_DIR/ladder" train --config "$cfg" --model.dir "$MODEL" --train.max_steps "$STEPS" --train.threads "$THREADS" \
    --eval.every 0 --checkpoint.dir "$out" --checkpoint.resume false "${extra[@]}" > "runs/methods/$m.log" 2>&1 \
    || { echo "   failed: see runs/methods/$m.log" >&2; continue; }
  tail -n 3 "runs/methods/$m.log" | head -n 1 >&2
  # The PyTorch / PEFT peer right after ladder's run of the same method, same cores and budget.
  if [[ -n "${PYTHON:-}" && ( $m == lora || $m == full ) ]]; then
    echo "   PyTorch/PEFT $m" >&2
    "$PYTHON" scripts/peft_glue.py --method "$m" --steps "$STEPS" --threads "$THREADS" --minilm "$MODEL" \
      --json "runs/methods/peft_$m.json" > "runs/methods/peft_$m.log" 2>&1 || echo "   PEFT $m failed" >&2
  fi
done
python3 - "$STEPS" <<'PY'
import json, os, sys
steps = sys.argv[1]
rows = []
def mib(b): return f"{b / 2**20:.1f}"
for m in sorted(os.listdir("runs/methods")):
    p = f"runs/methods/{m}/report.json"
    if not os.path.isfile(p): continue
    r = json.load(open(p))
    mem = {x["category"]: x["peak_bytes"] for x in r["memory"] if x["device"] == "cpu"}
    met = r["metrics"]
    acc = met.get("final_eval", {}).get("accuracy", float("nan"))
    rows.append((m, met["trainable_parameters"], 100 * met["trainable_parameters"] / met["total_parameters"], 100 * acc,
                 r["timings"]["median_step_ms"], mib(mem["trainable weights"]), mib(mem["gradients"]),
                 mib(mem["optimizer state"]), mib(mem["saved activations"]), mib(mem["workspace"]),
                 mib(r["memory_peak_total_bytes"]), mib(r["peak_rss_bytes"]), met))
with open("runs/methods/results.md", "w") as f:
    f.write(f"SST-2 dev accuracy after {steps} steps (batch 32, max length 64), all-MiniLM-L6-v2; memory peaks in MiB\n\n")
    f.write("| method | trainable | % | dev acc | median step ms | trainable w | grads | optim | saved act | workspace | tracked peak | peak RSS |\n")
    f.write("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r[0]} | {r[1]:,} | {r[2]:.3f} | {r[3]:.2f} | {r[4]:.1f} | " + " | ".join(r[5:12]) + " |\n")
    peers = [(m, json.load(open(f"runs/methods/peft_{m}.json"))) for m in ("full", "lora") if os.path.isfile(f"runs/methods/peft_{m}.json")]
    if peers:
        f.write("\nThe same runs in PyTorch + PEFT (scripts/peft_glue.py), right after ladder's, same cores\n\n")
        f.write("| method | ladder dev acc | PyTorch/PEFT dev acc | ladder median step | PyTorch/PEFT median step | ratio | ladder peak RSS | PyTorch/PEFT peak RSS |\n|---|---|---|---|---|---|---|---|\n")
        for m, p in peers:
            r = next(x for x in rows if x[0] == m)
            f.write(f"| {m} | {r[3]:.2f} | {100*p['dev_accuracy']:.2f} | {r[4]:.1f} ms | {p['median_step_ms']:.1f} ms | {r[4]/p['median_step_ms']:.2f}x | {r[11]} MiB | {p['peak_rss_bytes']/2**20:.1f} MiB |\n")
    dy = next((r for r in rows if r[0] == "dylora"), None)
    if dy:
        f.write("\nDyLoRA (one run) vs separate LoRA runs, dev accuracy by rank\n\n| rank | DyLoRA | LoRA |\n|---|---|---|\n")
        lora = {1: "lora_r1", 2: "lora_r2", 4: "lora_r4", 8: "lora"}
        for b in range(1, 9):
            d = dy[12].get(f"dylora_rank_{b}", {}).get("accuracy")
            l = next((r[3] for r in rows if r[0] == lora.get(b)), None)
            f.write(f"| {b} | {100*d:.2f} | {'' if l is None else f'{l:.2f}'} |\n" if d is not None else "")
print(open("runs/methods/results.md").read())
PY
