// The tokenizer a GGUF describes (data/tokenizer/gguf_tokenizer.h) against Hugging Face: on the real
// SmolLM2-135M-Instruct file (LADDER_SMOLLM2_GGUF) every line of tests/golden/smollm2_tokenizer.json (made
// by scripts/make_tokenizer_golden_smollm2.py with HF `tokenizers` built as SmolLM2's tokenizer.json says)
// must match id for id and decode back; small GGUF files written here check the pre-tokenizer choice, the
// dropped bytes, the special tokens and that bad files are errors naming the file and key.
#include "data/tokenizer/gguf_tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/tokenizer/chat_format.h"
#include "data/tokenizer/unicode_text.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace ladder::data {
namespace {

// A GGUF v3 file with metadata only (no tensors).
class GgufWriter {
 public:
  void str(const std::string& key, const std::string& v) {
    key_(key, 8);
    put_str(v);
  }
  void u32(const std::string& key, uint32_t v) {
    key_(key, 4);
    put(v);
  }
  void flag(const std::string& key, bool v) {
    key_(key, 7);
    put<uint8_t>(v);
  }
  void strings(const std::string& key, const std::vector<std::string>& v) {
    key_(key, 9);
    put<uint32_t>(8);
    put<uint64_t>(v.size());
    for (const auto& s : v) put_str(s);
  }
  void ints(const std::string& key, const std::vector<int32_t>& v) {
    key_(key, 9);
    put<uint32_t>(5);
    put<uint64_t>(v.size());
    for (int32_t x : v) put(x);
  }
  std::string save(const std::string& path) const {
    std::string out = "GGUF";
    auto raw = [&](auto v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
    raw(uint32_t(3));
    raw(uint64_t(0));
    raw(uint64_t(n_));
    out += body_;
    std::ofstream(path, std::ios::binary).write(out.data(), std::streamsize(out.size()));
    return path;
  }

 private:
  template <class T>
  void put(T v) {
    body_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void put_str(const std::string& s) {
    put<uint64_t>(s.size());
    body_ += s;
  }
  void key_(const std::string& k, uint32_t type) {
    put_str(k);
    put(type);
    ++n_;
  }
  std::string body_;
  size_t n_ = 0;
};

// GPT-2's byte -> printable character map (bytes_to_unicode).
std::string byte_symbol(unsigned b) {
  const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  unsigned shifted = 0;
  for (unsigned c = 0; c < b; ++c)
    if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) ++shifted;
  std::string s;
  utf8_append(s, printable ? b : 256 + shifted);
  return s;
}

// Tokens: "<|x|>" (control), the 255 byte symbols except byte 4's, "Ġ1", "12". Merges: "Ġ 1", "1 2".
struct TinyVocab {
  std::vector<std::string> tokens{"<|x|>"};
  std::vector<int32_t> types{3};
  int32_t id(const std::string& t) const {
    for (size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i] == t) return int32_t(i);
    return -1;
  }
  TinyVocab() {
    for (unsigned b = 0; b < 256; ++b)
      if (b != 4) tokens.push_back(byte_symbol(b)), types.push_back(1);
    tokens.push_back(byte_symbol(' ') + "1");
    tokens.push_back("12");
    types.push_back(1);
    types.push_back(1);
  }
};

// Which keys to leave out or change.
struct TinyOptions {
  bool merges = true;
  std::string model = "gpt2";
  std::string pre = "smollm";  // "" = no key
  uint32_t eos = 0;
};

std::string write_tiny(const std::string& name, const TinyOptions& o = {}) {
  const TinyVocab v;
  GgufWriter w;
  w.str("general.architecture", "llama");
  w.str("tokenizer.ggml.model", o.model);
  if (!o.pre.empty()) w.str("tokenizer.ggml.pre", o.pre);
  w.strings("tokenizer.ggml.tokens", v.tokens);
  w.ints("tokenizer.ggml.token_type", v.types);
  if (o.merges) w.strings("tokenizer.ggml.merges", {byte_symbol(' ') + " 1", "1 2"});
  w.u32("tokenizer.ggml.eos_token_id", o.eos);
  w.flag("tokenizer.ggml.add_bos_token", false);
  return w.save(ladder::test::temp_dir("gguf_tokenizer") + "/" + name);
}

std::string error_of(const std::string& path) {
  try {
    make_gguf_tokenizer(core::GgufFile::open(path));
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

void expect_has(const std::string& s, const std::vector<std::string>& parts) {
  for (const auto& p : parts) EXPECT_NE(s.find(p), std::string::npos) << "'" << s << "' lacks '" << p << "'";
}

std::string show(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

TEST(GgufTokenizer, PreTokenizerFromTheFile) {
  const TinyVocab v;
  const int32_t sp = v.id(byte_symbol(' ')), one = v.id("1"), two = v.id("2"), sp1 = v.id(byte_symbol(' ') + "1");
  const int32_t a = v.id("a"), b = v.id("b"), twelve = v.id("12");
  // smollm: digits one by one, so neither "Ġ1" nor "12" can form.
  const auto smol = make_gguf_tokenizer(core::GgufFile::open(write_tiny("smollm.gguf")));
  EXPECT_EQ(smol->encode(" 12"), (std::vector<int32_t>{sp, one, two}));
  // gpt2 (also no key, and "default"): " 12" is one word; "Ġ 1" outranks "1 2".
  for (const std::string pre : {"gpt2", "", "default"}) {
    TinyOptions o;
    o.pre = pre;
    const auto gpt2 = make_gguf_tokenizer(core::GgufFile::open(write_tiny("gpt2" + pre + ".gguf", o)));
    EXPECT_EQ(gpt2->encode(" 12"), (std::vector<int32_t>{sp1, two})) << pre;
    EXPECT_EQ(gpt2->encode("12"), (std::vector<int32_t>{twelve})) << pre;
  }
  // The control token is matched verbatim; byte 4 has no symbol and is dropped (HF, unk_token null).
  EXPECT_EQ(smol->encode("a<|x|>b"), (std::vector<int32_t>{a, 0, b}));
  EXPECT_EQ(smol->encode("a\x04" "b"), (std::vector<int32_t>{a, b}));
  EXPECT_EQ(smol->decode({a, 0, b}), "a<|x|>b");
  EXPECT_EQ(smol->token_id("<|x|>"), 0);
  EXPECT_EQ(smol->token_id("nope"), -1);
  EXPECT_EQ(smol->eos_id(), 0);
  EXPECT_EQ(smol->bos_id(), -1);
  EXPECT_EQ(smol->pad_id(), -1);
  EXPECT_FALSE(smol->add_bos());
  EXPECT_THROW(smol->decode({int32_t(v.tokens.size())}), std::out_of_range);
}

TEST(GgufTokenizer, BadFilesNameTheFileAndKey) {
  TinyOptions no_merges;
  no_merges.merges = false;
  const std::string p1 = write_tiny("no_merges.gguf", no_merges);
  expect_has(error_of(p1), {p1, "tokenizer.ggml.merges"});

  TinyOptions bad_pre;
  bad_pre.pre = "qwen2";
  const std::string p2 = write_tiny("bad_pre.gguf", bad_pre);
  expect_has(error_of(p2), {p2, "tokenizer.ggml.pre", "'qwen2'", "smollm"});

  TinyOptions bad_model;
  bad_model.model = "rwkv";
  const std::string p3 = write_tiny("bad_model.gguf", bad_model);
  expect_has(error_of(p3), {p3, "tokenizer.ggml.model", "'rwkv'", "gpt2", "llama"});

  TinyOptions bad_eos;
  bad_eos.eos = 100000;
  const std::string p4 = write_tiny("bad_eos.gguf", bad_eos);
  expect_has(error_of(p4), {p4, "tokenizer.ggml.eos_token_id", "100000"});
}

const char* smollm2_gguf() {
  const char* path = std::getenv("LADDER_SMOLLM2_GGUF");
  return path && *path ? path : nullptr;
}

nlohmann::json golden() {
  std::ifstream in(ladder::test::golden_dir() + "/smollm2_tokenizer.json");
  EXPECT_TRUE(in) << "tests/golden/smollm2_tokenizer.json";
  return nlohmann::json::parse(in);
}

TEST(GgufTokenizer, RealSmolLM2MatchesHuggingFace) {
  const char* path = smollm2_gguf();
  if (!path) {
    LADDER_SKIP_OR_FAIL() << "LADDER_SMOLLM2_GGUF not set (scripts/fetch_smollm2.sh fetches the file)";
  }
  const auto ref = golden();
  const core::GgufFile f = core::GgufFile::open(path);
  const auto tok = make_gguf_tokenizer(f);
  EXPECT_EQ(tok->vocab_size(), ref["vocab_size"].get<int32_t>());
  EXPECT_EQ(tok->bos_id(), ref["bos_id"].get<int32_t>());
  EXPECT_EQ(tok->eos_id(), ref["eos_id"].get<int32_t>());
  EXPECT_EQ(tok->pad_id(), ref["pad_id"].get<int32_t>());
  EXPECT_EQ(tok->add_bos(), ref["add_bos"].get<bool>());
  const auto specials = ref["specials"].get<std::vector<std::string>>();
  ASSERT_EQ(specials.size(), 17u);
  for (size_t i = 0; i < specials.size(); ++i) {
    EXPECT_EQ(tok->token_id(specials[i]), int32_t(i)) << specials[i];
    EXPECT_EQ(tok->encode("x" + specials[i] + "y").at(1), int32_t(i)) << specials[i];
  }
  EXPECT_EQ(tok->token_id("<|im_end|>"), 2);

  size_t mismatches = 0, bad_decode = 0, n = 0;
  for (const auto& line : ref["lines"]) {
    const std::string text = line["text"];
    const auto ids = line["ids"].get<std::vector<int32_t>>();
    const auto actual = tok->encode(text);
    if (actual != ids && mismatches++ == 0)
      ADD_FAILURE() << "first mismatch (" << line["source"].get<std::string>() << "): " << nlohmann::json(text).dump()
                    << "\nexpected " << show(ids) << "\nactual   " << show(actual);
    if (tok->decode(ids) != line["decoded"].get<std::string>() && bad_decode++ == 0)
      ADD_FAILURE() << "decode differs for " << nlohmann::json(text).dump();
    ++n;
  }
  EXPECT_EQ(mismatches, 0u) << "of " << n << " lines";
  EXPECT_EQ(bad_decode, 0u) << "of " << n << " lines";
  EXPECT_GE(n, 600u);
  std::cout << "[ golden ] " << n << " SmolLM2 lines\n";

  // The chat renderings, text and ids.
  ASSERT_EQ(chat_format_of(f), ChatFormat::chatml_smollm2);
  for (const auto& c : ref["chats"]) {
    std::vector<ChatMessage> messages;
    for (const auto& m : c["messages"]) messages.push_back({m["role"], m["content"]});
    const std::string text = render_chat(ChatFormat::chatml_smollm2, messages, c["add_generation_prompt"]);
    EXPECT_EQ(text, c["smollm2_text"].get<std::string>()) << c["name"];
    EXPECT_EQ(tok->encode(text), c["smollm2_ids"].get<std::vector<int32_t>>()) << c["name"];
  }
}

uint64_t fnv1a64(const std::vector<int32_t>& ids) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (int32_t id : ids)
    for (int k = 0; k < 4; ++k) h = (h ^ ((uint32_t(id) >> (8 * k)) & 0xFF)) * 0x100000001B3ull;
  return h;
}

// All of wikitext-2's test split as one text (1.3 MB, CRLF lines) gives HF's ids (count and hash); the time
// taken is printed, not checked.
TEST(GgufTokenizer, WholeWikiTextMatchesAndSpeed) {
  const char* path = smollm2_gguf();
  if (!path) {
    LADDER_SKIP_OR_FAIL() << "LADDER_SMOLLM2_GGUF not set (scripts/fetch_smollm2.sh fetches the file)";
  }
  const std::string file = ladder::test::shared_dir() + "/data/text/wikitext-2-raw/wiki.test.raw";
  std::ifstream in(file, std::ios::binary);
  ASSERT_TRUE(in) << file;
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const auto tok = make_gguf_tokenizer(core::GgufFile::open(path));
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok->encode(text);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto ref = golden()["wikitext2_test_whole_file"];
  EXPECT_EQ(ids.size(), ref["tokens"].get<size_t>());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a64(ids)));
  EXPECT_EQ(std::string(hex), ref["fnv1a64"].get<std::string>());
  std::cout << "[ speed ] wiki.test.raw: " << ids.size() << " tokens in " << s << " s = " << ids.size() / s
            << " tokens/s (one call, cold word cache)\n";
}

}  // namespace
}  // namespace ladder::data
