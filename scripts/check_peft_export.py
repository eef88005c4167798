#!/usr/bin/env python3
"""Dev check (not run by CI): a ladder LoRA checkpoint, exported with `ladder export`, gives the same logits
in Hugging Face transformers + PEFT (base model + adapter) and in transformers alone (merged directory) as in
ladder itself.

    scripts/check_peft_export.py --checkpoint /tmp/exp_run [--ladder build-export/ladder] [-n 16]

Steps: `ladder eval --dump-logits` writes the first N dev examples' token ids and ladder's logits;
`ladder export --format peft` and `--format merged` write the two directories; this script feeds the very
same token ids to
  1. AutoModelForSequenceClassification.from_pretrained(base) + PeftModel.from_pretrained(model, peft_dir)
  2. AutoModelForSequenceClassification.from_pretrained(merged_dir)
and prints the max |logit difference| against ladder for each (and between the two), checks that every
adapter tensor landed in the PEFT model, that the merged directory loads with no missing or unexpected
weights, and that the merged directory's tokenizer gives ladder's ids. Exits 1 when a difference exceeds
--tol (default 1e-4).

Needs: torch, transformers, safetensors, peft (pip install peft).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def run(cmd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True, help="checkpoint file or run directory (a LoRA run)")
    ap.add_argument("--ladder", default=None, help="the ladder binary (default: build-export/ladder, then build/ladder)")
    ap.add_argument("-n", "--examples", type=int, default=16, help="dev examples to compare")
    ap.add_argument("--workdir", default=None, help="where to write the dump and the exports (default: a temp dir)")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("extra", nargs="*", help="--section.key value overrides passed to ladder eval/export")
    a = ap.parse_args()

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
    merged_dir = os.path.join(work, "merged")
    run([ladder, "eval", "--checkpoint", a.checkpoint, "--max-eval-examples", str(a.examples), "--dump-logits", dump,
         "--threads", str(a.threads)] + a.extra)
    run([ladder, "export", "--checkpoint", a.checkpoint, "--format", "peft", "--output", peft_dir, "--overwrite"] + a.extra)
    run([ladder, "export", "--checkpoint", a.checkpoint, "--format", "merged", "--output", merged_dir, "--overwrite"] + a.extra)

    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(a.threads)
    d = json.load(open(dump))
    examples = d["examples"]
    num_labels = d["num_labels"]
    base_dir = json.load(open(os.path.join(peft_dir, "adapter_config.json")))["base_model_name_or_path"]
    print(f"\n{len(examples)} {d['task']} dev examples, checkpoint {d['checkpoint']} (step {d['step']}, {d['method']})")
    print(f"base {base_dir}")

    # 1. base + PEFT adapter
    base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=num_labels)
    peft_model = PeftModel.from_pretrained(base, peft_dir).eval()
    sd = peft_model.state_dict()
    adapter = load_file(os.path.join(peft_dir, "adapter_model.safetensors"))
    not_loaded = []
    for k, v in adapter.items():
        if ".lora_A." in k or ".lora_B." in k:
            mk = k.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
        else:  # modules_to_save: base_model.model.classifier.weight -> ...classifier.modules_to_save.default.weight
            head, leaf = k.rsplit(".", 1)
            mk = f"{head}.modules_to_save.default.{leaf}"
        if mk not in sd or not torch.equal(sd[mk].float(), v.float()):
            not_loaded.append(k)
    print(f"PEFT adapter: {len(adapter)} tensors, {len(adapter) - len(not_loaded)} found in the PeftModel with equal values"
          + (f"; NOT loaded: {not_loaded}" if not_loaded else ""))

    # 2. merged directory, transformers alone
    merged, info = AutoModelForSequenceClassification.from_pretrained(merged_dir, output_loading_info=True)
    merged.eval()
    problems = {k: v for k, v in info.items() if v}
    print(f"merged: {type(merged).__name__}, num_labels {merged.config.num_labels}, id2label {merged.config.id2label}; "
          + (f"loading problems: {problems}" if problems else "no missing or unexpected weights"))
    tok = AutoTokenizer.from_pretrained(merged_dir)

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
        lp, lm = logits_of(peft_model, e), logits_of(merged, e)
        diff_peft = max(diff_peft, (lp - ref).abs().max().item())
        diff_merged = max(diff_merged, (lm - ref).abs().max().item())
        diff_pm = max(diff_pm, (lp - lm).abs().max().item())
        agree += int(lp.argmax() == ref.argmax() and lm.argmax() == ref.argmax())
        if "text_a" in e:
            hf = tok(e["text_a"], e.get("text_b"), truncation=True, max_length=d["max_length"])["input_ids"]
            tok_mismatch += int(hf != e["input_ids"])
    scale = max(abs(x) for e in examples for x in e["logits"])
    print(f"\nmax |logit| (ladder)                 {scale:.6f}")
    print(f"max |ladder - transformers+PEFT|     {diff_peft:.3e}")
    print(f"max |ladder - transformers (merged)| {diff_merged:.3e}")
    print(f"max |PEFT - merged|                  {diff_pm:.3e}")
    print(f"predicted class agrees on {agree}/{len(examples)}; HF tokenizer (merged dir) differs from ladder's ids on "
          f"{tok_mismatch}/{len(examples)}")
    ok = diff_peft <= a.tol and diff_merged <= a.tol and not not_loaded and not problems
    print("OK" if ok else f"FAIL (tolerance {a.tol})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
