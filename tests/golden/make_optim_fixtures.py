#!/usr/bin/env python3
"""Regenerate ladder's optimizer golden fixture (deterministic, CPU, float32).

    /work/venv/bin/python tests/golden/make_optim_fixtures.py [--out tests/golden]

Writes optim_adamw.safetensors: torch.optim.AdamW driven by a transformers LambdaLR schedule, with
torch.nn.utils.clip_grad_norm_ before each step, over three parameters named like HF BERT's
("encoder.dense.weight" [4, 6] gets weight decay; "encoder.dense.bias" [6] and
"encoder.LayerNorm.weight" [6] do not, Trainer-style parameter groups). Two scenarios:

  main: lr 1e-2, betas (0.9, 0.999), eps 1e-8, weight_decay 0.1,
        get_linear_schedule_with_warmup(warmup 2, total 5), clip_grad_norm_(max_norm=1.0)
  alt:  lr 3e-2, betas (0.3, 0.95), eps 1e-6, weight_decay 0.05,   (beta1 < 0.5: torch's other lerp form)
        get_cosine_schedule_with_warmup(warmup 1, total 5), no clipping

Per scenario S, step k = 0..4 (update k uses lr = base_lr * lambda(k)):
  S/init/<p>          initial value
  S/grad.<k>/<p>      gradient given to step k (before clipping)
  S/clipped.<k>/<p>   gradient after clip_grad_norm_ (main only)
  S/norm              [5] total norm returned by clip_grad_norm_ (main only)
  S/lr                [5] lr used by update k (f32 copy; the C++ test recomputes it in double)
  S/param.<k>/<p>     value after update k
  S/exp_avg/<p>, S/exp_avg_sq/<p>   optimizer state after the last update
Gradients are randn scaled so that some steps' total norm is above 1 and some below.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file
from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

NAMES = ["encoder.dense.weight", "encoder.dense.bias", "encoder.LayerNorm.weight"]
SHAPES = [(4, 6), (6,), (6,)]
DECAY = {"encoder.dense.weight": True, "encoder.dense.bias": False, "encoder.LayerNorm.weight": False}
STEPS = 5
GRAD_SCALES = [3.0, 0.2, 1.5, 0.05, 2.0]  # approximate total gradient norm per step


def scenario(prefix, seed, lr, betas, eps, wd, make_schedule, clip):
    g = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(s, generator=g)) for s in SHAPES]
    out = {}
    for n, p in zip(NAMES, params):
        out[f"{prefix}/init/{n}"] = p.detach().clone()
    groups = [
        {"params": [p for n, p in zip(NAMES, params) if DECAY[n]], "weight_decay": wd},
        {"params": [p for n, p in zip(NAMES, params) if not DECAY[n]], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
    sched = make_schedule(opt)
    total = sum(p.numel() for p in params)
    norms, lrs = [], []
    for k in range(STEPS):
        for n, p in zip(NAMES, params):
            grad = torch.randn(p.shape, generator=g) * (GRAD_SCALES[k] / total**0.5)
            p.grad = grad
            out[f"{prefix}/grad.{k}/{n}"] = grad.clone()
        if clip:
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, 1.0)))
            for n, p in zip(NAMES, params):
                out[f"{prefix}/clipped.{k}/{n}"] = p.grad.clone()
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        for n, p in zip(NAMES, params):
            out[f"{prefix}/param.{k}/{n}"] = p.detach().clone()
    for n, p in zip(NAMES, params):
        out[f"{prefix}/exp_avg/{n}"] = opt.state[p]["exp_avg"].clone()
        out[f"{prefix}/exp_avg_sq/{n}"] = opt.state[p]["exp_avg_sq"].clone()
    if clip:
        out[f"{prefix}/norm"] = torch.tensor(norms, dtype=torch.float32)
    out[f"{prefix}/lr"] = torch.tensor(lrs, dtype=torch.float32)
    return out, lrs, norms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    tensors = {}
    main_t, main_lr, main_norm = scenario(
        "main", 1234, 1e-2, (0.9, 0.999), 1e-8, 0.1,
        lambda o: get_linear_schedule_with_warmup(o, num_warmup_steps=2, num_training_steps=5), clip=True)
    alt_t, alt_lr, _ = scenario(
        "alt", 4321, 3e-2, (0.3, 0.95), 1e-6, 0.05,
        lambda o: get_cosine_schedule_with_warmup(o, num_warmup_steps=1, num_training_steps=5), clip=False)
    tensors.update(main_t)
    tensors.update(alt_t)
    tensors = {k: v.contiguous().to(torch.float32) for k, v in tensors.items()}
    info = {"torch": torch.__version__, "transformers": transformers.__version__,
            "main_lr": main_lr, "main_norm": main_norm, "alt_lr": alt_lr}
    path = Path(args.out) / "optim_adamw.safetensors"
    save_file(tensors, str(path), metadata={"info": json.dumps(info)})
    print(f"wrote {path} ({len(tensors)} tensors)")
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
