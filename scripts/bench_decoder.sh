#!/usr/bin/env bash
# bench_decoder.sh [GGUF] [THREADS]
#
# SmolLM2-135M (GGUF, fp32 in memory) side by side, one process per measurement, same threads:
#   1. ladder bench: forward B=8 T=256 with the LM head's logits, and a LoRA step (r 8, alpha 16, q_proj and
#      v_proj, LM loss and backward) B=8 T=256; then PyTorch + PEFT doing the same (scripts/bench_decoder_vs_peft.py).
#   2. generation: ladder generate and transformers' generate, greedy, 64 new tokens.
# Peak RSS from /usr/bin/time (whole process, model load included). Needs the dev virtualenv (LADDER_PY).
set -euo pipefail
cd "$(dirname "$0")/.."
GGUF="${1:-${LADDER_SMOLLM2_GGUF:-$(bash scripts/fetch_smollm2.sh | tail -n1)}}"
THREADS="${2:-2}"
PY="${LADDER_PY:-/root/ladder-venv/bin/python}"
LADDER="${LADDER_BIN:-build/ladder}"
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}  threads=$THREADS  $(lscpu | grep 'Model name' | sed 's/  */ /g')"
rss() { grep "Maximum resident" "$1" | awk '{printf "%.2f GiB", $6/1048576}'; }

/usr/bin/time -v "$LADDER" bench --model "$GGUF" --forward-batch 8 --train-batch 8 --seq-len 256 --warmup 1 --iters 3 \
  --method lora --lm-head --threads "$THREADS" --sgemm-size 0 --ceiling-rounds 1 --ceiling-seconds 0.1 >/tmp/bd_ladder.txt 2>/tmp/bd_ladder.time
echo "ladder:"; grep -E "^(forward|train step)" /tmp/bd_ladder.txt; echo "  peak RSS $(rss /tmp/bd_ladder.time)"

for only in forward train_step; do
  shape=$([ "$only" = forward ] && echo "--fwd 8x256" || echo "--train 8x256")
  /usr/bin/time -v "$PY" scripts/bench_decoder_vs_peft.py --gguf "$GGUF" --threads "$THREADS" --warmup 1 --iters 3 \
    --only "$only" $shape >/tmp/bd_torch_$only.txt 2>/tmp/bd_torch_$only.time
  echo "pytorch $only: $(grep '^{' /tmp/bd_torch_$only.txt | tail -n1)"; echo "  peak RSS $(rss /tmp/bd_torch_$only.time)"
done

"$LADDER" generate --model "$GGUF" --prompt "The capital of France is" --max-new-tokens 64 --ignore-eos --threads "$THREADS" 2>&1 >/dev/null | tail -n1
"$PY" scripts/hf_decoder_reference.py generate --gguf "$GGUF" --prompt "The capital of France is" --max-new 64 \
  --ignore-eos --threads "$THREADS" 2>/dev/null | tail -n3
