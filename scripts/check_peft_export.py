#!/usr/bin/env python3
"""Dev check (not run by CI): a ladder LoRA or (IA)^3 checkpoint, exported with `ladder export`, gives the same
logits in Hugging Face transformers + PEFT (base model + adapter) and in transformers alone (merged directory) as
in ladder itself.

    scripts/check_peft_export.py --checkpoint /tmp/exp_run [--ladder build-export/ladder] [-n 16] [--no-merged]
    scripts/check_peft_export.py --dump ladder_logits.json --peft-dir DIR [--merged-dir DIR] [--base DIR]
    scripts/check_peft_export.py --self-test [--workdir DIR]

Steps (--checkpoint): `ladder eval --dump-logits` writes the first N dev examples' token ids and ladder's logits;
`ladder export --format peft` and `--format merged` write the two directories (--no-merged: only peft). With
--dump/--peft-dir the files already exist and ladder is not run. Then this script feeds the very same token ids to
  1. AutoModelForSequenceClassification.from_pretrained(base) + PeftModel.from_pretrained(model, peft_dir)
  2. AutoModelForSequenceClassification.from_pretrained(merged_dir)  (when there is a merged directory)
and prints the max |logit difference| against ladder for each (and between the two). It fails when
  * a difference exceeds --tol (default 1e-4),
  * PEFT warns about missing adapter keys, or any tensor of adapter_model.safetensors did not land in the
    PeftModel with an equal value (unexpected), or the PeftModel has an adapter tensor (ia3_l / lora_A / lora_B /
    modules_to_save) the file lacks (missing: it would silently keep its init value, 1 for ia3_l),
  * the merged directory loads with missing or unexpected weights.
It also checks that the merged directory's tokenizer gives ladder's ids (printed, not a failure).
The adapter type comes from adapter_config.json's peft_type (LORA or IA3); for IA3 it prints which modules got an
output scaling (ia3_l shape (out, 1)) and which an input / feedforward scaling (shape (1, in)).

--self-test needs no ladder: it builds an IA3 PeftModel on the base model (all-MiniLM-L6-v2, --base) with random
ia3_l vectors around 1 and a random classifier, save_pretrained()s it, writes a dump-logits JSON from PyTorch (the
first N SST-2 dev sentences, padded batches, as ladder does), and runs the check on it (expect ~0 difference), then
twice more on a broken copy of the adapter (one vector perturbed: expect a logit FAIL; one tensor removed: expect a
missing-key FAIL). Exits 0 only if all three end as expected.

Needs: torch, transformers, safetensors, peft (pip install peft).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

IA3_TARGETS = r".*\.(key|value)|.*layer\.\d+\.output\.dense"
IA3_FEEDFORWARD = r".*layer\.\d+\.output\.dense"


def run(cmd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def default_minilm_dir():
    cache = os.environ.get("LADDER_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "ladder"))
    return os.path.join(cache, "models", "all-MiniLM-L6-v2")


def adapter_keys_of(peft_model):
    """The adapter state dict in the form save_pretrained() writes it (adapter name stripped)."""
    from peft import get_peft_model_state_dict
    return get_peft_model_state_dict(peft_model)


def compare(dump, peft_dir, merged_dir=None, base_dir=None, tol=1e-4, threads=2):
    """Returns True when everything matches."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(threads)
    d = json.load(open(dump))
    examples = d["examples"]
    num_labels = d["num_labels"]
    acfg = json.load(open(os.path.join(peft_dir, "adapter_config.json")))
    peft_type = acfg.get("peft_type")
    base_dir = base_dir or acfg["base_model_name_or_path"]
    print(f"\n{len(examples)} {d['task']} dev examples, checkpoint {d['checkpoint']} (step {d['step']}, {d['method']})")
    print(f"base {base_dir}; adapter {peft_dir}: peft_type {peft_type}, task_type {acfg.get('task_type')}, "
          f"target_modules {acfg.get('target_modules')!r}"
          + (f", feedforward_modules {acfg.get('feedforward_modules')!r}" if peft_type == "IA3" else "")
          + f", modules_to_save {acfg.get('modules_to_save')}")
    if peft_type not in ("LORA", "IA3"):
        print(f"warning: peft_type {peft_type!r} is neither LORA nor IA3; checking it the generic way")

    # 1. base + PEFT adapter; record what PEFT / transformers warn about while loading
    base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=num_labels)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peft_model = PeftModel.from_pretrained(base, peft_dir).eval()
    peft_warnings = [(w.category.__name__, str(w.message)) for w in caught]
    missing_warned = [m for _, m in peft_warnings if "missing adapter keys" in m]
    for cat, m in peft_warnings:
        loud = cat not in ("FutureWarning", "DeprecationWarning")
        print(f"{'WARNING' if loud else 'note'} ({cat}) while loading the adapter: {m}")

    expected = adapter_keys_of(peft_model)  # what the PeftModel holds, keyed as in the file
    adapter = load_file(os.path.join(peft_dir, "adapter_model.safetensors"))
    unexpected = sorted(k for k in adapter if k not in expected)
    missing = sorted(k for k in expected if k not in adapter)
    wrong_shape = sorted(k for k in adapter if k in expected and tuple(adapter[k].shape) != tuple(expected[k].shape))
    differs = sorted(k for k in adapter if k in expected and k not in wrong_shape
                     and not torch.equal(expected[k].float(), adapter[k].float()))
    print(f"PEFT adapter: {len(adapter)} tensors in the file, {len(expected)} adapter tensors in the PeftModel, "
          f"{len(adapter) - len(unexpected) - len(wrong_shape) - len(differs)} loaded with equal values")
    if peft_type == "IA3":
        from peft.tuners.ia3 import IA3Layer
        mods = [(n, m) for n, m in peft_model.named_modules() if isinstance(m, IA3Layer)]
        n_ff = sum(1 for _, m in mods if m.is_feedforward)
        print(f"IA3: {len(mods)} scaled modules, {n_ff} feedforward (input scaling), {len(mods) - n_ff} output scaling")
        for n, m in mods:
            kind = "input (feedforward)" if m.is_feedforward else "output"
            print(f"  {n.removeprefix('base_model.model.')}: {kind} scaling {tuple(m.ia3_l['default'].shape)}")
    for name, ks in (("UNEXPECTED (in the file, not in the PeftModel)", unexpected),
                     ("MISSING (in the PeftModel, not in the file)", missing),
                     ("WRONG SHAPE", wrong_shape), ("loaded value differs", differs)):
        if ks:
            print(f"  {name}: {len(ks)}: {ks}")
    adapter_bad = bool(unexpected or missing or wrong_shape or differs or missing_warned)

    # 2. merged directory, transformers alone
    merged = tok = None
    problems = {}
    if merged_dir:
        merged, info = AutoModelForSequenceClassification.from_pretrained(merged_dir, output_loading_info=True)
        merged.eval()
        problems = {k: v for k, v in info.items() if v}
        print(f"merged: {type(merged).__name__}, num_labels {merged.config.num_labels}, id2label {merged.config.id2label}; "
              + (f"loading problems: {problems}" if problems else "no missing or unexpected weights"))
        tok = AutoTokenizer.from_pretrained(merged_dir)
    else:
        print("merged: not checked (no merged directory)")

    def logits_of(model, e):
        ids = torch.tensor([e["input_ids"]])
        kw = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if "token_type_ids" in e and model.config.model_type == "bert":
            kw["token_type_ids"] = torch.tensor([e["token_type_ids"]])
        with torch.no_grad():
            return model(**kw).logits[0].double()

    diff_peft = diff_merged = diff_pm = 0.0
    agree = tok_mismatch = 0
    for e in examples:
        ref = torch.tensor(e["logits"], dtype=torch.float64)
        lp = logits_of(peft_model, e)
        diff_peft = max(diff_peft, (lp - ref).abs().max().item())
        ok_e = lp.argmax() == ref.argmax()
        if merged is not None:
            lm = logits_of(merged, e)
            diff_merged = max(diff_merged, (lm - ref).abs().max().item())
            diff_pm = max(diff_pm, (lp - lm).abs().max().item())
            ok_e = ok_e and lm.argmax() == ref.argmax()
            if "text_a" in e:
                hf = tok(e["text_a"], e.get("text_b"), truncation=True, max_length=d["max_length"])["input_ids"]
                tok_mismatch += int(hf != e["input_ids"])
        agree += int(ok_e)
    scale = max(abs(x) for e in examples for x in e["logits"])
    print(f"\nmax |logit| (ladder)                 {scale:.6f}")
    print(f"max |ladder - transformers+PEFT|     {diff_peft:.3e}")
    if merged is not None:
        print(f"max |ladder - transformers (merged)| {diff_merged:.3e}")
        print(f"max |PEFT - merged|                  {diff_pm:.3e}")
    print(f"predicted class agrees on {agree}/{len(examples)}"
          + (f"; HF tokenizer (merged dir) differs from ladder's ids on {tok_mismatch}/{len(examples)}"
             if merged is not None else ""))
    ok = diff_peft <= tol and diff_merged <= tol and not adapter_bad and not problems
    if ok:
        print("OK")
    else:
        why = []
        if diff_peft > tol or diff_merged > tol:
            why.append(f"logit difference above {tol:g}")
        if missing_warned or missing:
            why.append("missing adapter keys")
        if unexpected:
            why.append("unexpected adapter keys")
        if wrong_shape or differs:
            why.append("adapter tensors not loaded as saved")
        if problems:
            why.append("merged directory loading problems")
        print("FAIL: " + "; ".join(why))
    return ok


# ---------------------------------------------------------------- --self-test (no ladder needed)
def write_dump_from_torch(model, tok, out_path, n, max_length, data_dir, num_labels, batch_size=32):
    """A dump-logits JSON the way `ladder eval --dump-logits` writes it: first n dev rows, padded batches."""
    import torch
    with open(os.path.join(data_dir, "dev.tsv"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    header = lines[0].lstrip("\ufeff").split("\t")
    ca, cl = header.index("sentence"), header.index("label")
    rows = [ln.split("\t") for ln in lines[1:] if ln][:n]
    sents, labels = [r[ca] for r in rows], [int(r[cl]) for r in rows]
    enc = tok(sents, truncation=True, max_length=max_length, return_token_type_ids=True, return_attention_mask=False)
    ex = []
    model.eval()
    for s in range(0, len(sents), batch_size):
        idx = list(range(s, min(len(sents), s + batch_size)))
        T = max(len(enc["input_ids"][i]) for i in idx)
        ids = torch.zeros(len(idx), T, dtype=torch.long)
        tt = torch.zeros_like(ids)
        am = torch.zeros_like(ids)
        for r, i in enumerate(idx):
            L = len(enc["input_ids"][i])
            ids[r, :L] = torch.tensor(enc["input_ids"][i])
            tt[r, :L] = torch.tensor(enc["token_type_ids"][i])
            am[r, :L] = 1
        with torch.no_grad():
            lg = model(input_ids=ids, token_type_ids=tt, attention_mask=am).logits.float()
        for r, i in enumerate(idx):
            ex.append({"index": i, "text_a": sents[i], "label": labels[i], "input_ids": enc["input_ids"][i],
                       "token_type_ids": enc["token_type_ids"][i], "logits": lg[r].tolist()})
    j = {"checkpoint": "(self-test: PyTorch IA3 PeftModel)", "step": 0, "task": "sst2", "method": "ia3",
         "model_dir": "", "max_length": max_length, "num_labels": num_labels, "examples": ex}
    with open(out_path, "w") as f:
        json.dump(j, f, indent=1)


def self_test(a):
    import torch
    from peft import IA3Config, TaskType, get_peft_model
    from peft.tuners.ia3 import IA3Layer
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    base_dir = a.base or default_minilm_dir()
    work = a.workdir or tempfile.mkdtemp(prefix="ladder_peft_selftest_")
    os.makedirs(work, exist_ok=True)
    good, dump = os.path.join(work, "peft_ia3"), os.path.join(work, "torch_logits.json")

    model = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=2)
    cfg = IA3Config(task_type=TaskType.SEQ_CLS, target_modules=IA3_TARGETS, feedforward_modules=IA3_FEEDFORWARD)
    pm = get_peft_model(model, cfg)
    with torch.no_grad():
        for m in pm.modules():
            if isinstance(m, IA3Layer):
                v = m.ia3_l["default"]
                v.copy_(1.0 + 0.3 * torch.randn_like(v))  # random, not 1
        head = pm.base_model.model.classifier.modules_to_save["default"]
        head.weight.normal_(0.0, 0.2)
        head.bias.normal_(0.0, 0.2)
    pm.save_pretrained(good)
    tok = AutoTokenizer.from_pretrained(base_dir)
    write_dump_from_torch(pm, tok, dump, a.examples, 64, a.data, 2)
    print(f"self-test: adapter {good}, dump {dump}")
    for k, v in load_file(os.path.join(good, "adapter_model.safetensors")).items():
        print(f"  saved {k} {tuple(v.shape)} {v.dtype}")
    print("  adapter_config.json keys: " + ", ".join(sorted(json.load(open(os.path.join(good, "adapter_config.json"))))))

    results = {}
    print("\n==== self-test 1: the saved adapter (expect OK, difference ~0)")
    results["good"] = compare(dump, good, None, base_dir, a.tol, a.threads)

    print("\n==== self-test 2: one ia3_l vector changed by 1e-2 (expect FAIL on logits)")
    bad = os.path.join(work, "peft_ia3_perturbed")
    shutil.copytree(good, bad, dirs_exist_ok=True)
    t = load_file(os.path.join(bad, "adapter_model.safetensors"))
    k = "base_model.model.bert.encoder.layer.3.output.dense.ia3_l"
    t[k] = t[k] + 1e-2
    save_file(t, os.path.join(bad, "adapter_model.safetensors"), metadata={"format": "pt"})
    results["perturbed"] = compare(dump, bad, None, base_dir, a.tol, a.threads)

    print("\n==== self-test 3: one ia3_l vector left out of the file (expect FAIL on missing keys)")
    miss = os.path.join(work, "peft_ia3_missing")
    shutil.copytree(good, miss, dirs_exist_ok=True)
    t = load_file(os.path.join(miss, "adapter_model.safetensors"))
    del t["base_model.model.bert.encoder.layer.0.attention.self.value.ia3_l"]
    save_file(t, os.path.join(miss, "adapter_model.safetensors"), metadata={"format": "pt"})
    results["missing"] = compare(dump, miss, None, base_dir, a.tol, a.threads)

    passed = results["good"] and not results["perturbed"] and not results["missing"]
    print(f"\nself-test: good {'OK' if results['good'] else 'FAIL'}, perturbed "
          f"{'FAIL (as expected)' if not results['perturbed'] else 'OK (WRONG)'}, missing "
          f"{'FAIL (as expected)' if not results['missing'] else 'OK (WRONG)'} -> "
          + ("SELF-TEST PASSED" if passed else "SELF-TEST FAILED"))
    return passed


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint file or run directory (a LoRA or IA3 run); runs ladder")
    src.add_argument("--dump", help="an existing `ladder eval --dump-logits` JSON (with --peft-dir); ladder is not run")
    src.add_argument("--self-test", action="store_true", help="check this script on a PyTorch-made IA3 adapter")
    ap.add_argument("--peft-dir", default=None, help="with --dump: the `ladder export --format peft` directory")
    ap.add_argument("--merged-dir", default=None, help="with --dump: the `ladder export --format merged` directory")
    ap.add_argument("--no-merged", action="store_true", help="with --checkpoint: do not export / check merged")
    ap.add_argument("--base", default=None, help="base model dir (default: adapter_config's base_model_name_or_path)")
    ap.add_argument("--data", default="/work/shared/data/glue/SST-2", help="--self-test: SST-2 dir (dev.tsv)")
    ap.add_argument("--ladder", default=None, help="the ladder binary (default: build-export/ladder, then build/ladder)")
    ap.add_argument("-n", "--examples", type=int, default=16, help="dev examples to compare")
    ap.add_argument("--workdir", default=None, help="where to write the dump and the exports (default: a temp dir)")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("extra", nargs="*", help="--section.key value overrides passed to ladder eval/export")
    a = ap.parse_args()

    if a.self_test:
        return 0 if self_test(a) else 1
    if a.dump:
        if not a.peft_dir:
            sys.exit("--dump needs --peft-dir")
        return 0 if compare(a.dump, a.peft_dir, a.merged_dir, a.base, a.tol, a.threads) else 1

    ladder = a.ladder
    if ladder is None:
        for c in ("build-export/ladder", "build/ladder"):
            if os.path.exists(os.path.join(root, c)):
                ladder = os.path.join(root, c)
                break
    if ladder is None or not os.path.exists(ladder):
        sys.exit("no ladder binary found; pass --ladder")
    work = a.workdir or tempfile.mkdtemp(prefix="ladder_peft_check_")
    os.makedirs(work, exist_ok=True)
    dump = os.path.join(work, "ladder_logits.json")
    peft_dir = os.path.join(work, "peft")
    merged_dir = None if a.no_merged else os.path.join(work, "merged")
    run([ladder, "eval", "--checkpoint", a.checkpoint, "--max-eval-examples", str(a.examples), "--dump-logits", dump,
         "--threads", str(a.threads)] + a.extra)
    run([ladder, "export", "--checkpoint", a.checkpoint, "--format", "peft", "--output", peft_dir, "--overwrite"] + a.extra)
    if merged_dir:
        run([ladder, "export", "--checkpoint", a.checkpoint, "--format", "merged", "--output", merged_dir,
             "--overwrite"] + a.extra)
    return 0 if compare(dump, peft_dir, merged_dir, a.base, a.tol, a.threads) else 1


if __name__ == "__main__":
    sys.exit(main())
