// ByteLevelBpeTokenizer against Hugging Face: every line of tests/golden/tokenizer_bpe.jsonl (made by
// tests/golden/make_tokenizer_fixtures.py with HF `tokenizers` and GPT-2's files) must match id for id.
#include "data/tokenizer/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>
#include <filesystem>
#include <unistd.h>

#include "tests/support/test_paths.h"

namespace ladder::data {
namespace {

std::string gpt2_dir() { return ladder::test::shared_dir() + "/data/tokenizers/gpt2"; }

const ByteLevelBpeTokenizer& gpt2() {
  static const ByteLevelBpeTokenizer t =
      ByteLevelBpeTokenizer::from_files(gpt2_dir() + "/vocab.json", gpt2_dir() + "/merges.txt");
  return t;
}

struct FixtureLine {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<FixtureLine> fixture_lines() {
  const std::string path = ladder::test::golden_dir() + "/tokenizer_bpe.jsonl";
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot open " << path;
  std::vector<FixtureLine> lines;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    lines.push_back({j.at("text"), j.at("ids").get<std::vector<int32_t>>()});
  }
  return lines;
}

std::string show(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string write_temp(const std::string& name, const std::string& content) {
  const std::string path = testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

template <typename F>
void expect_error_mentions(F f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << " lacks " << p;
  }
}

void expect_fixtures_match(const ByteLevelBpeTokenizer& tok) {
  const auto lines = fixture_lines();
  ASSERT_GE(lines.size(), 500u);
  size_t mismatches = 0;
  for (size_t k = 0; k < lines.size(); ++k) {
    const auto actual = tok.encode(lines[k].text);
    if (actual != lines[k].ids && mismatches++ == 0)
      ADD_FAILURE() << "first mismatch at fixture line " << k + 1 << "\ntext: " << nlohmann::json(lines[k].text).dump()
                    << "\nexpected " << show(lines[k].ids) << "\nactual   " << show(actual);
  }
  EXPECT_EQ(mismatches, 0u) << "of " << lines.size() << " lines";
  std::cout << "[ fixtures ] " << lines.size() << " BPE lines\n";
}

TEST(ByteLevelBpeTokenizer, MatchesHuggingFaceOnEveryFixtureLine) { expect_fixtures_match(gpt2()); }

TEST(ByteLevelBpeTokenizer, TokenizerJsonMatchesToo) {
  expect_fixtures_match(ByteLevelBpeTokenizer::from_tokenizer_json(gpt2_dir() + "/tokenizer.json"));
}

TEST(ByteLevelBpeTokenizer, TokenizerJsonWithPairMerges) {
  // Newer HF files write each merge as ["a", "b"] instead of "a b".
  std::ifstream in(gpt2_dir() + "/tokenizer.json");
  auto j = nlohmann::json::parse(in);
  for (auto& m : j["model"]["merges"]) {
    const std::string s = m;
    m = nlohmann::json::array({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  const std::string path = write_temp("gpt2_pair_merges.json", j.dump());
  const auto tok = ByteLevelBpeTokenizer::from_tokenizer_json(path);
  EXPECT_EQ(tok.encode(" Hello  world\n"), (std::vector<int32_t>{18435, 220, 995, 198}));
}

TEST(ByteLevelBpeTokenizer, VocabAndEndOfText) {
  EXPECT_EQ(gpt2().vocab_size(), 50257);
  EXPECT_EQ(gpt2().eos_id(), 50256);
  EXPECT_EQ(gpt2().encode("Hello world"), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(gpt2().encode("a<|endoftext|>b"), (std::vector<int32_t>{64, 50256, 65}));
  EXPECT_EQ(gpt2().decode({15496, 995, 50256}), "Hello world<|endoftext|>");
  EXPECT_TRUE(gpt2().encode("").empty());
  EXPECT_THROW(gpt2().decode({50257}), std::out_of_range);
  EXPECT_THROW(gpt2().decode({-1}), std::out_of_range);
}

TEST(ByteLevelBpeTokenizer, DecodeRoundTripsFixtureTexts) {
  size_t bad = 0;
  for (const auto& line : fixture_lines())
    if (gpt2().decode(line.ids) != line.text && bad++ == 0)
      ADD_FAILURE() << "decode(ids) != text for " << nlohmann::json(line.text).dump();
  EXPECT_EQ(bad, 0u);
}

TEST(ByteLevelBpeTokenizer, InvalidUtf8ReadsAsReplacementCharacter) {
  EXPECT_EQ(gpt2().encode("ab\xff" "cd"), (std::vector<int32_t>{397, 4210, 10210}));  // HF's ids for "ab\ufffdcd"
  EXPECT_EQ(gpt2().encode("x\xE2\x82"), gpt2().encode("x\xEF\xBF\xBD"));
  EXPECT_EQ(gpt2().encode("\xC0\x80"), gpt2().encode("\xEF\xBF\xBD\xEF\xBF\xBD"));  // overlong: two bad bytes
  // Token 447 is the lone first byte of a 3-byte sequence: decode replaces it, as HF does.
  EXPECT_EQ(gpt2().decode({447}), "\xEF\xBF\xBD");
}

TEST(ByteLevelBpeTokenizer, ErrorsNameFileAndLine) {
  const std::string vocab = gpt2_dir() + "/vocab.json", merges = gpt2_dir() + "/merges.txt";
  const std::string missing = testing::TempDir() + "/no_such_file.txt";
  expect_error_mentions([&] { ByteLevelBpeTokenizer::from_files(missing, merges); }, {missing});
  expect_error_mentions([&] { ByteLevelBpeTokenizer::from_files(vocab, missing); }, {missing});
  expect_error_mentions([&] { ByteLevelBpeTokenizer::from_tokenizer_json(missing); }, {missing});
  const std::string bad = write_temp("merges_bad.txt", "#version: 0.2\n\xC4\xA0 t\nnospace\n");
  expect_error_mentions([&] { ByteLevelBpeTokenizer::from_files(vocab, bad); }, {bad, "line 3", "nospace"});
  const std::string oov = write_temp("merges_oov.txt", "#version: 0.2\n\xC4\xA0 t\nqqqqqqqq zzzzzzzz\n");
  expect_error_mentions([&] { ByteLevelBpeTokenizer::from_files(vocab, oov); }, {oov, "line 3"});
  const std::string not_json = write_temp("vocab_bad.json", "{\"a\": ");
  expect_error_mentions([&] { ByteLevelBpeTokenizer::from_files(not_json, merges); }, {not_json});
}

TEST(ByteLevelBpeTokenizer, ConcurrentCallsGiveSameIds) {
  // A fresh tokenizer, so the threads race on filling the word cache too.
  const auto tok = ByteLevelBpeTokenizer::from_files(gpt2_dir() + "/vocab.json", gpt2_dir() + "/merges.txt");
  const auto lines = fixture_lines();
  std::vector<size_t> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep)
        for (size_t k = 0; k < lines.size(); ++k) {
          const auto& line = lines[(k + t * 131) % lines.size()];
          if (tok.encode(line.text) != line.ids) ++bad[t];
        }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(bad[t], 0u) << "thread " << t;
}

}  // namespace
}  // namespace ladder::data

// tokenizer.json's pre_tokenizer decides how text is cut: SmolLM2's Digits(individual_digits) before
// ByteLevel splits every digit; a pre-tokenizer this BPE does not reproduce (Llama 3's Split regex) is an
// error naming the file, not silently different ids.
namespace ladder::data {
namespace {

TEST(BpeTokenizer, TokenizerJsonPreTokenizerIsReadOrRefused) {
  std::ifstream in(gpt2_dir() + "/tokenizer.json");
  nlohmann::json j = nlohmann::json::parse(in);
  const std::string dir = std::filesystem::temp_directory_path().string() + "/ladder_bpe_pre_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}},
                                           {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}}}};
  std::ofstream(dir + "/digits.json") << j.dump();
  const auto plain = ladder::data::ByteLevelBpeTokenizer::from_tokenizer_json(gpt2_dir() + "/tokenizer.json");
  const auto digits = ladder::data::ByteLevelBpeTokenizer::from_tokenizer_json(dir + "/digits.json");
  const std::string text = "In 2019 it cost 12345 dollars.";
  EXPECT_LT(plain.encode(text).size(), digits.encode(text).size());
  EXPECT_EQ(digits.decode(digits.encode(text)), text);
  size_t digit_tokens = 0;
  for (int32_t id : digits.encode(" 12345")) digit_tokens += digits.decode({id}).find_first_of("0123456789") != std::string::npos;
  EXPECT_EQ(digit_tokens, 5u);
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\p{N}{1,3}"}}}, {"behavior", "Isolated"}};
  std::ofstream(dir + "/split.json") << j.dump();
  try {
    ladder::data::ByteLevelBpeTokenizer::from_tokenizer_json(dir + "/split.json");
    FAIL() << "an unsupported pre_tokenizer must be refused";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("split.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("pre_tokenizer"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ladder::data
