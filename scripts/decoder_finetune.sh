#!/usr/bin/env bash
# decoder_finetune.sh [GGUF] [OUT]
#
# The decoder figures of the README, on SmolLM2-135M-Instruct (GGUF) with 2 threads:
#   1. WikiText-2 (raw test) perplexity from ladder on the prefix transformers was run on
#      (scripts/hf_decoder_reference.py ppl --max-tokens 65536: 30.1238); SKIP_WIKI=1 skips it.
#   2. LoRA on text: tinyshakespeare's first 90% for training, its last 10% held out; perplexity of the
#      held-out part before (the base model) and after (the run's best checkpoint), same protocol.
#   3. LoRA on SST-2: dev accuracy of the last-token classifier.
set -euo pipefail
cd "$(dirname "$0")/.."
GGUF="${1:-${LADDER_SMOLLM2_GGUF:-$(bash scripts/fetch_smollm2.sh | tail -n1)}}"
OUT="${2:-runs/decoder}"
LADDER="${LADDER_BIN:-build/ladder}"
SHARED="${LADDER_SHARED:-../shared}"
mkdir -p "$OUT"
[ -n "${SKIP_WIKI:-}" ] || "$LADDER" perplexity --model "$GGUF" --text "$SHARED/data/text/wikitext-2-raw/wiki.test.raw" --max-tokens 65536 --threads 2

TS="$SHARED/data/text/tinyshakespeare/input.txt"
n=$(wc -l < "$TS"); cut=$((n * 9 / 10))
head -n "$cut" "$TS" > "$OUT/shakespeare_train.txt"
tail -n +"$((cut + 1))" "$TS" > "$OUT/shakespeare_heldout.txt"
"$LADDER" perplexity --model "$GGUF" --text "$OUT/shakespeare_heldout.txt" --ctx 256 --threads 2 --report "$OUT/ppl_before.json"
"$LADDER" train --model.dir "$GGUF" --task.name lm --task.train_text "$OUT/shakespeare_train.txt" \
  --task.eval_text "$OUT/shakespeare_heldout.txt" --task.max_length 256 --task.max_eval_examples 16 --method.name lora \
  --train.batch_size 8 --train.max_steps 60 --train.lr 1e-3 --train.threads 2 --eval.every 30 \
  --checkpoint.dir "$OUT/lm-lora" --log.every 25
"$LADDER" perplexity --checkpoint "$OUT/lm-lora" --text "$OUT/shakespeare_heldout.txt" --ctx 256 --threads 2 --report "$OUT/ppl_after.json"

"$LADDER" train --model.dir "$GGUF" --task.name sst2 --task.data_dir "$SHARED/data/glue/SST-2" --task.max_length 64 \
  --method.name lora --train.batch_size 16 --train.max_steps 200 --train.lr 1e-3 --train.threads 2 \
  --checkpoint.dir "$OUT/sst2-lora" --log.every 50
