#!/usr/bin/env python3
"""PyTorch / HF PEFT peer for ladder's SST-2 fine-tuning runs (CPU).

    /work/venv/bin/python scripts/peft_glue.py --method full|lora|ia3 [--steps 1000]
        [--batch-size 32] [--max-length 64] [--lr LR] [--threads 2] [--seed 42]
        [--eval-every 0] [--json OUT.json] [--minilm DIR] [--data DIR] [--save-adapter DIR]
        [--lora-r 8 --lora-alpha 16 --lora-dropout 0.1 --lora-targets query,value]
        [--ia3-targets REGEX --ia3-feedforward REGEX]

What it does (chosen to match examples/sst2_full.ini and examples/sst2_lora.ini):

  model     BertForSequenceClassification.from_pretrained(all-MiniLM-L6-v2, num_labels=2),
            attn_implementation="sdpa" (the transformers default), train mode, dropout 0.1
            from the config. The checkpoint's pooler weights are loaded; the classifier
            Linear(384, 2) is freshly initialised (torch.manual_seed(seed) first).
  lora      peft.LoraConfig(task_type=SEQ_CLS, r, lora_alpha, lora_dropout,
            target_modules=[query, value]); PEFT also trains the classifier (modules_to_save).
  ia3       peft.IA3Config(task_type=SEQ_CLS, target_modules=REGEX, feedforward_modules=REGEX). Both
            are str, so PEFT 0.21 re.fullmatch()es them against the full module name. Defaults:
            targets  r".*\.(key|value)|.*layer\.\d+\.output\.dense"
            ff       r".*layer\.\d+\.output\.dense"
            i.e. per layer self.key / self.value get an output scaling ia3_l (384, 1):
            y = (W x + b) * l (bias scaled too), and the FFN output Linear encoder.layer.N.output.dense
            gets an input scaling ia3_l (1, 1536): y = W (x * l) + b (the FFN inner activation is
            scaled, the bias is not). attention.output.dense is NOT matched (the regex anchors on
            "layer.N.output.dense"). Vectors start at 1. 6 * (384 + 384 + 1536) = 13824 + the
            classifier 770 (modules_to_save) = 14594 trainable. The pooler stays frozen, as for LoRA.
            The ia3_l vectors are not biases/LayerNorm, so they get weight decay (towards 0, not 1).
  data      GLUE SST-2 train.tsv / dev.tsv (header "sentence<TAB>label", split on tab only,
            no quoting). BertTokenizerFast from the model dir, truncation to max_length,
            no padding at tokenize time (tokenized in chunks of 2048, only the id lists kept).
  batches   the same construction as ladder's BucketSampler (data/glue/sampler.cpp), bit
            for bit: per epoch std::mt19937_64 seeded with splitmix64(seed ^ splitmix64(epoch)),
            Fisher-Yates over example ids, buckets of 50 batches sorted (stably) by length,
            cut into batches (last one may be short, not dropped), batch order shuffled with
            the same generator. Each batch is padded to its own longest row.
  optimizer torch.optim.AdamW (betas 0.9/0.999, eps 1e-8), weight decay 0.01 on everything but
            biases and LayerNorm weights (as HF Trainer), transformers
            get_linear_schedule_with_warmup with ceil(0.06 * steps) warmup steps (ladder's
            rounding), clip_grad_norm_(1.0), --steps optimizer steps (no grad accumulation).
            lr defaults: 5e-5 full, 5e-4 lora, 3e-3 ia3.
  eval      accuracy on the full SST-2 dev set (872), eval mode, no grad, batches of 64
            (padded per batch), at the end (and every --eval-every steps if > 0).

Measures: median step time (ms) over steps 6..N (a step = collate/pad + forward + backward +
clip + optimizer + scheduler), tokens/s = real (unpadded) tokens of those steps / their summed
time, peak RSS (getrusage ru_maxrss, KiB -> bytes), trainable / total parameter count (PEFT's
count for lora: the frozen base, the LoRA matrices, and both copies of the classifier that
modules_to_save keeps; likewise for ia3), total wall time of the script (loading, tokenizing, training, eval).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

M64 = (1 << 64) - 1


# ---------------------------------------------------------------- ladder's sampler, bit for bit
def splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


class MT19937_64:
    """std::mt19937_64 (seeded with a single value, as its constructor does)."""

    N, M = 312, 156
    UPPER, LOWER = 0xFFFFFFFF80000000, 0x7FFFFFFF
    MATRIX = 0xB5026F5AA96619E9

    def __init__(self, seed: int):
        mt = [0] * self.N
        mt[0] = seed & M64
        for i in range(1, self.N):
            mt[i] = (6364136223846793005 * (mt[i - 1] ^ (mt[i - 1] >> 62)) + i) & M64
        self.mt, self.i = mt, self.N

    def _twist(self) -> None:
        mt, N, M, U, L, A = self.mt, self.N, self.M, self.UPPER, self.LOWER, self.MATRIX
        for k in range(N):
            y = (mt[k] & U) | (mt[(k + 1) % N] & L)
            mt[k] = mt[(k + M) % N] ^ (y >> 1) ^ (A if y & 1 else 0)
        self.i = 0

    def __call__(self) -> int:
        if self.i >= self.N:
            self._twist()
        x = self.mt[self.i]
        self.i += 1
        x ^= (x >> 29) & 0x5555555555555555
        x ^= (x << 17) & 0x71D67FFFEDA60000
        x ^= (x << 37) & 0xFFF7EEE000000000
        x ^= x >> 43
        return x


def below(g: MT19937_64, n: int) -> int:
    limit = M64 - M64 % n
    while True:
        x = g()
        if x < limit:
            return x % n


def fisher_yates(v: list, g: MT19937_64) -> None:
    for i in range(len(v), 1, -1):
        j = below(g, i)
        v[i - 1], v[j] = v[j], v[i - 1]


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int,
                  bucket_batches: int = 50, drop_last: bool = False) -> list[list[int]]:
    g = MT19937_64(splitmix64((seed ^ splitmix64(epoch)) & M64))
    ids = list(range(len(lengths)))
    fisher_yates(ids, g)
    batches: list[list[int]] = []
    bucket = batch_size * bucket_batches
    for start in range(0, len(ids), bucket):
        chunk = sorted(ids[start:start + bucket], key=lambda i: lengths[i])  # sorted() is stable
        for b in range(0, len(chunk), batch_size):
            batches.append(chunk[b:b + batch_size])
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    fisher_yates(batches, g)
    return batches


# ---------------------------------------------------------------- data
def read_sst2(path: Path) -> tuple[list[str], list[int]]:
    with open(path, "rb") as f:
        lines = [ln.decode("utf-8").rstrip("\n").rstrip("\r") for ln in f]
    header = lines[0].lstrip("\ufeff").split("\t")
    ca, cl = header.index("sentence"), header.index("label")
    sents, labels = [], []
    for i, ln in enumerate(lines[1:], start=2):
        if not ln:
            if i == len(lines):
                break
            raise ValueError(f"{path}:{i}: empty line")
        fields = ln.split("\t")
        sents.append(fields[ca])
        labels.append(int(fields[cl]))
    return sents, labels


def tokenize(tok, sents: list[str], max_length: int, chunk: int = 2048) -> dict:
    """input_ids / token_type_ids as plain lists, tokenized in chunks so the fast tokenizer's Encoding
    objects (offsets, words, ...) of the whole split never sit in memory at once (peak RSS)."""
    out: dict = {"input_ids": [], "token_type_ids": []}
    for s in range(0, len(sents), chunk):
        e = tok(sents[s:s + chunk], truncation=True, max_length=max_length, return_attention_mask=False,
                return_token_type_ids=True)
        out["input_ids"] += e["input_ids"]
        out["token_type_ids"] += e["token_type_ids"]
    return out


def collate(enc: dict, labels: list[int], idx: list[int]) -> tuple[dict, int]:
    T = max(len(enc["input_ids"][i]) for i in idx)
    B = len(idx)
    ids = torch.zeros(B, T, dtype=torch.long)  # pad id 0 ([PAD])
    tt = torch.zeros(B, T, dtype=torch.long)
    am = torch.zeros(B, T, dtype=torch.long)
    real = 0
    for r, i in enumerate(idx):
        n = len(enc["input_ids"][i])
        ids[r, :n] = torch.tensor(enc["input_ids"][i])
        tt[r, :n] = torch.tensor(enc["token_type_ids"][i])
        am[r, :n] = 1
        real += n
    lab = torch.tensor([labels[i] for i in idx], dtype=torch.long)
    return {"input_ids": ids, "token_type_ids": tt, "attention_mask": am, "labels": lab}, real


def evaluate(model, enc: dict, labels: list[int], batch_size: int = 64) -> float:
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(labels), batch_size):
            batch, _ = collate(enc, labels, list(range(s, min(len(labels), s + batch_size))))
            lab = batch.pop("labels")
            logits = model(**batch).logits
            correct += int((logits.argmax(-1) == lab).sum())
    if was_training:
        model.train()
    return correct / len(labels)


# ---------------------------------------------------------------- main
IA3_TARGETS = r".*\.(key|value)|.*layer\.\d+\.output\.dense"
IA3_FEEDFORWARD = r".*layer\.\d+\.output\.dense"


def default_minilm_dir() -> Path:
    cache = os.environ.get("LADDER_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "ladder"))
    return Path(cache) / "models" / "all-MiniLM-L6-v2"


def main() -> int:
    t_start = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", choices=["full", "lora", "ia3"], required=True)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--lr", type=float, default=None, help="default 5e-5 (full), 5e-4 (lora), 3e-3 (ia3)")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--warmup-ratio", type=float, default=0.06)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--eval-every", type=int, default=0, help="also evaluate every N steps (0: only at the end)")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--minilm", type=Path, default=default_minilm_dir())
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/glue/SST-2"))
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--lora-alpha", type=float, default=16)
    ap.add_argument("--lora-dropout", type=float, default=0.1)
    ap.add_argument("--lora-targets", default="query,value")
    ap.add_argument("--ia3-targets", default=IA3_TARGETS, help="regex (full match on module names)")
    ap.add_argument("--ia3-feedforward", default=IA3_FEEDFORWARD,
                    help="regex (full match); the subset of the targets that gets input scaling")
    ap.add_argument("--save-adapter", type=Path, default=None,
                    help="lora/ia3: save_pretrained() the trained adapter to this directory")
    args = ap.parse_args()
    lr = args.lr if args.lr is not None else {"full": 5e-5, "lora": 5e-4, "ia3": 3e-3}[args.method]

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    import transformers
    from transformers import BertForSequenceClassification, BertTokenizerFast, get_linear_schedule_with_warmup

    attn = "sdpa"
    tok = BertTokenizerFast.from_pretrained(str(args.minilm))
    model = BertForSequenceClassification.from_pretrained(str(args.minilm), num_labels=2, attn_implementation=attn)
    peft_version = None
    if args.method == "lora":
        import peft
        from peft import LoraConfig, TaskType, get_peft_model
        peft_version = peft.__version__
        cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=args.lora_r, lora_alpha=args.lora_alpha,
                         lora_dropout=args.lora_dropout, target_modules=args.lora_targets.split(","))
        model = get_peft_model(model, cfg)
        n_train, n_total = model.get_nb_trainable_parameters()
    elif args.method == "ia3":
        import peft
        from peft import IA3Config, TaskType, get_peft_model
        peft_version = peft.__version__
        cfg = IA3Config(task_type=TaskType.SEQ_CLS, target_modules=args.ia3_targets,
                        feedforward_modules=args.ia3_feedforward)
        model = get_peft_model(model, cfg)
        n_train, n_total = model.get_nb_trainable_parameters()
        from peft.tuners.ia3 import IA3Layer
        ia3_mods = [(n, m) for n, m in model.named_modules() if isinstance(m, IA3Layer)]
        for n, m in ia3_mods:
            shape = tuple(m.ia3_l["default"].shape)
            print(f"  ia3 {'feedforward (input) ' if m.is_feedforward else 'output'} scaling {n} {shape}", flush=True)
        n_ff = sum(1 for _, m in ia3_mods if m.is_feedforward)
        if any(".attention.output.dense" in n for n, _ in ia3_mods):
            raise SystemExit("ia3: attention.output.dense was matched; fix --ia3-targets")
        print(f"  ia3: {len(ia3_mods)} modules ({n_ff} feedforward)", flush=True)
    else:
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        n_total = sum(p.numel() for p in model.parameters())
    model.train()
    attn_used = getattr(getattr(model, "config", None), "_attn_implementation", attn)

    # data
    tr_s, tr_y = read_sst2(args.data / "train.tsv")
    dv_s, dv_y = read_sst2(args.data / "dev.tsv")
    tr_enc = tokenize(tok, tr_s, args.max_length)
    dv_enc = tokenize(tok, dv_s, args.max_length)
    lengths = [len(x) for x in tr_enc["input_ids"]]

    # optimizer: no decay for biases and LayerNorm weights (HF Trainer's rule)
    ln_params = {id(p) for m in model.modules() if isinstance(m, torch.nn.LayerNorm) for p in m.parameters()}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name.endswith("bias") or id(p) in ln_params else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.999), eps=1e-8)
    warmup = int(math.ceil(args.warmup_ratio * args.steps))
    sched = get_linear_schedule_with_warmup(opt, warmup, args.steps)
    trainable = decay + no_decay

    print(f"method {args.method}: {n_train} trainable of {n_total} parameters ({100.0 * n_train / n_total:.3f}%); "
          f"{args.steps} steps of {args.batch_size} sequences, lr {lr:g} (linear, {warmup} warmup), "
          f"{args.threads} threads, attn {attn_used}; torch {torch.__version__}, transformers "
          f"{transformers.__version__}, peft {peft_version}; {len(tr_y)} train / {len(dv_y)} dev examples",
          flush=True)

    epoch, batches, pos = 0, epoch_batches(lengths, args.batch_size, args.seed, 0), 0
    step_s: list[float] = []
    step_tok: list[int] = []
    evals: list[tuple[int, float]] = []
    win_loss, win_n = 0.0, 0
    t_train = time.perf_counter()
    for step in range(1, args.steps + 1):
        if pos >= len(batches):
            epoch += 1
            batches, pos = epoch_batches(lengths, args.batch_size, args.seed, epoch), 0
        idx = batches[pos]
        pos += 1
        t0 = time.perf_counter()
        batch, real = collate(tr_enc, tr_y, idx)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, args.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        lv = float(loss.detach())
        step_s.append(time.perf_counter() - t0)
        step_tok.append(real)
        win_loss += lv
        win_n += 1
        if step % args.log_every == 0 or step == args.steps:
            print(f"step {step}/{args.steps} epoch {epoch} loss {win_loss / win_n:.4f} "
                  f"lr {sched.get_last_lr()[0]:.3e} elapsed {time.perf_counter() - t_train:.1f}s", flush=True)
            win_loss, win_n = 0.0, 0
        if args.eval_every > 0 and step % args.eval_every == 0 and step != args.steps:
            acc = evaluate(model, dv_enc, dv_y)
            evals.append((step, acc))
            print(f"eval step {step}: dev accuracy {acc:.4f}", flush=True)
    train_s = time.perf_counter() - t_train

    acc = evaluate(model, dv_enc, dv_y)
    evals.append((args.steps, acc))
    timed = slice(5, None) if len(step_s) > 5 else slice(0, None)
    med_ms = 1000.0 * statistics.median(step_s[timed])
    tok_s = sum(step_tok[timed]) / sum(step_s[timed])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    wall = time.perf_counter() - t_start

    print(f"done: dev accuracy {acc:.4f} ({len(dv_y)} examples); median step {med_ms:.1f} ms, "
          f"{tok_s:.0f} real tok/s (steps 6..{args.steps}), train loop {train_s:.1f}s, "
          f"peak RSS {rss / 2**20:.1f} MiB, trainable {n_train} of {n_total} ({100.0 * n_train / n_total:.3f}%), "
          f"wall {wall:.1f}s", flush=True)
    if args.save_adapter and args.method != "full":
        model.save_pretrained(str(args.save_adapter))
        print(f"adapter saved to {args.save_adapter}", flush=True)
    if args.json:
        out = {
            "method": args.method, "steps": args.steps, "batch_size": args.batch_size,
            "max_length": args.max_length, "lr": lr, "dev_accuracy": acc, "median_step_ms": med_ms,
            "tokens_per_s": tok_s, "peak_rss_bytes": rss, "trainable_params": n_train, "total_params": n_total,
            "trainable_pct": 100.0 * n_train / n_total, "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft_version, "threads": args.threads,
            "attn_implementation": attn_used, "wall_s": wall, "train_loop_s": train_s, "seed": args.seed,
            "warmup_steps": warmup, "evals": evals,
            "command": " ".join([sys.executable] + sys.argv),
            "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        }
        if args.method == "ia3":
            out.update(ia3_targets=args.ia3_targets, ia3_feedforward=args.ia3_feedforward)
        if args.method == "lora":
            out.update(lora_r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                       lora_targets=args.lora_targets)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
