// SentencePieceTokenizer (data/tokenizer/sentencepiece_tokenizer.h): on a tiny GGUF written here, the rules
// (merge order by token position, respelled space runs, added tokens leftmost-longest, byte fallback,
// decode) and clear errors for files without a tokenizer; on the real Gemma 3 file (LADDER_GEMMA3_GGUF),
// every line of tests/golden/gemma3_tokenizer.json (made by scripts/make_tokenizer_golden_gemma3.py with
// transformers' tokenizer built from the same file) id for id, decode equal to HF's, and the chat template.
#include "data/tokenizer/sentencepiece_tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace ladder::data {
namespace {

using ladder::core::GgufFile;

// A GGUF v3 file with metadata only (no tensors), written byte by byte.
class MetadataWriter {
 public:
  void str(const std::string& key, const std::string& v) { this->key(key, 8), text(v); }
  void u32(const std::string& key, uint32_t v) { this->key(key, 4), put(v); }
  void boolean(const std::string& key, bool v) { this->key(key, 7), put<uint8_t>(v); }
  void strings(const std::string& key, const std::vector<std::string>& v) {
    this->key(key, 9), put<uint32_t>(8), put<uint64_t>(v.size());
    for (const auto& s : v) text(s);
  }
  void i32s(const std::string& key, const std::vector<int32_t>& v) {
    this->key(key, 9), put<uint32_t>(5), put<uint64_t>(v.size());
    for (int32_t x : v) put(x);
  }
  std::string save(const std::string& name) const {
    std::string out = "GGUF";
    auto raw = [&out](auto v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
    raw(uint32_t(3)), raw(uint64_t(0)), raw(uint64_t(keys_));
    out += body_;
    const std::string path = ladder::test::temp_dir("sentencepiece") + "/" + name;
    std::ofstream(path, std::ios::binary) << out;
    return path;
  }

 private:
  template <class T>
  void put(T v) { body_.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void text(const std::string& s) { put<uint64_t>(s.size()), body_ += s; }
  void key(const std::string& k, uint32_t type) { text(k), put(type), ++keys_; }
  std::string body_;
  uint64_t keys_ = 0;
};

// Ids: 0-3 <pad> <eos> <bos> <unk>, 4 <start_of_turn>, 5 "\n", 6 "  " (respelled "▁▁"), 7-262 <0x00>..<0xFF>,
// 263 "▁", 264 "a", 265 "b", 266 "ab", 267 "▁a", 268 "▁ab", 269 "ba", 270 "\n\n".
MetadataWriter tiny_vocab(bool with_types = true) {
  std::vector<std::string> tokens = {"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "\n", "  "};
  std::vector<int32_t> types = {3, 3, 3, 3, 3, 4, 4};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.push_back(name), types.push_back(6);
  }
  for (const char* t : {"\xe2\x96\x81", "a", "b", "ab", "\xe2\x96\x81" "a", "\xe2\x96\x81" "ab", "ba"})
    tokens.push_back(t), types.push_back(1);
  tokens.push_back("\n\n"), types.push_back(4);
  MetadataWriter w;
  w.str("general.architecture", "gemma3");
  w.str("tokenizer.ggml.model", "llama");
  w.strings("tokenizer.ggml.tokens", tokens);
  if (with_types) w.i32s("tokenizer.ggml.token_type", types);
  w.u32("tokenizer.ggml.bos_token_id", 2);
  w.u32("tokenizer.ggml.eos_token_id", 1);
  w.u32("tokenizer.ggml.unknown_token_id", 3);
  w.u32("tokenizer.ggml.padding_token_id", 0);
  w.boolean("tokenizer.ggml.add_bos_token", false);
  return w;
}

std::string error_of(const std::string& path) {
  try {
    SentencePieceTokenizer::from_gguf(GgufFile::open(path));
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::string show(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

const char* gemma3_path() {
  const char* p = std::getenv("LADDER_GEMMA3_GGUF");
  return p && *p ? p : nullptr;
}

const SentencePieceTokenizer& gemma3() {
  static const SentencePieceTokenizer t = SentencePieceTokenizer::from_gguf(GgufFile::open(gemma3_path()));
  return t;
}

const nlohmann::json& golden() {
  static const nlohmann::json j = [] {
    std::ifstream in(ladder::test::golden_dir() + "/gemma3_tokenizer.json");
    EXPECT_TRUE(in) << "tests/golden/gemma3_tokenizer.json";
    return nlohmann::json::parse(in);
  }();
  return j;
}

}  // namespace

TEST(SentencePieceTokenizer, TinyVocabularyFollowsTransformersRules) {
  const auto tok = SentencePieceTokenizer::from_gguf(GgufFile::open(tiny_vocab().save("tiny.gguf")));
  EXPECT_EQ(tok.vocab_size(), 271);
  EXPECT_EQ(tok.bos_id(), 2);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_FALSE(tok.add_bos());
  // "ab" (id 266) merges before "▁a" (267): the earlier token wins, then "▁"+"ab" makes "▁ab".
  EXPECT_EQ(tok.encode(" ab"), (std::vector<int32_t>{268}));
  EXPECT_EQ(tok.encode("bab"), (std::vector<int32_t>{265, 266}));
  // The stored "  " is looked up as "▁▁", whose merge (rank 6) beats every other; it is not an added token.
  EXPECT_EQ(tok.encode("  a"), (std::vector<int32_t>{6, 264}));
  EXPECT_EQ(tok.token_id("\xe2\x96\x81\xe2\x96\x81"), 6);
  EXPECT_EQ(tok.token_id("  "), -1);
  // Added tokens leftmost-longest ("\n\n" then "\n"); 'x' and 'é' fall back to their bytes.
  EXPECT_EQ(tok.encode("x\n\n\n<start_of_turn>\xc3\xa9"),
            (std::vector<int32_t>{7 + 0x78, 270, 5, 4, 7 + 0xC3, 7 + 0xA9}));
  EXPECT_EQ(tok.decode({7 + 0x78, 270, 5, 4, 7 + 0xC3, 7 + 0xA9, 6, 268}), "x\n\n\n<start_of_turn>\xc3\xa9   ab");
  // A byte run that is not UTF-8 decodes to one U+FFFD per byte; each run is judged alone.
  EXPECT_EQ(tok.decode({7 + 0xC3, 265, 7 + 0xA9, 7 + 0xA9}), "\xef\xbf\xbd" "b" "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_TRUE(tok.encode("").empty());
  EXPECT_THROW(tok.decode({271}), std::out_of_range);
  EXPECT_THROW(tok.decode({-1}), std::out_of_range);
}

TEST(SentencePieceTokenizer, FilesWithoutATokenizerAreErrorsNamingFileAndKey) {
  {
    MetadataWriter w;
    w.str("general.architecture", "gemma3");
    const std::string path = w.save("no_tokenizer.gguf");
    const std::string e = error_of(path);
    EXPECT_NE(e.find(path), std::string::npos) << e;
    EXPECT_NE(e.find("'tokenizer.ggml.model' is missing"), std::string::npos) << e;
  }
  {
    const std::string path = tiny_vocab(false).save("no_types.gguf");
    const std::string e = error_of(path);
    EXPECT_NE(e.find(path), std::string::npos) << e;
    EXPECT_NE(e.find("'tokenizer.ggml.token_type' is missing"), std::string::npos) << e;
  }
  {
    MetadataWriter w;
    w.str("general.architecture", "gemma3");
    w.str("tokenizer.ggml.model", "gpt2");
    const std::string path = w.save("gpt2.gguf");
    const std::string e = error_of(path);
    EXPECT_NE(e.find(path), std::string::npos) << e;
    EXPECT_NE(e.find("'tokenizer.ggml.model' is 'gpt2'"), std::string::npos) << e;
  }
  {
    // Llama-2-style SentencePiece (score-ranked merges, dummy prefix) is another tokenizer: refused.
    MetadataWriter l;
    l.str("general.architecture", "llama");
    l.str("tokenizer.ggml.model", "llama");
    const std::string lpath = l.save("llama.gguf");
    const std::string e = error_of(lpath);
    EXPECT_NE(e.find(lpath), std::string::npos) << e;
    EXPECT_NE(e.find("'general.architecture' is 'llama'"), std::string::npos) << e;
  }
}

TEST(SentencePieceTokenizer, Gemma3MatchesTransformersOnEveryGoldenLine) {
  if (!gemma3_path()) {
    LADDER_SKIP_OR_FAIL() << "LADDER_GEMMA3_GGUF not set (scripts/fetch_gemma3.sh fetches the file)";
  }
  const auto& g = golden();
  const auto& tok = gemma3();
  EXPECT_EQ(tok.vocab_size(), g["vocab_size"].get<int32_t>());
  EXPECT_EQ(tok.bos_id(), g["bos_id"].get<int32_t>());
  EXPECT_EQ(tok.eos_id(), g["eos_id"].get<int32_t>());
  EXPECT_EQ(tok.pad_id(), g["pad_id"].get<int32_t>());
  EXPECT_EQ(tok.add_bos(), g["add_bos"].get<bool>());
  EXPECT_EQ(tok.token_id("<start_of_turn>"), 105);
  EXPECT_EQ(tok.token_id("<end_of_turn>"), 106);
  // HF's encode with special tokens is BOS + encode(text) here.
  std::vector<int32_t> with_bos = {tok.bos_id()};
  for (int32_t id : tok.encode(g["with_bos"]["text"].get<std::string>())) with_bos.push_back(id);
  EXPECT_EQ(with_bos, g["with_bos"]["ids"].get<std::vector<int32_t>>());

  const auto& lines = g["lines"];
  ASSERT_GE(lines.size(), 1000u);
  size_t bad_ids = 0, bad_text = 0, round_trips = 0;
  for (size_t k = 0; k < lines.size(); ++k) {
    const std::string text = lines[k]["text"], decoded = lines[k]["decoded"];
    const auto want = lines[k]["ids"].get<std::vector<int32_t>>();
    const auto got = tok.encode(text);
    if (got != want && bad_ids++ < 3)
      ADD_FAILURE() << "line " << k << " " << nlohmann::json(text).dump() << "\nexpected " << show(want)
                    << "\nactual   " << show(got);
    const std::string back = tok.decode(got);
    if (back != decoded && bad_text++ < 3)
      ADD_FAILURE() << "decode, line " << k << ": " << nlohmann::json(back).dump() << " != HF "
                    << nlohmann::json(decoded).dump();
    round_trips += back == text;
  }
  EXPECT_EQ(bad_ids, 0u) << "of " << lines.size() << " lines";
  EXPECT_EQ(bad_text, 0u) << "of " << lines.size() << " lines";
  // Only texts with a literal U+2581 come back different (it decodes to a space, in HF too).
  EXPECT_GE(round_trips + 3, lines.size());
  std::cout << "[ golden   ] " << lines.size() << " lines, " << round_trips << " round trip exactly\n";
}

// The 2-turn conversation (with a system turn) rendered by transformers' apply_chat_template with Gemma 3's
// template, which the file lacks: its text encodes to HF's ids, control tokens included.
TEST(SentencePieceTokenizer, Gemma3ChatTemplateText) {
  if (!gemma3_path()) {
    LADDER_SKIP_OR_FAIL() << "LADDER_GEMMA3_GGUF not set (scripts/fetch_gemma3.sh fetches the file)";
  }
  const auto& chat = golden()["chat"];
  const auto ids = gemma3().encode(chat["text"].get<std::string>());
  EXPECT_EQ(ids, chat["ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(ids.front(), gemma3().bos_id());  // the template writes "<bos>" itself
  EXPECT_EQ(gemma3().decode(ids), chat["decoded"].get<std::string>());
}

// Encoding throughput on wikitext-2's test split (printed; the assertion only guards against a quadratic
// merge loop), and concurrent calls agree.
TEST(SentencePieceTokenizer, Gemma3SpeedAndThreads) {
  if (!gemma3_path()) {
    LADDER_SKIP_OR_FAIL() << "LADDER_GEMMA3_GGUF not set (scripts/fetch_gemma3.sh fetches the file)";
  }
  const auto& tok = gemma3();
  std::ifstream in(ladder::test::shared_dir() + "/data/text/wikitext-2-raw/wiki.test.raw", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) text = std::string(200000, 'a');  // no shared data: one long word still exercises the queue
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode(text);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "[ speed    ] " << text.size() << " bytes -> " << ids.size() << " ids in " << s << " s ("
            << text.size() / s / 1e6 << " MB/s)\n";
  EXPECT_LT(s, 30.0);
  EXPECT_EQ(tok.decode(ids), text);
  const std::string sample = text.substr(0, 20000);
  const auto want = tok.encode(sample);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int i = 0; i < 4; ++i) threads.emplace_back([&, i] { ok[i] = tok.encode(sample) == want; });
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok, std::vector<int>(4, 1));
}

}  // namespace ladder::data
