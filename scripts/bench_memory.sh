#!/usr/bin/env bash
# bench_memory.sh: peak training memory by category, like LST's Table 1, for full fine-tuning, LoRA,
# Houlsby adapters and Ladder Side-Tuning on SST-2 with all-MiniLM-L6-v2, batch 32, every batch padded to
# max length 128 (task.pad_to_max_length: SST-2's longest sentence has about 66 tokens, so without it no
# batch reaches 128), plus dev accuracy after STEPS steps.
#   STEPS=200 THREADS=2 MAX_LENGTH=128 bash scripts/bench_memory.sh [method ...]
#   SUMMARY_ONLY=1 bash scripts/bench_memory.sh full lst ...   # the table from runs already in runs/memory
# Results: runs/memory/summary.md (MiB; "tracked" is ladder's own accounting, RSS the process's peak). The
# categories are the bytes held at the moment of the tracked peak, so they add up to it: full fine-tuning's
# mapped checkpoint, replaced by its trainable copy before training, is not counted beside that copy.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${STEPS:-200}"
THREADS="${THREADS:-2}"
MAX_LENGTH="${MAX_LENGTH:-128}"
BUILD_DIR="${LADDER_BUILD_DIR:-build}"
MODEL=$(bash scripts/fetch_minilm.sh | tail -n1)
METHODS=("$@")
[[ ${#METHODS[@]} -gt 0 ]] || METHODS=(full lora houlsby lst)
mkdir -p runs/memory
for m in "${METHODS[@]}"; do
  [[ -z "${SUMMARY_ONLY:-}" ]] || break
  rm -rf "runs/memory/$m"
  echo "== $m" >&2
  "$BUILD_DIR/ladder" train --config "examples/sst2_$m.ini" --model.dir "$MODEL" --task.max_length "$MAX_LENGTH" \
    --task.pad_to_max_length true --train.batch_size 32 --train.max_steps "$STEPS" --train.threads "$THREADS" --eval.every 0 \
    --checkpoint.dir "runs/memory/$m" --checkpoint.resume false > "runs/memory/$m.log" 2>&1
done
python3 - "$STEPS" "$MAX_LENGTH" "${METHODS[@]}" <<'PY'
import json, sys
steps, max_length, methods = sys.argv[1], sys.argv[2], sys.argv[3:]
cats = ["frozen weights", "trainable weights", "gradients", "optimizer state", "saved activations", "workspace"]
mib = lambda b: b / 2**20
rows, full = [], None
for m in methods:
    r = json.load(open(f"runs/memory/{m}/report.json"))
    mem = {x["category"]: x["at_peak_total_bytes"] for x in r["memory"] if x["device"] == "cpu"}
    tot = r["memory_peak_total_bytes"]
    if m == "full": full = tot
    rows.append((m, r, mem, tot))
out = [f"Peak training memory, SST-2, all-MiniLM-L6-v2, batch 32, every batch padded to {max_length} tokens, {steps} steps "
       "(MiB held at the tracked peak, by category)\n",
       "| method | trainable params | " + " | ".join(cats) + " | tracked peak | vs full | peak RSS | dev acc |",
       "|---|---|" + "---|" * len(cats) + "---|---|---|---|"]
for m, r, mem, tot in rows:
    out.append(f"| {m} | {r['metrics']['trainable_parameters']:,} | " + " | ".join(f"{mib(mem.get(c, 0)):.1f}" for c in cats) +
               f" | {mib(tot):.1f} | {tot / full:.3f}x | {mib(r['peak_rss_bytes']):.1f} | {100 * r['metrics']['final_eval']['accuracy']:.2f}% |"
               if full else "")
open("runs/memory/summary.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
