#!/usr/bin/env python3
"""Regenerate ladder's model golden fixtures (deterministic, CPU, float32).

How to run (from the repository root):

    scripts/fetch_minilm.sh                      # once; prints the model dir
    /work/venv/bin/python tests/golden/make_model_fixtures.py \
        [--minilm DIR] [--out tests/golden]

--minilm defaults to the fetch script's directory,
${LADDER_CACHE:-$HOME/.cache/ladder}/models/all-MiniLM-L6-v2.
The venv needs torch, transformers, tokenizers, safetensors, numpy and
sentence_transformers (all present in /work/venv). See tests/golden/README.md
for what each file holds and the tolerances the C++ tests use.

Writes:
  minilm_hidden.safetensors        real all-MiniLM-L6-v2 activations
  tiny_gpt2/config.json            random-weight GPT-2 in HF layout
  tiny_gpt2/model.safetensors
  tiny_gpt2_golden.safetensors     logits / loss / grads of that GPT-2
  tiny_llama/, tiny_gemma3/        random-weight Llama (GQA, untied head) and Gemma 3 (sliding window,
                                   sandwich and q/k norms) in HF layout
  tiny_{llama,gemma3}_golden.safetensors  their logits / loss / grads / greedy continuation
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[2]
GLUE = Path(os.environ.get("LADDER_GLUE_DIR", "/work/shared/data/glue"))

# Rows (0-based data rows, header excluded) picked from the GLUE dev sets.
SST2_ROWS = [0, 1, 6, 28, 32, 51]   # single sentences, column 0
STSB_ROWS = [0, 27]                 # sentence pairs, columns 8 and 9 (1-based)


def default_minilm_dir() -> Path:
    cache = os.environ.get("LADDER_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "ladder"))
    return Path(cache) / "models" / "all-MiniLM-L6-v2"


def read_tsv_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    return [ln.split("\t") for ln in lines[1:]]  # drop the header


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise SystemExit(f"make_model_fixtures: CHECK FAILED: {msg}")


# --------------------------------------------------------------------------
# MiniLM
# --------------------------------------------------------------------------
def make_minilm(model_dir: Path, out: Path) -> None:
    from transformers import BertModel, BertTokenizerFast
    from sentence_transformers import SentenceTransformer

    sst = read_tsv_rows(GLUE / "SST-2" / "dev.tsv")
    sts = read_tsv_rows(GLUE / "STS-B" / "dev.tsv")
    items: list[tuple[str, str | None]] = [(sst[i][0].strip(), None) for i in SST2_ROWS]
    items += [(sts[i][7], sts[i][8]) for i in STSB_ROWS]

    tok = BertTokenizerFast.from_pretrained(str(model_dir))
    enc = [tok(a, b) if b is not None else tok(a) for a, b in items]
    N = len(enc)
    T = max(len(e["input_ids"]) for e in enc)
    ids = np.full((N, T), tok.pad_token_id, dtype=np.int32)
    tt = np.zeros((N, T), dtype=np.int32)
    am = np.zeros((N, T), dtype=np.int32)
    for n, e in enumerate(enc):
        L = len(e["input_ids"])
        ids[n, :L] = e["input_ids"]
        tt[n, :L] = e["token_type_ids"]
        am[n, :L] = e["attention_mask"]
    # Cross-check the manual right padding against the tokenizer's own batch padding.
    singles = [a for a, b in items if b is None]
    bt = tok(singles, padding="longest", return_tensors="np")
    Ts = bt["input_ids"].shape[1]
    check(np.array_equal(bt["input_ids"], ids[: len(singles), :Ts]), "tokenizer batch padding differs")
    check(tt[len(singles):].max() == 1, "pairs must use token_type_ids = 1")

    model = BertModel.from_pretrained(str(model_dir), attn_implementation="eager", dtype=torch.float32)
    model.eval()
    ti = {
        "input_ids": torch.from_numpy(ids).long(),
        "token_type_ids": torch.from_numpy(tt).long(),
        "attention_mask": torch.from_numpy(am).long(),
    }
    with torch.no_grad():
        o = model(**ti, output_hidden_states=True)
    hs = o.hidden_states
    check(len(hs) == 7, f"expected 7 hidden states, got {len(hs)}")
    m = ti["attention_mask"].unsqueeze(-1).float()
    mean = (hs[-1] * m).sum(1) / m.sum(1).clamp(min=1e-9)
    sent = torch.nn.functional.normalize(mean, p=2, dim=1)

    # Cross-check against sentence-transformers.
    st = SentenceTransformer(str(model_dir), device="cpu")
    st.eval()
    with torch.no_grad():
        feats = {k: v.clone() for k, v in ti.items()}
        st_out = st(feats)
    d_fwd = (st_out["sentence_embedding"] - sent).abs().max().item()
    check(d_fwd < 1e-5, f"SentenceTransformer forward differs by {d_fwd}")
    enc_single = st.encode(singles, convert_to_tensor=True, batch_size=64)
    d_enc = (enc_single - sent[: len(singles)]).abs().max().item()
    check(d_enc < 1e-5, f"SentenceTransformer.encode differs by {d_enc}")
    try:
        enc_pairs = st.encode([[a, b] for a, b in items if b is not None], convert_to_tensor=True)
        d_pair = (enc_pairs - sent[len(singles):]).abs().max().item()
        pair_note = f"encode(pairs) max|diff| {d_pair:.2e}"
    except Exception as ex:  # pairs through encode() depend on the ST version
        pair_note = f"encode(pairs) not supported here ({type(ex).__name__})"
    print(f"minilm: ST forward max|diff| {d_fwd:.2e}, encode(singles) {d_enc:.2e}, {pair_note}")

    tensors = {
        "input_ids": torch.from_numpy(ids),
        "token_type_ids": torch.from_numpy(tt),
        "attention_mask": torch.from_numpy(am),
        "pooler_output": o.pooler_output,
        "mean_pooled": mean,
        "sentence_embedding": sent,
    }
    for i, h in enumerate(hs):
        tensors[f"hidden_state.{i}"] = h
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    meta = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "texts": json.dumps([[a, b] if b is not None else [a] for a, b in items]),
        "sources": f"SST-2/dev.tsv rows {SST2_ROWS} col 0; STS-B/dev.tsv rows {STSB_ROWS} cols 8,9 (1-based)",
        "generator": "tests/golden/make_model_fixtures.py",
        "versions": versions(),
    }
    path = out / "minilm_hidden.safetensors"
    save_file(tensors, str(path), metadata=one_key(meta))
    path.chmod(0o644)
    print(f"wrote {path} ({path.stat().st_size} bytes), N={N}, T={T}")


# --------------------------------------------------------------------------
# tiny GPT-2
# --------------------------------------------------------------------------
def make_tiny_gpt2(out: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(1234)
    cfg = GPT2Config(
        vocab_size=1000, n_positions=64, n_embd=64, n_layer=2, n_head=4,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        # GPT2Config's default bos/eos (50256) lie outside this vocab; HF warns. Irrelevant to the math.
        bos_token_id=999, eos_token_id=999,
    )
    cfg._attn_implementation = "eager"
    model = GPT2LMHeadModel(cfg)
    model.eval()
    mdir = out / "tiny_gpt2"
    mdir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(mdir), safe_serialization=True)
    # Keep only config.json + model.safetensors (generation_config.json is not needed).
    for p in mdir.iterdir():
        if p.name not in ("config.json", "model.safetensors"):
            p.unlink()
    for p in mdir.iterdir():
        p.chmod(0o644)
    saved = load_file(str(mdir / "model.safetensors"))
    print(f"tiny_gpt2: saved {len(saved)} tensors: {sorted(saved)[:4]} ...")

    # Reload from disk so the golden matches exactly what the C++ side will load.
    model = GPT2LMHeadModel.from_pretrained(str(mdir), attn_implementation="eager", dtype=torch.float32)
    model.eval()
    params = dict(model.named_parameters())  # tied lm_head.weight is deduplicated here

    def param_for(saved_name: str) -> torch.nn.Parameter:
        for cand in (saved_name, "transformer." + saved_name):
            if cand in params:
                return params[cand]
        raise SystemExit(f"no parameter for saved tensor {saved_name}")

    for k, v in saved.items():
        check(torch.equal(param_for(k).detach(), v), f"reloaded {k} differs")
    check(model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr(), "lm_head not tied to wte")

    g = torch.Generator().manual_seed(4321)
    B, T = 3, 16
    ids = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
    am = torch.ones(B, T, dtype=torch.long)
    am[2, T - 4:] = 0
    labels = ids.clone()
    labels[am == 0] = -100

    model.zero_grad(set_to_none=True)
    o = model(input_ids=ids, attention_mask=am, labels=labels, output_hidden_states=True)
    o.loss.backward()
    # Independent loss check: shift + mean CE over non-ignored targets.
    ref = torch.nn.functional.cross_entropy(
        o.logits[:, :-1].reshape(-1, cfg.vocab_size), labels[:, 1:].reshape(-1), ignore_index=-100)
    check(abs(ref.item() - o.loss.item()) < 1e-6, f"loss mismatch {ref.item()} vs {o.loss.item()}")

    tensors = {
        "input_ids": ids.to(torch.int32),
        "attention_mask": am.to(torch.int32),
        "logits": o.logits.detach(),
        "loss": o.loss.detach().reshape(1),
    }
    check(len(o.hidden_states) == 3, f"expected 3 hidden states, got {len(o.hidden_states)}")
    for i, h in enumerate(o.hidden_states):
        tensors[f"hidden_state.{i}"] = h.detach()
    for k in saved:
        p = param_for(k)
        if p.grad is None:
            raise SystemExit(f"no gradient for {k}")
        tensors["grad." + k] = p.grad.detach().clone()
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    meta = {
        "generator": "tests/golden/make_model_fixtures.py",
        "model": "tests/golden/tiny_gpt2 (random init, torch.manual_seed(1234))",
        "inputs": "torch.Generator().manual_seed(4321) randint(0,1000,(3,16)); row 2 positions 12..15 padded",
        "loss": "HF causal-LM loss, labels=input_ids with padded positions -100, mean over valid targets",
        "versions": versions(),
    }
    path = out / "tiny_gpt2_golden.safetensors"
    save_file(tensors, str(path), metadata=one_key(meta))
    path.chmod(0o644)
    print(f"wrote {path} ({path.stat().st_size} bytes), loss={o.loss.item():.6f}")


# --------------------------------------------------------------------------
# tiny Llama and Gemma 3 (grouped-query attention, RoPE, gated FFN; Gemma's sandwich norms, q/k norms,
# sliding-window layers with their own RoPE base, scaled embeddings)
# --------------------------------------------------------------------------
def make_tiny_decoder(out: Path, family: str) -> None:
    torch.manual_seed(1234 if family == "llama" else 4321)
    if family == "llama":
        from transformers import LlamaConfig as Cfg, LlamaForCausalLM as Model
        cfg = Cfg(vocab_size=1000, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                  rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                  bos_token_id=1, eos_token_id=2, pad_token_id=2)
    else:
        from transformers import Gemma3TextConfig as Cfg, Gemma3ForCausalLM as Model
        cfg = Cfg(vocab_size=1000, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=1, head_dim=32, max_position_embeddings=64,
                  rms_norm_eps=1e-6, sliding_window=6, query_pre_attn_scalar=24,
                  layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                  bos_token_id=2, eos_token_id=1, pad_token_id=0)
    cfg._attn_implementation = "eager"
    model = Model(cfg)
    # Random norm weights (HF initialises them to a constant), so a norm's offset convention matters.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(0.2 * torch.randn_like(p) + (0.0 if family == "gemma3" else 1.0))
    model.eval()
    mdir = out / f"tiny_{family}"
    mdir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(mdir), safe_serialization=True)
    for p in mdir.iterdir():
        if p.name not in ("config.json", "model.safetensors"):
            p.unlink()
    model = Model.from_pretrained(str(mdir), attn_implementation="eager", dtype=torch.float32)
    model.eval()
    saved = load_file(str(mdir / "model.safetensors"))
    params = dict(model.named_parameters())

    g = torch.Generator().manual_seed(99)
    B, T = 3, 16
    ids = torch.randint(3, cfg.vocab_size, (B, T), generator=g)
    am = torch.ones(B, T, dtype=torch.long)
    am[2, T - 4:] = 0
    labels = ids.clone()
    labels[am == 0] = -100
    model.zero_grad(set_to_none=True)
    o = model(input_ids=ids, attention_mask=am, labels=labels, output_hidden_states=True)
    o.loss.backward()
    ref = torch.nn.functional.cross_entropy(
        o.logits[:, :-1].reshape(-1, cfg.vocab_size), labels[:, 1:].reshape(-1), ignore_index=-100)
    check(abs(ref.item() - o.loss.item()) < 1e-5, f"loss mismatch {ref.item()} vs {o.loss.item()}")
    tensors = {
        "input_ids": ids.to(torch.int32),
        "attention_mask": am.to(torch.int32),
        "logits": o.logits.detach(),
        "loss": o.loss.detach().reshape(1),
    }
    for i, h in enumerate(o.hidden_states):
        tensors[f"hidden_state.{i}"] = h.detach()
    for k in saved:
        p = params[k]
        check(p.grad is not None, f"no gradient for {k}")
        tensors["grad." + k] = p.grad.detach().clone()
    # Greedy continuation of row 0's first 5 tokens with the KV cache, for the C++ decoder.
    with torch.no_grad():
        gen = model.generate(ids[:1, :5], attention_mask=torch.ones(1, 5, dtype=torch.long), max_new_tokens=12,
                             do_sample=False, min_new_tokens=12, pad_token_id=cfg.pad_token_id)
    tensors["greedy_ids"] = gen[0].to(torch.int32)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    meta = {
        "generator": "tests/golden/make_model_fixtures.py",
        "model": f"tests/golden/tiny_{family} (random init, norms randomised)",
        "inputs": "torch.Generator().manual_seed(99) randint(3,1000,(3,16)); row 2 positions 12..15 padded",
        "loss": "HF causal-LM loss, labels=input_ids with padded positions -100, mean over valid targets",
        "greedy_ids": "generate(row 0 tokens 0..4, greedy, 12 new tokens)",
        "versions": versions(),
    }
    path = out / f"tiny_{family}_golden.safetensors"
    save_file(tensors, str(path), metadata=one_key(meta))
    print(f"wrote {path} ({path.stat().st_size} bytes), loss={o.loss.item():.6f}")


def one_key(meta: dict) -> dict:
    # safetensors writes metadata from a hash map (random key order); a single key keeps files byte-stable.
    return {"info": json.dumps(meta, sort_keys=True, ensure_ascii=False)}


def versions() -> str:
    import tokenizers
    import transformers
    return f"torch {torch.__version__}, transformers {transformers.__version__}, tokenizers {tokenizers.__version__}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minilm", type=Path, default=default_minilm_dir(), help="all-MiniLM-L6-v2 directory")
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "golden")
    ap.add_argument("--skip-minilm", action="store_true")
    ap.add_argument("--skip-gpt2", action="store_true")
    ap.add_argument("--only-decoders", action="store_true", help="only tiny_llama and tiny_gemma3")
    a = ap.parse_args()

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # bitwise-stable reductions across machines as far as possible
    a.out.mkdir(parents=True, exist_ok=True)
    if a.only_decoders:
        a.skip_minilm = a.skip_gpt2 = True
    if not a.skip_minilm:
        if not (a.minilm / "model.safetensors").is_file():
            raise SystemExit(f"MiniLM not found in {a.minilm}; run scripts/fetch_minilm.sh or pass --minilm DIR")
        make_minilm(a.minilm, a.out)
    if not a.skip_gpt2:
        make_tiny_gpt2(a.out)
    for family in ("llama", "gemma3"):
        make_tiny_decoder(a.out, family)
    print(versions())
    return 0


if __name__ == "__main__":
    sys.exit(main())
