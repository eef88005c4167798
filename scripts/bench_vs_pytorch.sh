#!/usr/bin/env bash
# bench_vs_pytorch.sh: ladder's MiniLM benchmark and the PyTorch peer, side by side, same shapes and
# threads, once with the environment's OPENBLAS_CORETYPE and once with OPENBLAS_CORETYPE=Haswell.
#   PYTHON=/path/to/venv/bin/python scripts/bench_vs_pytorch.sh [THREADS] [ITERS]
# PYTHON must have torch and transformers (a development virtualenv; the build never needs it):
#   python3 -m venv ~/ladder-venv && ~/ladder-venv/bin/pip install torch transformers
# Runs one tool at a time (the machine has few cores); results go to runs/bench/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${1:-2}"
ITERS="${2:-10}"
PYTHON="${PYTHON:-python3}"
BUILD_DIR="${LADDER_BUILD_DIR:-build}"
MODEL=$(bash scripts/fetch_minilm.sh | tail -n1)
"$PYTHON" -c "import torch, transformers" 2>/dev/null || { echo "PYTHON=$PYTHON lacks torch/transformers (see the header of this script)" >&2; exit 1; }
mkdir -p runs/bench
run_pair() {  # $1 = label, rest = env assignments
  local label=$1; shift
  env "$@" "$BUILD_DIR/ladder" bench --model "$MODEL" --threads "$THREADS" --iters "$ITERS" \
    --report "runs/bench/ladder_$label.json" > "runs/bench/ladder_$label.txt"
  env "$@" "$PYTHON" scripts/bench_pytorch.py --minilm "$MODEL" --threads "$THREADS" --iters "$ITERS" \
    --json "runs/bench/pytorch_$label.json" > "runs/bench/pytorch_$label.txt"
}
run_pair default ${OPENBLAS_CORETYPE:+OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE}
run_pair haswell OPENBLAS_CORETYPE=Haswell
"$PYTHON" - "$THREADS" <<'PY'
import json, sys
threads = sys.argv[1]
print(f"MiniLM-L6 (all-MiniLM-L6-v2), {threads} threads; median ms (tokens/s, GFLOP/s, % of the BLAS ceiling and of the CPU's peak, both measured by ladder in the same run)")
print(f"{'setting':<44}{'phase':<24}{'ladder':>42}{'PyTorch':>28}{'speed-up':>10}")
for label in ("default", "haswell"):
    L = json.load(open(f"runs/bench/ladder_{label}.json"))
    P = json.load(open(f"runs/bench/pytorch_{label}.json"))
    core = L.get("OPENBLAS_CORETYPE") or "unset"
    sg = L["metrics"]["blas_ceiling"]["gflops"]
    pk = L["metrics"]["theoretical_peak"]["gflops"]
    for phase, name in (("forward", "forward B=32 T=128"), ("train_step", "train step B=16 T=128")):
        l, p = L["metrics"][phase], P[phase]
        print(f"{'CORETYPE=' + core + f' (BLAS {sg:.0f}, peak {pk:.0f})':<44}{name:<24}"
              f"{l['ms']:>9.1f} ms ({l['tokens_per_s']:>5.0f} tok/s, {l['gflops']:>5.1f}, {100*l['fraction_of_blas_ceiling']:>3.0f}%, {100*l['fraction_of_peak']:>3.0f}%)"
              f"{p['ms']:>9.1f} ms ({p['tokens_per_s']:>5.0f} tok/s, {p['gflops']:>5.1f})"
              f"{p['ms']/l['ms']:>9.2f}x")
PY
