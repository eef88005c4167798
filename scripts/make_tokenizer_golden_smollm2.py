#!/usr/bin/env python3
"""Golden ids for ladder's GGUF tokenizer and chat formats (tests/data/test_gguf_tokenizer.cpp,
tests/data/test_chat_format.cpp): tests/golden/smollm2_tokenizer.json.

Run from the repository root (shared data beside the checkout, the SmolLM2 GGUF fetched by
scripts/fetch_smollm2.sh):
    /root/ladder-venv/bin/python scripts/make_tokenizer_golden_smollm2.py \
        [--gguf ~/.cache/ladder/models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf] [--shared ../shared]
The output is deterministic; CI never runs this, the C++ tests read the JSON.

The reference is the tokenizer of HuggingFaceTB/SmolLM2-135M-Instruct as its tokenizer.json defines it,
rebuilt here with HF `tokenizers` from the GGUF's vocabulary and merges (llama.cpp copies both verbatim):
  * model: BPE, unk_token null (a character outside the vocab is dropped: the vocab lacks the symbols of
    bytes 4, 6, 19, 20, 22, 29, 192, 193, 241, 242, 245..255), no byte fallback, merges by rank;
  * pre_tokenizer: Sequence[Digits(individual_digits=true), ByteLevel(add_prefix_space=false,
    use_regex=true)] (llama.cpp's "smollm" pre-type: \\p{N} split off first, then GPT-2's regex);
  * added_tokens: the 17 tokens the GGUF marks control (token_type 3), ids 0..16, matched verbatim;
  * decoder: ByteLevel.
transformers' own GGUF loader (AutoTokenizer.from_pretrained(dir, gguf_file=...)) is compared against it
and every line where the two disagree is listed under "gguf_loader_differs" (information, not a test).

Chat: SmolLM2's template is the GGUF's tokenizer.chat_template rendered by transformers'
apply_chat_template; Gemma 3's is google/gemma-3-270m-it's official template (GEMMA3_TEMPLATE below,
with bos_token "<bos>"), rendered by transformers' render_jinja_template, the function apply_chat_template
calls.
"""
import argparse
import json
import os
import struct

import gguf
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer
from transformers.utils.chat_template_utils import render_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_GGUF = os.path.expanduser("~/.cache/ladder/models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")

GEMMA3_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}
"""

TRICKY = [
    "12345",
    "3.14",
    "pi is 3.14159 and e is 2.71828",
    "in 2024, 1,000,000 people paid $12.50 (10%)",
    "a1b2c3 x99y 007",
    "Arabic-Indic ١٢٣ and fractions ½ ⅓ and roman Ⅻ and superscript x² H₂O",
    "multiple     spaces    between",
    "   leading and trailing spaces   ",
    " 42 is the answer",
    "space before digits  123  and after",
    "line one\nline two\n\nline four\n",
    "windows\r\nline\r\nends",
    "tabs\tand\t\tmore\ttabs",
    "   \t  mixed \t whitespace  \n",
    "emoji 🙂👍🏽 family 👨‍👩‍👧 flag 🏳️‍🌈",
    "中文分词测试 and 日本語のテキスト and 한국어",
    "café naïve Ångström résumé Crème Brûlée",
    "It's they've we'll I'm you'd don't can't",
    "SHOUTING 'S 'VE 'LL 'RE 'D 'M 'T",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more text<|im_end|>",
    "<repo_name>ladder<file_sep>main.cpp<filename>x.py<gh_stars>100",
    "<|im_start|<|im_end|>>",
    "<jupyter_code>print(1+2)<jupyter_output>3<empty_output>",
    "control bytes \x04 and \x06 and \x13\x14\x16\x1d dropped",
    "def foo(x):\n    return x ** 2  # square\n",
    "URL https://example.com/path?q=1&b=2#frag and email a.b@c.org",
    "non\u00a0breaking\u00a0space and ideographic\u3000space",
    "",
    " ",
    "\n\n\n",
]

# (name, messages); each rendered with add_generation_prompt false and true.
CONVERSATIONS = [
    ("one_turn", [{"role": "user", "content": "What is the capital of France?"}]),
    ("one_turn_system", [{"role": "system", "content": "You are a terse assistant."},
                         {"role": "user", "content": "What is the capital of France?"}]),
    ("two_turns", [{"role": "user", "content": "Hi there!"},
                   {"role": "assistant", "content": "Hello! How can I help you today?"},
                   {"role": "user", "content": "Tell me a joke about 3 cats.\nKeep it short."}]),
    ("two_turns_system", [{"role": "system", "content": "Answer in French."},
                          {"role": "user", "content": "Good morning"},
                          {"role": "assistant", "content": "Bonjour !"},
                          {"role": "user", "content": "  How are you?  "}]),
]


def read_gguf(path):
    r = gguf.GGUFReader(path)
    f = {k: v.contents() for k, v in r.fields.items() if k.startswith("tokenizer.") or k.startswith("general.")}
    return f


def reference_tokenizer(meta):
    tokens, merges, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.merges"], meta["tokenizer.ggml.token_type"]
    vocab = {t: i for i, t in enumerate(tokens)}
    bpe = models.BPE(vocab, [tuple(m.split(" ")) for m in merges], unk_token=None, fuse_unk=False, byte_fallback=False)
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, normalized=False, special=True) for t, ty in zip(tokens, types) if ty == 3]
    tok.add_special_tokens(specials)
    assert all(tok.token_to_id(s.content) == vocab[s.content] for s in specials)
    return tok, [s.content for s in specials]


def read_rows(path, header):
    with open(path, encoding="utf-8", newline="") as f:
        rows = [line.rstrip("\r\n").split("\t") for line in f]
    return rows[1:] if header else rows


def fnv1a64(ids):
    """FNV-1a (64-bit) of the ids as little-endian int32 bytes: the C++ test hashes its ids the same way."""
    h = 0xCBF29CE484222325
    for b in struct.pack(f"<{len(ids)}i", *ids):
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default=os.environ.get("LADDER_SMOLLM2_GGUF", DEFAULT_GGUF))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "golden", "smollm2_tokenizer.json"))
    args = ap.parse_args()

    meta = read_gguf(args.gguf)
    ref, specials = reference_tokenizer(meta)
    loader = AutoTokenizer.from_pretrained(os.path.dirname(args.gguf), gguf_file=os.path.basename(args.gguf))

    with open(os.path.join(ROOT, "tests", "golden", "tokenizer_bpe.jsonl"), encoding="utf-8") as f:
        fixture = [json.loads(line)["text"] for line in f]
    sst = [r[0] for r in read_rows(os.path.join(args.shared, "data", "glue", "SST-2", "dev.tsv"), True)][::29][:30]
    with open(os.path.join(args.shared, "data", "text", "wikitext-2-raw", "wiki.test.raw"), encoding="utf-8",
              newline="") as f:
        wiki = [line for line in f.read().splitlines(keepends=True) if line.strip()][:20]

    lines, differs = [], []
    for source, texts in (("tokenizer_bpe.jsonl", fixture), ("sst2_dev", sst), ("wikitext2_test", wiki),
                          ("tricky", TRICKY)):
        for t in texts:
            ids = ref.encode(t, add_special_tokens=False).ids
            decoded = ref.decode(ids, skip_special_tokens=False)
            lines.append({"source": source, "text": t, "ids": ids, "decoded": decoded})
            other = loader.encode(t, add_special_tokens=False)
            if other != ids:
                differs.append({"text": t, "original": ids, "gguf_loader": other})

    with open(os.path.join(args.shared, "data", "text", "wikitext-2-raw", "wiki.test.raw"), encoding="utf-8",
              newline="") as f:
        whole = ref.encode(f.read(), add_special_tokens=False).ids
    wiki_full = {"tokens": len(whole), "fnv1a64": f"{fnv1a64(whole):016x}"}

    smol_template = meta["tokenizer.chat_template"]
    assert loader.chat_template == smol_template
    chats = []
    for name, messages in CONVERSATIONS:
        for gen in (False, True):
            text = loader.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
            gemma = render_jinja_template(conversations=[messages], chat_template=GEMMA3_TEMPLATE,
                                          add_generation_prompt=gen, bos_token="<bos>", eos_token="<eos>")[0][0]
            chats.append({"name": name, "messages": messages, "add_generation_prompt": gen,
                          "smollm2_text": text, "smollm2_ids": ref.encode(text, add_special_tokens=False).ids,
                          "gemma3_text": gemma})

    out = {
        "gguf": os.path.basename(args.gguf),
        "vocab_size": ref.get_vocab_size(),
        "specials": specials,
        "bos_id": int(meta["tokenizer.ggml.bos_token_id"]),
        "eos_id": int(meta["tokenizer.ggml.eos_token_id"]),
        "pad_id": int(meta["tokenizer.ggml.padding_token_id"]),
        "add_bos": bool(meta["tokenizer.ggml.add_bos_token"]),
        "smollm2_chat_template": smol_template,
        "gemma3_chat_template": GEMMA3_TEMPLATE,
        "wikitext2_test_whole_file": wiki_full,
        "lines": lines,
        "chats": chats,
        "gguf_loader_differs": differs,
    }
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        json.dump(out, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wiki.test.raw as one text: {wiki_full}")
    print(f"{args.out}: {len(lines)} lines, {len(chats)} chats, {len(differs)} lines where transformers' GGUF "
          f"loader differs, {os.path.getsize(args.out)} bytes")
    for d in differs[:8]:
        print("  differs:", json.dumps(d["text"], ensure_ascii=False)[:80], d["original"][:12], d["gguf_loader"][:12])


if __name__ == "__main__":
    main()
