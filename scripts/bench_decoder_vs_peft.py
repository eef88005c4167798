#!/usr/bin/env python3
"""PyTorch + PEFT peer for ladder's decoder (SmolLM2-135M) benchmark (CPU, fp32).

    /root/ladder-venv/bin/python scripts/bench_decoder_vs_peft.py [--gguf FILE] [--threads 2]
        [--warmup 1] [--iters 5] [--fwd 8x256] [--train 8x256[,4x128]] [--attn sdpa|eager]
        [--only forward|train_step] [--json FILE]

Model: AutoModelForCausalLM.from_pretrained(dir, gguf_file=name, dtype=float32) - the GGUF (default
${LADDER_CACHE:-~/.cache/ladder}/models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf) dequantised to fp32
by transformers, so the weights are the Q4_1 values in fp32 (tied embeddings / LM head).

Workloads (random token ids from torch.Generator().manual_seed(0), uniform over the vocab, no padding,
attention_mask all ones, use_cache=False):
  forward     eval mode, torch.no_grad(), full LlamaForCausalLM forward INCLUDING the LM head (logits [B,T,V]),
              for each BxT in --fwd (default 8x256).
  train_step  PEFT LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj","v_proj"], lora_dropout=0.0), train
              mode, causal-LM loss (labels = input_ids, HF shift, mean), loss.backward(), AdamW(lr=1e-4, over the
              LoRA parameters only; torch defaults betas (0.9,0.999), eps 1e-8, weight_decay 0.01) .step(),
              zero_grad(set_to_none=True); for each BxT in --train (default 8x256; 4x128 is the small option).
Timing: --warmup untimed iterations, then --iters timed ones; median (and min) wall time per iteration,
tokens/s = B*T / median.

FLOPs (same convention as scripts/bench_pytorch.py):
  forward FLOPs per token = 2 * P_lin + 4 * T * H * L
      P_lin = weights of all Linear layers, LM head included (Q, K, V, O, gate, up, down per layer + lm_head
              576 x 49152); H = n_head * head_dim = 576; L = 30 layers.
  train_step FLOPs = 3 * forward FLOPs (conventional; with a frozen base the true count is closer to 2x).

Peak RSS = resource.getrusage(RUSAGE_SELF).ru_maxrss (KiB -> bytes): PROCESS-WIDE and monotonic, so the value
printed after a measurement is the peak of everything so far in this process (model load included). For a clean
per-workload peak run one workload per process (--only, one shape).

Output: one JSON line per measurement on stdout (prefix-free, so `grep '^{'` extracts them); --json FILE also
writes the list.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch


def default_gguf() -> Path:
    cache = os.environ.get("LADDER_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "ladder"))
    return Path(cache) / "models" / "SmolLM2-135M-Instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def shapes(s: str) -> list[tuple[int, int]]:
    out = []
    for part in filter(None, s.split(",")):
        b, t = part.lower().split("x")
        out.append((int(b), int(t)))
    return out


def timeit(fn, warmup: int, iters: int) -> list[float]:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", type=Path, default=default_gguf())
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--fwd", default="8x256", help="comma-separated BxT list for forward")
    ap.add_argument("--train", default="8x256", help="comma-separated BxT list for the LoRA train step")
    ap.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa")
    ap.add_argument("--only", choices=["forward", "train_step"], default=None)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    import transformers
    import peft
    from transformers import AutoModelForCausalLM
    from peft import LoraConfig, get_peft_model

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if not a.gguf.is_file():
        print(f"GGUF not found: {a.gguf} (scripts/fetch_smollm2.sh)", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(a.gguf.parent), gguf_file=a.gguf.name, dtype=torch.float32,
                                                 attn_implementation=a.attn)
    load_s = time.perf_counter() - t0
    cfg = model.config
    V, L = cfg.vocab_size, cfg.num_hidden_layers
    H = cfg.num_attention_heads * getattr(cfg, "head_dim", cfg.hidden_size // cfg.num_attention_heads)
    # P_lin: every nn.Linear weight (lm_head included; it is tied to the embedding but is a real matmul)
    p_lin = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    base = {"tool": "pytorch+peft", "model": a.gguf.name, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__, "attn_implementation": a.attn,
            "p_lin": p_lin, "load_s": round(load_s, 2),
            "flops_formula": "fwd = B*T*(2*P_lin + 4*T*H*L), P_lin incl. lm_head; train_step = 3*fwd"}
    results = []
    g = torch.Generator().manual_seed(0)

    def emit(kind: str, B: int, T: int, ts: list[float], flops: float, extra: dict | None = None):
        med = statistics.median(ts)
        r = dict(base, measurement=kind, batch=B, seq=T, iters=len(ts), warmup=a.warmup,
                 ms=round(med * 1e3, 2), min_ms=round(min(ts) * 1e3, 2), tokens_per_s=round(B * T / med, 1),
                 gflops=round(flops / med / 1e9, 2), gflop_per_iter=round(flops / 1e9, 3),
                 peak_rss_bytes=peak_rss(), peak_rss_mib=round(peak_rss() / 2**20, 1),
                 peak_rss_note="process-wide ru_maxrss so far (monotonic; includes model load and earlier runs)")
        if extra:
            r.update(extra)
        results.append(r)
        print(json.dumps(r), flush=True)

    def fwd_flops(B, T):
        return float(B * T * (2 * p_lin + 4 * T * H * L))

    if a.only in (None, "forward"):
        model.eval()
        for B, T in shapes(a.fwd):
            ids = torch.randint(0, V, (B, T), generator=g)
            mask = torch.ones(B, T, dtype=torch.long)

            def fwd():
                with torch.no_grad():
                    model(input_ids=ids, attention_mask=mask, use_cache=False)

            emit("forward", B, T, timeit(fwd, a.warmup, a.iters), fwd_flops(B, T))

    if a.only in (None, "train_step"):
        lcfg = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, bias="none")
        pm = get_peft_model(model, lcfg)
        pm.train()
        params = [p for p in pm.parameters() if p.requires_grad]
        n_train = sum(p.numel() for p in params)
        n_total = sum(p.numel() for p in pm.parameters())
        opt = torch.optim.AdamW(params, lr=1e-4)
        for B, T in shapes(a.train):
            ids = torch.randint(0, V, (B, T), generator=g)
            mask = torch.ones(B, T, dtype=torch.long)
            losses = []

            def step():
                out = pm(input_ids=ids, attention_mask=mask, labels=ids, use_cache=False)
                out.loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                losses.append(float(out.loss.detach()))

            emit("train_step_lora", B, T, timeit(step, a.warmup, a.iters), 3 * fwd_flops(B, T),
                 {"lora_r": 8, "lora_alpha": 16, "targets": "q_proj,v_proj", "optimizer": "AdamW lr 1e-4",
                  "trainable_params": n_train, "total_params": n_total,
                  "first_loss": round(losses[0], 4), "last_loss": round(losses[-1], 4)})

    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
