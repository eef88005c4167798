#!/usr/bin/env python3
"""Golden fixtures for ladder's C++ tokenizers (tests/data/test_{wordpiece,bpe}_tokenizer.cpp).

Run from the repository root, with ../shared beside the checkout:
    /work/venv/bin/python tests/golden/make_tokenizer_fixtures.py [--shared ../shared]
It rewrites tests/golden/tokenizer_wordpiece.jsonl and tests/golden/tokenizer_bpe.jsonl. The output is
deterministic (fixed sentence picks, no randomness); CI never runs this, the C++ tests read the JSONL.

References (Hugging Face `tokenizers`, the Rust library behind every *TokenizerFast):
  * WordPiece: BertWordPieceTokenizer(vocab.txt, lowercase=True), the same pipeline BertTokenizerFast
    builds for bert-base-uncased (BertNormalizer, BertPreTokenizer, WordPiece, [CLS] a [SEP] b [SEP]),
    truncation "longest_first". transformers 5's BertTokenizer(vocab_file=...) ignores the file, so the
    pipeline is built directly.
  * BPE: Tokenizer.from_file(gpt2/tokenizer.json), checked equal to a BPE built from vocab.json and
    merges.txt with GPT-2's ByteLevel pre-tokenizer.
Lines: {"text", "ids"} (no special tokens) or, for WordPiece encode(), {"text", "text_pair"?, "max_len",
"input_ids", "token_type_ids"}.
"""
import argparse
import json
import os

from tokenizers import BertWordPieceTokenizer, Tokenizer, decoders, models, pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))

HARD_CASES = [
    "café naïve Ångström résumé",
    "Crème Brûlée à la mode, Ünïcödé ÀÉÎÕÜ",
    "中文分词测试",
    "日本語のテキストです。",
    "한국어 텍스트",
    "mixed 中文 and English混合text",
    "ひらがな カタカナ ｶﾀｶﾅ",
    "𠀀𠀁 ext B, 𫠭𫠆 ext E (not split) and compatibility 豈 ideographs",
    "👍🏽 great job 👨‍👩‍👧 family",
    "emoji🙂attached🎉 and 😀😃😄😁😆😅😂🤣",
    "🏳️‍🌈 flag with ZWJ and VS16, space before emoji 👍",
    "tabs\tand\tnewlines\nhere\r\nok",
    "non\u00a0breaking\u00a0space",
    "ideographic\u3000space",
    "zero\u200bwidth\u200bspace",
    "   leading and trailing spaces   ",
    "multiple     spaces    between",
    "   \t  mixed \t whitespace  \n",
    "trailing space before newline \nnext",
    "\u1680ogham space\u2007figure\u202fnarrow\u205fmath",
    "\x0b vertical tab \x0c form feed \x1c file sep \x85 NEL",
    "line\u2028separator\u2029para",
    "control\x00chars\x07here\x1b[0m\x7f",
    "replacement \ufffd char",
    "soft\u00adhyphen and BOM\ufeffinside and \u0600 arabic sign",
    "unassigned \u0378 and \U000E0001 tag and private \ue000 use",
    "a\u0300\u0301b combining and x\U0001D165y musical",
    "numbers 3.14159, 1,000,000 and $12.50 (approx. 10%)",
    "phone: +1-800-555-0199; date 2024/01/31 at 10:30pm",
    "tokenization of 1234567890 and ١٢٣ arabic digits and ½ ⅓ roman Ⅻ",
    "It's they've we'll I'm you'd don't can't",
    "SHOUTING 'S 'VE 'LL 'RE 'D 'M 'T",
    "'s at start and ''s double and rock 'n' roll, ma'am",
    "Mr. O'Neil's dog",
    "a" * 150,
    "supercalifragilisticexpialidocious" * 3,
    "b" * 100,
    "pneumonoultramicroscopicsilicovolcanoconiosis" + "x" * 55,
    "Ελληνικά και Русский текст",
    "עברית and مَرْحَبًا بالعالم",
    "हिन्दी भाषा and ภาษาไทย",
    "Tiếng Việt có dấu",
    "ﬁ ligature and ＦＵＬＬＷＩＤＴＨ ａｂｃ",
    "İstanbul ǅemal ß ẞ Σίσυφος ǈ titlecase Ǆ",
    "math ∑ ∫ ≤ ≥ → ∞ ± and superscript x² H₂O",
    "quotes “smart” ‘single’ «guillemets» — em-dash … ellipsis",
    "hello [MASK] world [SEP] [mask] [UNK]x[CLS]",
    "<|endoftext|> between <|endoftext|>docs<|endoftext|>",
    "<|endoftext",
    "",
    " ",
    "\n\n\n",
    "URL https://example.com/path?q=1&b=2#frag and email a.b@c.org",
    "C++ and C# and F#; x+=1; y<=2 && z!=3 ~tilde `tick` ^caret |pipe|",
    "hyphen-ated well-known state-of-the-art",
    "under_score snake_case CamelCaseWord",
    "The   quick\tbrown\n\nfox   ",
    # HF's BERT uses Unicode 8.0 categories: later punctuation, format chars and marks are plain letters.
    "newer punctuation a\u2e4fb a\u2e4bb and changed ones c\u166dd e\U000111c9f",
    "format chars a\u2066b\u2069c a\U00013430b and marks a\u1734b a\ua9bdb a\u1885b",
    " word " * 40,
]

PAIR_CASES = [  # (a, b, max_len): ties, one side short, both long, empty sides, minimum length
    ("a b c d e", "f g h i j", 8),
    ("a b c", "d e f g h i", 8),
    ("a b c d e f", "g h i", 8),
    ("a b c d e f g h i j k l", "m n", 10),
    ("m n", "a b c d e f g h i j k l", 10),
    ("a b c d e f g h i j k l", "m n o p q r s t u v w x y", 9),
    ("a b c d e f g h i j k l", "m n o p q r s t u v w x y", 10),
    ("", "a b c d e f g h", 6),
    ("a b c d e f g h", "", 6),
    ("a b c", "d e f", 3),
    ("a b c", "d e f", 4),
    ("café naïve", "中文 日本語", 7),
    ("The quick brown fox jumps over the lazy dog.", "A quick brown dog outpaces a fast fox!", 16),
]


def read_rows(path, header):
    with open(path, encoding="utf-8", newline="") as f:
        rows = [line.rstrip("\r\n").split("\t") for line in f]
    return rows[1:] if header else rows


def glue_sentences(shared):
    g = os.path.join(shared, "data", "glue")
    sst_dev = [r[0] for r in read_rows(os.path.join(g, "SST-2", "dev.tsv"), True)]
    sst_train = [r[0] for r in read_rows(os.path.join(g, "SST-2", "train.tsv"), True)]
    cola_dev = [r[3] for r in read_rows(os.path.join(g, "CoLA", "dev.tsv"), False)]
    cola_train = [r[3] for r in read_rows(os.path.join(g, "CoLA", "train.tsv"), False)]
    stsb_dev = [(r[7], r[8]) for r in read_rows(os.path.join(g, "STS-B", "dev.tsv"), True)]
    stsb_train = [(r[7], r[8]) for r in read_rows(os.path.join(g, "STS-B", "train.tsv"), True)]
    singles = sst_dev[:200] + sst_train[::300] + cola_dev[::5] + cola_train[::100]
    singles += [a for a, _ in stsb_train[::97]]
    pairs = stsb_dev[::20] + stsb_train[::100]
    return singles, pairs


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{path}: {len(records)} lines, {os.path.getsize(path)} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "..", "shared"))
    args = ap.parse_args()
    tok_dir = os.path.join(args.shared, "data", "tokenizers")
    singles, pairs = glue_sentences(args.shared)
    texts = singles + HARD_CASES

    bert = BertWordPieceTokenizer(os.path.join(tok_dir, "bert-base-uncased", "vocab.txt"), lowercase=True)
    wp = [{"text": t, "ids": bert.encode(t, add_special_tokens=False).ids} for t in texts]
    lens = [16, 32, 128, 512]
    encode_cases = [(a, b, lens[i % 4]) for i, (a, b) in enumerate(pairs)] + PAIR_CASES
    encode_cases += [(t, None, 16) for t in singles[:40:4] + HARD_CASES[-3:]]
    for a, b, max_len in encode_cases:
        bert.enable_truncation(max_len, strategy="longest_first")
        e = bert.encode(a, b) if b is not None else bert.encode(a)
        rec = {"text": a, "max_len": max_len, "input_ids": e.ids, "token_type_ids": e.type_ids}
        if b is not None:
            rec["text_pair"] = b
        wp.append(rec)
    bert.no_truncation()
    write_jsonl(os.path.join(HERE, "tokenizer_wordpiece.jsonl"), wp)

    gpt2 = Tokenizer.from_file(os.path.join(tok_dir, "gpt2", "tokenizer.json"))
    check = Tokenizer(models.BPE.from_file(os.path.join(tok_dir, "gpt2", "vocab.json"),
                                           os.path.join(tok_dir, "gpt2", "merges.txt")))
    check.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    check.decoder = decoders.ByteLevel()
    check.add_special_tokens(["<|endoftext|>"])
    bpe_texts = texts + [b for _, b in pairs[:60]]
    bpe = []
    for t in bpe_texts:
        ids = gpt2.encode(t, add_special_tokens=False).ids
        assert ids == check.encode(t, add_special_tokens=False).ids, t
        assert gpt2.decode(ids, skip_special_tokens=False) == t, t
        bpe.append({"text": t, "ids": ids})
    write_jsonl(os.path.join(HERE, "tokenizer_bpe.jsonl"), bpe)


if __name__ == "__main__":
    main()
