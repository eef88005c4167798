#!/usr/bin/env bash
# check_loss_series.sh: every method's SST-2 loss series over STEPS steps, written by one ladder binary, or
# compared bit for bit with the series another binary wrote (a refactor must not change any number).
#   bash scripts/check_loss_series.sh record  LADDER_BINARY OUT_DIR      # OUT_DIR/<method>.json
#   bash scripts/check_loss_series.sh compare BEFORE_DIR AFTER_DIR       # exits 1 on any difference
# Methods: every examples/sst2_*.ini, plus lst trained from an activation store (`ladder cache` first).
# STEPS (100), THREADS (2), EVAL (64 dev examples at the end), LADDER_MINILM_DIR as in the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?record or compare}
if [[ $mode == compare ]]; then
  python3 - "$2" "$3" <<'PY'
import json, os, sys
before, after = sys.argv[1], sys.argv[2]
bad = 0
names = sorted(f for f in os.listdir(before) if f.endswith(".json"))
for f in names:
    a = json.load(open(os.path.join(before, f)))["metrics"]
    p = os.path.join(after, f)
    if not os.path.exists(p):
        print(f"{f[:-5]:14s} MISSING in {after}"); bad += 1; continue
    b = json.load(open(p))["metrics"]
    la, lb = a["loss_series"], b["loss_series"]
    same = la == lb and a["final_eval"] == b["final_eval"]
    first = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y), None)
    print(f"{f[:-5]:14s} {len(la):4d} steps  {'identical' if same else 'DIFFERENT'}"
          + ("" if same else f" (first at step {first + 1 if first is not None else '-'}; eval {a['final_eval']} vs {b['final_eval']})"))
    bad += not same
print(f"{len(names) - bad} of {len(names)} methods identical")
sys.exit(1 if bad else 0)
PY
  exit $?
fi
bin=${2:?ladder binary}; out=${3:?output dir}
STEPS=${STEPS:-100}; THREADS=${THREADS:-2}; EVAL=${EVAL:-64}
MODEL=${LADDER_MINILM_DIR:-$(bash scripts/fetch_minilm.sh | tail -n1)}
mkdir -p "$out"; work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
common=(--model.dir "$MODEL" --train.max_steps "$STEPS" --train.threads "$THREADS" --eval.every 0
        --task.max_eval_examples "$EVAL" --checkpoint.resume false --log.every 1000)
for ini in examples/sst2_*.ini; do
  m=${ini#examples/sst2_}; m=${m%.ini}
  echo "== $m" >&2
  "$bin" train --config "$ini" "${common[@]}" --checkpoint.dir "$work/$m" --log.report "$out/$m.json" > "$out/$m.log" 2>&1 \
    || { echo "   failed: $out/$m.log" >&2; exit 1; }
done
echo "== lst_store" >&2
"$bin" cache --config examples/sst2_lst.ini "${common[@]}" --task.max_train_examples 4000 --cache.dir "$work/cache" > "$out/lst_store_cache.log" 2>&1
"$bin" train --config examples/sst2_lst.ini "${common[@]}" --cache.dir "$work/cache" --cache.use true --task.max_train_examples 4000 \
  --checkpoint.dir "$work/lst_store" --log.report "$out/lst_store.json" > "$out/lst_store.log" 2>&1
