#!/usr/bin/env python3
"""Hugging Face reference data for ladder's decoder (Llama / Gemma 3) backbones loaded from GGUF.

    PY=/root/ladder-venv/bin/python
    $PY scripts/hf_decoder_reference.py logits    --gguf FILE --out tests/golden/smollm2_hf_logits \
            --prompts-file tests/golden/decoder_prompts.txt [--max-len 64] [--layers 0,1,15,30] [--last-k 4]
    $PY scripts/hf_decoder_reference.py lora-step --gguf FILE --out tests/golden/smollm2_hf_lora_step \
            [--text wiki.test.raw] [--batch 2] [--seq 32] [--seed 1234]
    $PY scripts/hf_decoder_reference.py ppl       --gguf FILE --text .../wiki.test.raw --ctx 512 --stride 512 \
            [--max-tokens N] [--batch 4]
    $PY scripts/hf_decoder_reference.py generate  --gguf FILE --prompt TEXT [--chat] --max-new 64

Common flags: --threads N (default 1), --loader auto|transformers|gguf (default auto),
--attn eager|sdpa (default eager for logits/lora-step, sdpa for ppl/generate), --json FILE (ppl, generate).

Model loading
-------------
--loader transformers: AutoModelForCausalLM.from_pretrained(dir, gguf_file=name, dtype=float32); this is what
  `auto` tries first (it works for SmolLM2-135M-Instruct Q4_1 with transformers 5.25).
--loader gguf (the fallback `auto` uses when transformers raises): the HF class is built from a config read from
  the GGUF metadata (llama -> LlamaConfig, gemma3 -> Gemma3TextConfig) and every tensor is dequantised with
  gguf.quants.dequantize(), mapped GGUF->HF with gguf.get_tensor_name_map(arch, n_layers) (blk.N.attn_q.weight
  -> model.layers.N.self_attn.q_proj.weight, token_embd -> model.embed_tokens, output_norm -> model.norm,
  output -> lm_head; missing output.weight => tied embeddings), and then the same per-architecture fix-ups
  transformers applies:
    * llama: convert_hf_to_gguf.py permutes the ROWS of q_proj/k_proj (per head, to turn HF's "rotate_half"
      (NeoX, halves) RoPE layout into llama.cpp's interleaved-pairs layout):
          gguf = w.reshape(n_head, 2, head_dim/2, in).swapaxes(1, 2).reshape(out, in)
      transformers (LlamaTensorProcessor._reverse_permute_weights) undoes it on load:
          hf   = w.reshape(n_head, head_dim/2, 2, in).swapaxes(1, 2).reshape(out, in)
      with n_head = num_attention_heads for attn_q and num_key_value_heads for attn_k. attn_v / attn_output
      and everything else are not permuted. So the HF rows of head h are [even rows of the GGUF head block,
      then odd rows]; equivalently llama.cpp's RoPE rotates pairs (2i, 2i+1) of the GGUF rows while HF rotates
      (i, i + head_dim/2) of the un-permuted rows - the two are the same function.
    * gemma3: no Q/K permutation; llama.cpp stores every RMSNorm weight as (1 + w) (HF Gemma norms compute
      x * (1 + w)), so transformers subtracts 1 from every tensor whose name contains "norm.weight"
      (attn_norm, post_attention_norm, ffn_norm, post_ffw_norm, attn_q_norm, attn_k_norm, output_norm).
      Gemma 3 hyper-parameters llama.cpp does not store are filled with HF's defaults: sliding_window_pattern 6
      (every 6th layer global), local rope theta 10000, query_pre_attn_scalar = head_dim, no soft-capping,
      hidden_activation gelu_pytorch_tanh, embeddings scaled by sqrt(hidden_size) inside the HF model.
The tokenizer is always AutoTokenizer.from_pretrained(dir, gguf_file=name) (transformers builds a fast tokenizer
from the GGUF vocab/merges). NOTE: for SmolLM2 the resulting tokenizer does NOT prepend BOS (add_bos_token False),
although the GGUF says tokenizer.ggml.add_bos_token = 1 (llama.cpp would prepend <|im_start|>, id 1). All reference
data below is WITHOUT any BOS: ids are exactly tokenizer(text, add_special_tokens=True) = plain BPE of the text.
(Gemma 3's GGUF tokenizer does whatever transformers' GGUF converter does; the logits JSON records per prompt whether
a BOS was prepended, info.bos_prepended, and the ids themselves are stored, so a C++ test should feed the stored ids.)

Golden file format (logits and lora-step): OUT.json + OUT.bin
--------------------------------------------------------------
OUT.bin is the concatenation of raw little-endian arrays, C (row-major) order, no header, no padding except
that every array starts at a multiple of 64 bytes. OUT.json is
    {"format": "ladder-golden-v1", "bin": "<file name of OUT.bin>", "info": {...free-form metadata...},
     "tensors": {NAME: {"dtype": "f32"|"i32", "shape": [d0, d1, ...], "offset": BYTES, "nbytes": BYTES}, ...}}
A C++ reader: parse the JSON, for a NAME seek to `offset` in the .bin and read prod(shape) 4-byte values
(float32 or int32, little-endian); nbytes == 4 * prod(shape). Scalars have shape [].

logits contents, per prompt p = 0..P-1 (T = number of tokens of prompt p, no padding, each prompt run alone):
    p{p}.input_ids    i32 [T]             token ids (no BOS)
    p{p}.logits_last  f32 [K, V]          full logits of the last K = min(last_k, T) positions (T-K .. T-1)
    p{p}.argmax       i32 [T]             argmax of the logits at every position
    p{p}.logsumexp    f32 [T]             logsumexp of the logits at every position (computed in float64)
    p{p}.max_logit    f32 [T]             max logit at every position
    p{p}.hidden.L     f32 [T, d]          HF output_hidden_states[L] for L in --layers: [0] = embedding output
                                          (Gemma: already multiplied by sqrt(d)), [l] = output of decoder layer l
                                          (1-based) for l < n_layers; [n_layers] = last_hidden_state, i.e. the
                                          FINAL NORM IS APPLIED to the last one (transformers 5 behaviour).
    p{p}.layer_out_last_raw f32 [T, d]    output of the last decoder layer BEFORE the final norm (forward hook)
  info: texts, n_tokens per prompt, last_k, layers, config (HF config dict), versions, loader used.
  Suggested checks: for the last K positions max|l_cpp - l_ref| / max|l_ref| (per position), argmax agreement
  at all positions (ties/near-ties aside), |logsumexp_cpp - logsumexp_ref| and hidden-state relative errors.

lora-step contents: PEFT LoraConfig(r=8, lora_alpha=16, target_modules=[q_proj, v_proj], lora_dropout=0,
bias="none") on the fp32 model (scale alpha/r = 2; y = W x + 2 * B (A x)). All LoRA A and B are overwritten with
numpy RandomState(seed) normal values before the step: for layers l = 0..L-1 in order, for module in (q_proj,
v_proj): A = N(0,1) * 0.02 of shape [r, in], then B = N(0,1) * 0.02 of shape [out, r] (float64 draws cast to
float32; order: l0.q.A, l0.q.B, l0.v.A, l0.v.B, l1.q.A, ...). Batch: the wiki.test.raw text read as one string,
tokenised (no BOS), tokens [0, batch*seq) reshaped to [batch, seq]. Loss = HF causal LM loss: labels = input_ids,
logits[:, :-1] predict ids[:, 1:], cross-entropy averaged over all batch*(seq-1) predicted tokens. One
loss.backward(); nothing else (no optimizer step).
    input_ids                 i32 [batch, seq]
    loss                      f32 []
    logits_last               f32 [batch, V]   logits at the last position of each sequence (sanity)
    init.layers.{l}.{q_proj|v_proj}.lora_A  f32 [r, in]    init values
    init.layers.{l}.{q_proj|v_proj}.lora_B  f32 [out, r]
    grad.layers.{l}.{q_proj|v_proj}.lora_A  f32 [r, in]    d loss / d A
    grad.layers.{l}.{q_proj|v_proj}.lora_B  f32 [out, r]
  (q_proj: in = d, out = n_head*head_dim; v_proj: in = d, out = n_kv_head*head_dim; the q_proj output rows are in
  HF order, i.e. AFTER undoing llama.cpp's permutation - a C++ LoRA on the GGUF-ordered q rows must permute B's
  rows / the gradient accordingly.)

Perplexity protocol (ppl)
-------------------------
text = open(FILE, encoding="utf-8", newline="").read()  - the whole file exactly as stored, no stripping, no
joining, no newline translation, no normalisation. (The copy at /work/shared/data/text/wikitext-2-raw/wiki.test.raw
is the HF-parquet rebuild: 1,290,547 bytes, 2891 lines, blank lines removed, every line ends in CRLF "\r\n",
first bytes " = Robert Boulter = \r\n"; the \r characters are kept and tokenised. A C++ replica reads the file's
bytes verbatim. Numbers are therefore NOT comparable with llama.cpp's usual wiki.test.raw (4358 LF lines).)
ids = tokenizer(text, add_special_tokens=False).input_ids  (one call on the whole string; no BOS).
If --max-tokens N: ids = ids[:N].  Windows: start s = k*stride for k = 0,1,... while s + ctx <= len(ids) (only FULL
windows; the remainder tail is dropped). Each window ids[s:s+ctx] is evaluated independently (fresh context, no
BOS). Scored positions inside a window (targets): j = first..ctx-1 where first = 1 for k = 0 or stride >= ctx,
else first = ctx - stride (only the tokens not scored before). NLL_j = -log softmax(logits[j-1])[ids[s+j]].
ppl = exp(sum NLL / count). With ctx = stride = 512 every window scores 511 tokens. NLL summed in float64.

generate: greedy (do_sample=False), KV cache, stops at EOS unless --ignore-eos; one untimed 2-token warm-up
generate() first, then prints the text, the new token ids and tokens/s (new tokens / wall time of the timed
generate(), prefill included). --chat wraps the prompt with tokenizer.apply_chat_template(add_generation_prompt=True).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch


# ----------------------------------------------------------------------------------------------------------------
# loading

def _field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.contents()
    return v


def _reverse_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    dim = w.shape[0] // n_head // 2
    return w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


def config_from_gguf(reader):
    from transformers import LlamaConfig, Gemma3TextConfig
    arch = _field(reader, "general.architecture")
    g = lambda k, d=None: _field(reader, f"{arch}.{k}", d)
    n_vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    names = {t.name for t in reader.tensors}
    tied = "output.weight" not in names
    common = dict(
        vocab_size=int(g("vocab_size", n_vocab) or n_vocab),
        hidden_size=int(g("embedding_length")),
        intermediate_size=int(g("feed_forward_length")),
        num_hidden_layers=int(g("block_count")),
        num_attention_heads=int(g("attention.head_count")),
        num_key_value_heads=int(g("attention.head_count_kv", g("attention.head_count"))),
        max_position_embeddings=int(g("context_length", 8192)),
        rms_norm_eps=float(g("attention.layer_norm_rms_epsilon")),
        tie_word_embeddings=tied,
        bos_token_id=_field(reader, "tokenizer.ggml.bos_token_id"),
        eos_token_id=_field(reader, "tokenizer.ggml.eos_token_id"),
        pad_token_id=_field(reader, "tokenizer.ggml.padding_token_id"),
    )
    if arch == "llama":
        head_dim = int(g("rope.dimension_count", common["hidden_size"] // common["num_attention_heads"]))
        cfg = LlamaConfig(**common, head_dim=head_dim, hidden_act="silu",
                          rope_parameters={"rope_type": "default", "rope_theta": float(g("rope.freq_base", 10000.0))})
    elif arch == "gemma3":
        head_dim = int(g("attention.key_length", 256))
        cfg = Gemma3TextConfig(**common, head_dim=head_dim, hidden_activation="gelu_pytorch_tanh",
                               query_pre_attn_scalar=head_dim,
                               sliding_window=int(g("attention.sliding_window", 512)),
                               rope_parameters={
                                   "full_attention": {"rope_type": "default",
                                                      "rope_theta": float(g("rope.freq_base", 1e6))},
                                   "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
                               final_logit_softcapping=None, attn_logit_softcapping=None)
    else:
        raise NotImplementedError(f"fallback loader: architecture {arch!r} (only llama, gemma3)")
    return arch, cfg


def load_with_gguf_package(path: Path, attn: str):
    """Build the HF model from config and fill it with tensors dequantised by the gguf package."""
    import gguf
    from gguf.quants import dequantize
    from transformers import AutoModelForCausalLM
    reader = gguf.GGUFReader(str(path))
    arch, cfg = config_from_gguf(reader)
    cfg._attn_implementation = attn
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation=attn)
    arch_id = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
    nmap = gguf.get_tensor_name_map(arch_id, cfg.num_hidden_layers)
    sd = model.state_dict()
    g2h = {}
    for hf in sd:
        base, suf = hf.rsplit(".", 1)
        gname = nmap.get_name(base)
        if gname is None and base.startswith("model."):
            gname = nmap.get_name(base[len("model."):])
        if gname is not None:
            g2h[f"{gname}.{suf}"] = hf
    loaded = set()
    new_sd = {}
    for t in reader.tensors:
        if t.name not in g2h:
            print(f"[gguf loader] unmapped GGUF tensor {t.name}", file=sys.stderr)
            continue
        w = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        w = w.reshape([int(x) for x in reversed(t.shape)]) if w.size == int(np.prod(t.shape)) else w
        if arch == "llama":
            if ".attn_q." in t.name:
                w = _reverse_permute(w, cfg.num_attention_heads)
            elif ".attn_k." in t.name:
                w = _reverse_permute(w, cfg.num_key_value_heads)
        elif arch == "gemma3":
            if "norm.weight" in t.name:
                w = w - 1.0
        hf = g2h[t.name]
        if tuple(sd[hf].shape) != w.shape:
            w = w.reshape(sd[hf].shape)
        new_sd[hf] = torch.from_numpy(np.array(w, dtype=np.float32, copy=True, order="C"))
        loaded.add(hf)
    missing = [k for k in sd if k not in loaded]
    if cfg.tie_word_embeddings:
        missing = [k for k in missing if k != "lm_head.weight"]
    if missing:
        raise RuntimeError(f"[gguf loader] HF parameters without GGUF tensor: {missing[:10]}")
    model.load_state_dict(new_sd, strict=False)
    if cfg.tie_word_embeddings:
        model.tie_weights()
    return model


def load(gguf_path: Path, loader: str = "auto", attn: str = "eager"):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d, name = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    used = None
    model = None
    if loader in ("auto", "transformers"):
        try:
            model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32,
                                                         attn_implementation=attn)
            used = "transformers"
        except Exception as e:  # noqa: BLE001
            if loader == "transformers":
                raise
            print(f"transformers could not load {name}: {e!r}; using the gguf-package fallback", file=sys.stderr)
    if model is None:
        model = load_with_gguf_package(gguf_path, attn)
        used = "gguf-package"
    model.eval()
    return tok, model, used


def versions() -> dict:
    import transformers, gguf  # noqa: F401
    v = {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__,
         "python": sys.version.split()[0]}
    try:
        import importlib.metadata as md
        v["gguf"] = md.version("gguf")
        v["tokenizers"] = md.version("tokenizers")
        v["peft"] = md.version("peft")
    except Exception:  # noqa: BLE001
        pass
    return v


# ----------------------------------------------------------------------------------------------------------------
# golden writer

class GoldenWriter:
    def __init__(self, out_prefix: Path):
        self.prefix = Path(str(out_prefix).removesuffix(".json").removesuffix(".bin"))
        self.tensors: dict = {}
        self.buf = bytearray()

    def add(self, name: str, arr) -> None:
        if isinstance(arr, torch.Tensor):
            arr = arr.detach().cpu().numpy()
        arr = np.asarray(arr)
        if arr.dtype.kind in "iub":
            arr, dt = arr.astype("<i4"), "i32"
        else:
            arr, dt = arr.astype("<f4"), "f32"
        pad = (-len(self.buf)) % 64
        self.buf += b"\0" * pad
        off = len(self.buf)
        b = np.ascontiguousarray(arr).tobytes()
        self.buf += b
        assert name not in self.tensors, name
        self.tensors[name] = {"dtype": dt, "shape": list(arr.shape), "offset": off, "nbytes": len(b)}

    def write(self, info: dict) -> None:
        binp = self.prefix.with_name(self.prefix.name + ".bin")
        jsp = self.prefix.with_name(self.prefix.name + ".json")
        binp.parent.mkdir(parents=True, exist_ok=True)
        binp.write_bytes(bytes(self.buf))
        doc = {"format": "ladder-golden-v1", "bin": binp.name, "info": info, "tensors": self.tensors}
        jsp.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {jsp} and {binp} ({len(self.buf) / 2**20:.2f} MiB, {len(self.tensors)} tensors)")


def read_prompts(path: Path) -> list[str]:
    """One prompt per line; blank lines and lines starting with '#' are skipped; the two-character escapes
    \\n and \\t become newline and tab, \\\\ becomes a backslash."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        s, i, r = line, 0, []
        while i < len(s):
            if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in "nt\\":
                r.append({"n": "\n", "t": "\t", "\\": "\\"}[s[i + 1]])
                i += 2
            else:
                r.append(s[i])
                i += 1
        out.append("".join(r))
    return out


def config_dict(model) -> dict:
    c = model.config.to_dict()
    c.pop("quantization_config", None)
    return json.loads(json.dumps(c, default=str))


# ----------------------------------------------------------------------------------------------------------------
# subcommands

def cmd_logits(a) -> int:
    tok, model, used = load(a.gguf, a.loader, a.attn or "eager")
    prompts = read_prompts(a.prompts_file)
    layers = [int(x) for x in a.layers.split(",")]
    L = model.config.num_hidden_layers
    w = GoldenWriter(a.out)
    n_tokens, all_ids = [], []
    raw = {}
    last_layer = model.model.layers[L - 1]
    h = last_layer.register_forward_hook(
        lambda m, i, o: raw.__setitem__("x", (o[0] if isinstance(o, tuple) else o).detach().clone()))
    for p, text in enumerate(prompts):
        ids = tok(text, return_tensors="pt").input_ids[:, : a.max_len]
        T = ids.shape[1]
        n_tokens.append(T)
        all_ids.append(ids[0].tolist())
        with torch.no_grad():
            out = model(input_ids=ids, output_hidden_states=True, use_cache=False)
        lg = out.logits[0].float()
        K = min(a.last_k, T)
        w.add(f"p{p}.input_ids", ids[0].to(torch.int32))
        w.add(f"p{p}.logits_last", lg[T - K:])
        w.add(f"p{p}.argmax", lg.argmax(-1).to(torch.int32))
        w.add(f"p{p}.logsumexp", torch.logsumexp(lg.double(), -1).float())
        w.add(f"p{p}.max_logit", lg.max(-1).values)
        hs = out.hidden_states
        for l in layers:
            w.add(f"p{p}.hidden.{l}", hs[l][0])
        w.add(f"p{p}.layer_out_last_raw", raw["x"][0])
        top = lg[-1].topk(5)
        print(f"prompt {p}: T={T} ids={ids[0].tolist()[:40]}{'...' if T > 40 else ''}\n"
              f"   top5 next: {[(int(i), tok.decode([int(i)]), round(float(v), 3)) for v, i in zip(top.values, top.indices)]}")
    h.remove()
    # sanity: hidden_states[L] == norm(raw)?
    with torch.no_grad():
        normed = model.model.norm(raw["x"])
    last_is_normed = bool(torch.allclose(normed[0], hs[L][0], atol=1e-5))
    info = {"kind": "logits", "gguf": a.gguf.name, "loader": used, "texts": prompts, "n_tokens": n_tokens,
            "last_k": a.last_k, "layers": layers, "hidden_last_is_final_norm": last_is_normed,
            "bos_token_id": tok.bos_token_id,
            "bos_prepended": [bool(tok.bos_token_id is not None and len(t) and t[0] == tok.bos_token_id and
                                   not p_.startswith(str(tok.bos_token))) for t, p_ in zip(all_ids, prompts)],
            "attn_implementation": a.attn or "eager", "threads": torch.get_num_threads(),
            "dtype": "float64 (stored rounded to float32)" if a.float64 else "float32",
            "config": config_dict(model), "versions": versions()}
    print(f"hidden_states[{L}] is final-norm output: {last_is_normed}")
    w.write(info)
    return 0


def lora_targets(model):
    for l, layer in enumerate(model.base_model.model.model.layers):
        for mod in ("q_proj", "v_proj"):
            yield l, mod, getattr(layer.self_attn, mod)


def cmd_lora_step(a) -> int:
    from peft import LoraConfig, get_peft_model
    tok, model, used = load(a.gguf, a.loader, a.attn or "eager")
    cfg = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, bias="none")
    if a.float64:  # the exact reference both fp32 implementations are measured against
        model = model.double()
    model = get_peft_model(model, cfg)
    rs = np.random.RandomState(a.seed)
    w = GoldenWriter(a.out)
    with torch.no_grad():
        for l, mod, m in lora_targets(model):
            A, B = m.lora_A["default"].weight, m.lora_B["default"].weight
            a_init = (rs.standard_normal(tuple(A.shape)) * 0.02).astype(np.float32)
            b_init = (rs.standard_normal(tuple(B.shape)) * 0.02).astype(np.float32)
            A.copy_(torch.from_numpy(a_init).to(A.dtype))
            B.copy_(torch.from_numpy(b_init).to(B.dtype))
            w.add(f"init.layers.{l}.{mod}.lora_A", a_init)
            w.add(f"init.layers.{l}.{mod}.lora_B", b_init)
    text = open(a.text, encoding="utf-8", newline="").read()[:200000]
    ids_all = tok(text, add_special_tokens=False).input_ids
    n = a.batch * a.seq
    ids = torch.tensor(ids_all[:n], dtype=torch.long).reshape(a.batch, a.seq)
    model.train()
    out = model(input_ids=ids, labels=ids, use_cache=False)
    loss = out.loss
    loss.backward()
    w.add("input_ids", ids.to(torch.int32))
    w.add("loss", loss.detach().float().reshape(()))
    if a.float64:
        w.add("loss_f64", np.array([loss.item()], dtype=np.float64).astype(np.float32).reshape(()))
    w.add("logits_last", out.logits[:, -1].detach().float())
    gnorm = 0.0
    for l, mod, m in lora_targets(model):
        gA, gB = m.lora_A["default"].weight.grad, m.lora_B["default"].weight.grad
        w.add(f"grad.layers.{l}.{mod}.lora_A", gA.float())
        w.add(f"grad.layers.{l}.{mod}.lora_B", gB.float())
        gnorm += float(gA.double().pow(2).sum() + gB.double().pow(2).sum())
    print(f"loss {loss.item():.6f}; LoRA grad L2 norm {math.sqrt(gnorm):.6e}; ids[0][:8] {ids[0, :8].tolist()}")
    info = {"kind": "lora-step", "gguf": a.gguf.name, "loader": used, "loss": float(loss.item()),
            "grad_l2_norm": math.sqrt(gnorm), "r": 8, "lora_alpha": 16, "scale": 2.0,
            "target_modules": ["q_proj", "v_proj"], "seed": a.seed, "init_std": 0.02,
            "batch": a.batch, "seq": a.seq, "text": str(a.text.name),
            "text_rule": "file read as one utf-8 string (first 200000 chars), tokenizer(add_special_tokens=False), "
                         "first batch*seq tokens, row-major [batch, seq]",
            "loss_rule": "mean CE over batch*(seq-1) tokens, logits[:, :-1] vs ids[:, 1:]",
            "attn_implementation": a.attn or "eager", "threads": torch.get_num_threads(),
            "dtype": "float64 (stored rounded to float32)" if a.float64 else "float32",
            "config": config_dict(model.base_model.model), "versions": versions()}
    w.write(info)
    return 0


def cmd_ppl(a) -> int:
    tok, model, used = load(a.gguf, a.loader, a.attn or "sdpa")
    if a.adapter:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, str(a.adapter))
        model.eval()
        used += f" + PEFT adapter {a.adapter}"
    text = open(a.text, encoding="utf-8", newline="").read()
    t0 = time.perf_counter()
    ids = tok(text, add_special_tokens=False).input_ids
    t_tok = time.perf_counter() - t0
    n_file = len(ids)
    if a.max_tokens:
        ids = ids[: a.max_tokens]
    ctx, stride = a.ctx, a.stride
    starts = list(range(0, len(ids) - ctx + 1, stride))
    ids_t = torch.tensor(ids, dtype=torch.long)
    nll, count = 0.0, 0
    t0 = time.perf_counter()
    for bi in range(0, len(starts), a.batch):
        ss = starts[bi: bi + a.batch]
        x = torch.stack([ids_t[s: s + ctx] for s in ss])
        with torch.no_grad():
            lg = model(input_ids=x, use_cache=False).logits.float()
        lp = torch.log_softmax(lg[:, :-1], -1)
        tgt = x[:, 1:]
        tok_nll = -lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1).double()  # [b, ctx-1], target j = 1..ctx-1
        for r, s in enumerate(ss):
            first = 1 if (s == 0 or stride >= ctx) else ctx - stride
            nll += float(tok_nll[r, first - 1:].sum())
            count += ctx - first
        done = bi + len(ss)
        if done % (a.batch * 16) == 0 or done == len(starts):
            el = time.perf_counter() - t0
            print(f"  {done}/{len(starts)} windows, {el:.1f}s, running ppl {math.exp(nll / count):.4f}",
                  file=sys.stderr, flush=True)
    el = time.perf_counter() - t0
    ppl = math.exp(nll / count)
    res = {"kind": "ppl", "gguf": a.gguf.name, "loader": used, "ppl": ppl, "nll_sum": nll, "tokens_scored": count,
           "windows": len(starts), "ctx": ctx, "stride": stride, "tokens_in_file": n_file,
           "tokens_used": len(ids), "max_tokens": a.max_tokens, "seconds_eval": el, "seconds_tokenize": t_tok,
           "eval_tokens_per_s": len(starts) * ctx / el if el > 0 else None,
           "projected_seconds_full_file": el * (n_file // ctx) / max(1, len(starts)) if stride == ctx else None,
           "threads": torch.get_num_threads(), "attn_implementation": a.attn or "sdpa", "batch": a.batch}
    print(json.dumps(res))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


def cmd_generate(a) -> int:
    tok, model, used = load(a.gguf, a.loader, a.attn or "sdpa")
    prompt = a.prompt
    if a.chat:
        prompt = tok.apply_chat_template([{"role": "user", "content": a.prompt}], tokenize=False,
                                         add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt").input_ids
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    kw = dict(attention_mask=torch.ones_like(ids), do_sample=False, pad_token_id=pad)
    if a.ignore_eos:
        kw["min_new_tokens"] = a.max_new
    with torch.no_grad():
        model.generate(ids, max_new_tokens=2, **kw if not a.ignore_eos else dict(kw, min_new_tokens=2))  # warm-up
        t0 = time.perf_counter()
        out = model.generate(ids, max_new_tokens=a.max_new, **kw)
        el = time.perf_counter() - t0
    new = out[0, ids.shape[1]:].tolist()
    res = {"kind": "generate", "gguf": a.gguf.name, "loader": used, "prompt": prompt,
           "prompt_ids": ids[0].tolist(), "new_ids": new, "text": tok.decode(new),
           "new_tokens": len(new), "seconds": el, "tokens_per_s": len(new) / el,
           "threads": torch.get_num_threads(), "attn_implementation": a.attn or "sdpa"}
    print(f"prompt: {prompt!r}\nprompt ids: {ids[0].tolist()}\n--- completion ---\n{tok.decode(new)}\n---")
    print(json.dumps(res))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--gguf", type=Path, required=True)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--loader", choices=["auto", "transformers", "gguf"], default="auto")
        p.add_argument("--attn", choices=["eager", "sdpa"], default=None)
        return p

    p = common(sub.add_parser("logits"))
    p.add_argument("--out", type=Path, required=True, help="output prefix; writes PREFIX.json and PREFIX.bin")
    p.add_argument("--prompts-file", type=Path, required=True)
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--layers", default=None, help="hidden-state indices to store (default 0,1,L/2,L)")
    p.add_argument("--last-k", type=int, default=4)
    p = common(sub.add_parser("lora-step"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--text", type=Path, default=Path("/work/shared/data/text/wikitext-2-raw/wiki.test.raw"))
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=32)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--float64", action="store_true", help="run the step in float64 (an exact reference)")
    p = common(sub.add_parser("ppl"))
    p.add_argument("--text", type=Path, default=Path("/work/shared/data/text/wikitext-2-raw/wiki.test.raw"))
    p.add_argument("--ctx", type=int, default=512)
    p.add_argument("--stride", type=int, default=512)
    p.add_argument("--max-tokens", type=int, default=0)
    p.add_argument("--batch", type=int, default=4, help="windows per forward (does not change the result)")
    p.add_argument("--adapter", type=Path, default=None,
                   help="a PEFT adapter directory (e.g. from `ladder export --format peft`) applied to the model")
    p.add_argument("--json", type=Path, default=None)
    p = common(sub.add_parser("generate"))
    p.add_argument("--prompt", required=True)
    p.add_argument("--chat", action="store_true")
    p.add_argument("--ignore-eos", action="store_true", help="always generate --max-new tokens (throughput runs)")
    p.add_argument("--max-new", type=int, default=64)
    p.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.cmd == "logits":
        if a.layers is None:
            import gguf
            r = gguf.GGUFReader(str(a.gguf))
            arch = _field(r, "general.architecture")
            L = int(_field(r, f"{arch}.block_count"))
            a.layers = f"0,1,{L // 2},{L}"
        return cmd_logits(a)
    return {"lora-step": cmd_lora_step, "ppl": cmd_ppl, "generate": cmd_generate}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
