#!/usr/bin/env python3
"""PyTorch peer for ladder's MiniLM benchmark (CPU).

    /work/venv/bin/python scripts/bench_pytorch.py [--minilm DIR] [--threads 2]
        [--warmup 2] [--iters 10] [--attn sdpa|eager] [--json FILE]

Two workloads on the real all-MiniLM-L6-v2 weights (directory from
scripts/fetch_minilm.sh, default ${LADDER_CACHE:-~/.cache/ladder}/models/all-MiniLM-L6-v2):

  forward     BertModel, eval mode, torch.no_grad(), B=32, T=128, random ids
              from the vocab, full attention mask (all ones), token_type_ids 0.
  train_step  BertModel (with its pooler) + Linear(384, 2) classifier on the
              pooler output, train mode (dropout 0.1 from the config),
              cross-entropy on random labels, loss.backward() over ALL
              parameters (embeddings included), no optimizer step, B=16, T=128.
              Grads are zeroed between iterations with zero_grad(set_to_none=False).

FLOP count (the same formula ladder's benchmark uses):
  forward FLOPs per token = 2 * P_lin + 4 * T * H * L
      P_lin = number of weights in the Linear layers of the L=6 encoder layers
              (Q, K, V, attention output, FFN up, FFN down; biases excluded)
              = 6 * (4*384*384 + 2*384*1536) = 10,616,832
      4*T*H*L = attention scores (Q K^T) + context (P V), 2*T*H FLOPs each per
              token per layer; H = hidden size 384, T = sequence length.
  forward FLOPs  = B * T * (2 * P_lin + 4 * T * H * L)
  train step FLOPs = 3 * forward FLOPs (for the train-step batch)
  (Embeddings, LayerNorm, softmax, GELU, pooler and classifier are not counted.)

Reports the median over --iters timed iterations (after --warmup untimed ones)
in ms, tokens/s (= B*T / median seconds) and GFLOP/s.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch


def default_minilm_dir() -> Path:
    cache = os.environ.get("LADDER_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "ladder"))
    return Path(cache) / "models" / "all-MiniLM-L6-v2"


def linear_weight_params(encoder: torch.nn.Module) -> int:
    return sum(m.weight.numel() for m in encoder.modules() if isinstance(m, torch.nn.Linear))


def fwd_flops(B: int, T: int, p_lin: int, H: int, L: int) -> float:
    return float(B * T * (2 * p_lin + 4 * T * H * L))


def timeit(fn, warmup: int, iters: int) -> list[float]:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def summarize(ts: list[float], B: int, T: int, flops: float) -> dict:
    med = statistics.median(ts)
    return {
        "ms": med * 1e3,
        "tokens_per_s": B * T / med,
        "gflops": flops / med / 1e9,
        "min_ms": min(ts) * 1e3,
        "batch": B,
        "seq": T,
        "gflop_per_iter": flops / 1e9,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minilm", type=Path, default=default_minilm_dir())
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--fwd-batch", type=int, default=32)
    ap.add_argument("--train-batch", type=int, default=16)
    ap.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa",
                    help="HF attention implementation (default sdpa, PyTorch's fastest CPU path)")
    ap.add_argument("--only", choices=["forward", "train_step"], default=None)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    from transformers import BertModel

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if not (a.minilm / "model.safetensors").is_file():
        print(f"MiniLM not found in {a.minilm}; run scripts/fetch_minilm.sh", file=sys.stderr)
        return 1
    model = BertModel.from_pretrained(str(a.minilm), attn_implementation=a.attn, dtype=torch.float32)
    cfg = model.config
    H, L, V = cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size
    p_lin = linear_weight_params(model.encoder)
    T = a.seq
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, attn {a.attn}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    print(f"P_lin (encoder Linear weights) = {p_lin:,}; forward FLOPs/token at T={T}: "
          f"{2 * p_lin + 4 * T * H * L:,}")
    result: dict = {
        "threads": a.threads,
        "torch": torch.__version__,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "attn_implementation": a.attn,
        "flops_formula": "fwd = B*T*(2*P_lin + 4*T*H*L); train_step = 3*fwd",
        "p_lin": p_lin,
    }
    g = torch.Generator().manual_seed(0)

    if a.only in (None, "forward"):
        B = a.fwd_batch
        ids = torch.randint(0, V, (B, T), generator=g)
        mask = torch.ones(B, T, dtype=torch.long)
        tt = torch.zeros(B, T, dtype=torch.long)
        model.eval()

        def fwd():
            with torch.no_grad():
                model(input_ids=ids, attention_mask=mask, token_type_ids=tt)

        r = summarize(timeit(fwd, a.warmup, a.iters), B, T, fwd_flops(B, T, p_lin, H, L))
        result["forward"] = r
        print(f"forward    B={B} T={T}: {r['ms']:9.1f} ms  {r['tokens_per_s']:9.0f} tok/s  "
              f"{r['gflops']:7.1f} GFLOP/s  (min {r['min_ms']:.1f} ms)")

    if a.only in (None, "train_step"):
        B = a.train_batch
        ids = torch.randint(0, V, (B, T), generator=g)
        mask = torch.ones(B, T, dtype=torch.long)
        tt = torch.zeros(B, T, dtype=torch.long)
        labels = torch.randint(0, 2, (B,), generator=g)
        head = torch.nn.Linear(H, 2)
        model.train()
        head.train()
        params = list(model.parameters()) + list(head.parameters())
        for p in params:
            p.requires_grad_(True)

        def step():
            model.zero_grad(set_to_none=False)
            head.zero_grad(set_to_none=False)
            out = model(input_ids=ids, attention_mask=mask, token_type_ids=tt)
            logits = head(out.pooler_output)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            loss.backward()

        r = summarize(timeit(step, a.warmup, a.iters), B, T, 3 * fwd_flops(B, T, p_lin, H, L))
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        if missing:
            print(f"WARNING: parameters without grad: {missing}", file=sys.stderr)
        result["train_step"] = r
        print(f"train_step B={B} T={T}: {r['ms']:9.1f} ms  {r['tokens_per_s']:9.0f} tok/s  "
              f"{r['gflops']:7.1f} GFLOP/s  (min {r['min_ms']:.1f} ms)")

    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
