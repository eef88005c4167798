#!/usr/bin/env python3
"""Dev script (not run by CI): writes tests/golden/gemma3_tokenizer.json, Hugging Face transformers' Gemma 3
tokenizer built from the GGUF file itself, for tests/data/test_sentencepiece_tokenizer.cpp.

    /root/ladder-venv/bin/python scripts/make_tokenizer_golden_gemma3.py gemma-3-270m-q4_k_m.gguf \
        [--shared ../shared] [--out tests/golden/gemma3_tokenizer.json]

Reference: AutoTokenizer.from_pretrained(dir, gguf_file=file) (transformers 5.25, tokenizers 0.23): a
GemmaTokenizer (BPE, byte_fallback, " " -> U+2581, no dummy prefix) whose merges transformers rebuilds from
the vocabulary, every CONTROL token added as special and every USER_DEFINED one as a plain added token.
Lines: the texts of tests/golden/tokenizer_{bpe,wordpiece}.jsonl, 15 SST-2 dev sentences, 15 wikitext-2
test lines (raw, "\r" kept), and tricky cases. Per line: text, ids (encode without special tokens) and
decoded (decode(ids), special tokens kept). Plus the chat template rendered for a 2-turn conversation.
The GGUF carries no tokenizer.chat_template (it is the base model), so the template is Gemma 3's own from
google/gemma-3-*-it tokenizer_config.json, set on the tokenizer before apply_chat_template.
Needs: transformers, tokenizers, gguf, numpy.
"""
import argparse
import hashlib
import json
import os

import tokenizers
import transformers
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Gemma 3's chat template, verbatim from google/gemma-3-*-it tokenizer_config.json ("chat_template").
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}\n    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}\n    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n{%- else -%}\n    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n{%- endif -%}\n{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n    {%- if (message['role'] == 'assistant') -%}\n        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n        {%- set role = message['role'] -%}\n    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n        {%- endfor -%}\n    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n    {%- endif -%}\n    {{ '<end_of_turn>\\n' }}\n"
    "{%- endfor -%}\n{%- if add_generation_prompt -%}\n    {{'<start_of_turn>model\\n'}}\n{%- endif -%}\n"
)

CHAT = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What is the capital of France?  "},
    {"role": "assistant", "content": "Paris. It has been the capital since 987."},
    {"role": "user", "content": "And of Japan? Answer in 日本語, please 🙂"},
]

TRICKY = [
    "Hello world", " Hello world", "Hello world ", "  two leading", "two trailing  ", "a  b   c    d",
    " " * 1, " " * 2, " " * 7, " " * 40, "\t", "\t\tindented\ttabs\t", "\n", "line one\nline two\n\n\nfour",
    "\r\n windows\r\nline ends\r\n", " \n \t \n", "mixed \t\n whitespace \n\t ",
    "0123456789 00 007 3.14159 -42 1e10 12,345,678", "٣٤ ١٢ ½ ² ⅻ", "IPv4 192.168.0.1:8080",
    "emoji 😀🤗🙂👍🏽 👨‍👩‍👧 🏳️‍🌈 and ❤️", "中文分词测试 日本語のテキストです。 한국어 텍스트",
    "café naïve Ångström résumé Crème Brûlée ÀÉÎÕÜ ß İstanbul", "Ελληνικά Русский עברית مرحبا हिन्दी ภาษาไทย",
    "<bos>hello<eos>", "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "<pad><unk><mask>[multimodal]<start_of_image><end_of_image>", "<unused0><unused6241> <unused99>x",
    "<start_of_turn <end_of_turn <bos", "<div>html</div><span>x</span>", "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n",
    "<0x41> <0x0A> literal byte-token text", "ancient 𓀀𓀁 hieroglyphs, private use \ue000\ue001, 𝄞 clef",
    "rare: \U0001FB00 \u0378 \U000E0001 \ufeff \u200b\u200d \u00ad", "control\x00chars\x07\x1b[0m\x7f",
    "U+2581 itself: ▁ and ▁▁x ▁hello", "tabs\tand spaces  \t  mixed", "a" * 300, "ab" * 200 + " " + "xyz" * 100,
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "It's they've we'll I'm you'd don't can't O'Neil's", "URL https://example.com/a?b=1&c=2#d mail a.b@c.org",
    "def f(x):\n    return x ** 2  # square\n", "    four-space indent\n        eight",
    "", "x", "\u2581", "  \u2581 ",
]


def texts_of(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            j = json.loads(line)
            for k in ("text", "text_pair"):
                if k in j and j[k] is not None:
                    out.append(j[k])
    return out


def shared_lines(shared):
    with open(os.path.join(shared, "data", "glue", "SST-2", "dev.tsv"), encoding="utf-8", newline="") as f:
        sst = [line.rstrip("\r\n").split("\t")[0] for line in f][1:]
    with open(os.path.join(shared, "data", "text", "wikitext-2-raw", "wiki.test.raw"), encoding="utf-8",
              newline="") as f:
        wiki = f.read().split("\n")  # "\r" stays: the file has CRLF ends
    wiki_nonblank = [w for w in wiki if w.strip()]
    return sst[7::53][:15] + wiki_nonblank[3::97][:15]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "golden", "gemma3_tokenizer.json"))
    args = ap.parse_args()
    gguf = os.path.abspath(args.gguf)
    tok = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
    assert tok.chat_template is None, "the file now carries a chat template: use it instead of Gemma 3's"

    # What the C++ tokenizer assumes about the HF pipeline: every added token matched on the raw text.
    backend = json.loads(tok.backend_tokenizer.to_str())
    for a in backend["added_tokens"]:
        assert not a["normalized"] and not a["lstrip"] and not a["rstrip"] and not a["single_word"], a

    seen, texts = set(), []
    golden = os.path.join(ROOT, "tests", "golden")
    for t in (texts_of(os.path.join(golden, "tokenizer_bpe.jsonl")) + texts_of(os.path.join(golden, "tokenizer_wordpiece.jsonl"))
              + shared_lines(args.shared) + TRICKY):
        if t not in seen:
            seen.add(t)
            texts.append(t)
    lines = []
    for t in texts:
        ids = tok.encode(t, add_special_tokens=False)
        lines.append({"text": t, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})

    tok.chat_template = GEMMA3_CHAT_TEMPLATE
    chat_text = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    chat_ids = tok.apply_chat_template(CHAT, tokenize=True, add_generation_prompt=True)
    if isinstance(chat_ids, dict) or hasattr(chat_ids, "keys"):
        chat_ids = chat_ids["input_ids"]
    chat_ids = list(chat_ids)
    assert chat_ids == tok.encode(chat_text, add_special_tokens=False), "chat ids differ from encode(text)"

    out = {
        "source": {"gguf_sha256": sha256(gguf), "transformers": transformers.__version__,
                   "tokenizers": tokenizers.__version__},
        "vocab_size": len(tok),
        "bos_id": tok.bos_token_id, "eos_id": tok.eos_token_id, "pad_id": tok.pad_token_id,
        "add_bos": bool(tok.add_bos_token),
        "with_bos": {"text": "Hello world", "ids": tok.encode("Hello world")},
        "chat": {"messages": CHAT, "add_generation_prompt": True, "text": chat_text, "ids": chat_ids,
                 "decoded": tok.decode(chat_ids, skip_special_tokens=False)},
        "lines": lines,
    }
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
    nround = sum(l["decoded"] == l["text"] for l in lines)
    print(f"{args.out}: {len(lines)} lines ({nround} decode to their text), chat {len(chat_ids)} ids, "
          f"{os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
