// WordPieceTokenizer against Hugging Face: every line of tests/golden/tokenizer_wordpiece.jsonl
// (made by tests/golden/make_tokenizer_fixtures.py with HF `tokenizers`) must match id for id.
#include "data/tokenizer/wordpiece_tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/test_paths.h"

namespace ladder::data {
namespace {

std::string vocab_path() { return ladder::test::shared_dir() + "/data/tokenizers/bert-base-uncased/vocab.txt"; }

const WordPieceTokenizer& bert() {
  static const WordPieceTokenizer t = WordPieceTokenizer::from_vocab_file(vocab_path());
  return t;
}

std::vector<nlohmann::json> fixture_lines() {
  const std::string path = ladder::test::golden_dir() + "/tokenizer_wordpiece.jsonl";
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot open " << path;
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
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

// Expects `f` to throw std::runtime_error whose message contains every one of `parts`.
template <typename F>
void expect_error_mentions(F f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected an exception";
  } catch (const std::runtime_error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << " lacks " << p;
  }
}

TEST(WordPieceTokenizer, MatchesHuggingFaceOnEveryFixtureLine) {
  const auto lines = fixture_lines();
  ASSERT_GE(lines.size(), 500u);
  size_t n_ids = 0, n_encode = 0, n_pairs = 0, mismatches = 0;
  for (size_t k = 0; k < lines.size(); ++k) {
    const auto& j = lines[k];
    const std::string text = j.at("text");
    std::vector<int32_t> expected, actual, expected_types, actual_types;
    if (j.contains("ids")) {
      ++n_ids;
      expected = j.at("ids").get<std::vector<int32_t>>();
      actual = bert().ids(text);
    } else {
      ++n_encode;
      std::string pair;
      if (j.contains("text_pair")) pair = j.at("text_pair"), ++n_pairs;
      const Encoding e = bert().encode(text, j.contains("text_pair") ? &pair : nullptr, j.at("max_len"));
      expected = j.at("input_ids").get<std::vector<int32_t>>();
      expected_types = j.at("token_type_ids").get<std::vector<int32_t>>();
      actual = e.input_ids;
      actual_types = e.token_type_ids;
      EXPECT_EQ(e.attention_mask, std::vector<int32_t>(actual.size(), 1));
    }
    if (actual != expected || actual_types != expected_types) {
      if (mismatches++ == 0)
        ADD_FAILURE() << "first mismatch at fixture line " << k + 1 << "\ntext: " << j.dump() << "\nexpected ids "
                      << show(expected) << " types " << show(expected_types) << "\nactual   ids " << show(actual)
                      << " types " << show(actual_types);
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << lines.size() << " lines";
  EXPECT_GE(n_pairs, 50u);
  std::cout << "[ fixtures ] " << n_ids << " ids lines, " << n_encode << " encode lines (" << n_pairs << " pairs)\n";
}

TEST(WordPieceTokenizer, SpecialTokensAndVocab) {
  EXPECT_EQ(bert().vocab_size(), 30522);
  EXPECT_EQ(bert().pad_id(), 0);
  EXPECT_EQ(bert().unk_id(), 100);
  EXPECT_EQ(bert().cls_id(), 101);
  EXPECT_EQ(bert().sep_id(), 102);
  EXPECT_EQ(bert().token_to_id("hello"), 7592);
  EXPECT_EQ(bert().id_to_token(7592), "hello");
  EXPECT_EQ(bert().tokenize("Unaffable runnings"), (std::vector<std::string>{"una", "##ffa", "##ble", "running", "##s"}));
}

TEST(WordPieceTokenizer, TokenToIdNamesMissingToken) {
  try {
    bert().token_to_id("no-such-token");
    ADD_FAILURE() << "expected std::out_of_range";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-token"), std::string::npos);
  }
  EXPECT_THROW(bert().id_to_token(30522), std::out_of_range);
}

TEST(WordPieceTokenizer, TruncationLongestFirst) {
  const std::string a = "a b c d e", b = "f g h i j";
  // Budget 5 for two 5-token texts: HF gives the first max/2 = 2, the second the remaining 3.
  Encoding e = bert().encode(a, &b, 8);
  EXPECT_EQ(e.input_ids, (std::vector<int32_t>{101, 1037, 1038, 102, 1042, 1043, 1044, 102}));
  EXPECT_EQ(e.token_type_ids, (std::vector<int32_t>{0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(e.attention_mask, std::vector<int32_t>(8, 1));
  // The shorter text is kept whole when the longer one can absorb the cut.
  const std::string shorter = "x y";
  e = bert().encode("a b c d e f g h", &shorter, 8);
  EXPECT_EQ(e.input_ids, (std::vector<int32_t>{101, 1037, 1038, 1039, 102, 1060, 1061, 102}));
  // Single text: [CLS] + max_len-2 tokens + [SEP]; no truncation when it fits.
  e = bert().encode(a, nullptr, 4);
  EXPECT_EQ(e.input_ids, (std::vector<int32_t>{101, 1037, 1038, 102}));
  EXPECT_EQ(bert().encode(a, nullptr, 512).input_ids.size(), 7u);
  EXPECT_THROW(bert().encode(a, &b, 2), std::invalid_argument);
  EXPECT_THROW(bert().encode(a, nullptr, 1), std::invalid_argument);
}

TEST(WordPieceTokenizer, InvalidUtf8ReadsAsReplacementCharacter) {
  // Each invalid sequence stands for U+FFFD, which BERT's text cleaning then drops.
  EXPECT_EQ(bert().ids("caf\xff" "e"), bert().ids("caf\xEF\xBF\xBD" "e"));
  EXPECT_EQ(bert().ids("caf\xff" "e"), bert().ids("cafe"));
  EXPECT_EQ(bert().ids("\xE2\x82 x \xF0\x9F"), bert().ids("x"));
}

TEST(WordPieceTokenizer, ErrorsNameFileTokenAndLine) {
  const std::string missing = testing::TempDir() + "/no_such_vocab.txt";
  expect_error_mentions([&] { WordPieceTokenizer::from_vocab_file(missing); }, {missing});
  const std::string no_unk = write_temp("vocab_no_unk.txt", "[PAD]\n[CLS]\n[SEP]\nhello\n");
  expect_error_mentions([&] { WordPieceTokenizer::from_vocab_file(no_unk); }, {no_unk, "[UNK]"});
  const std::string dup = write_temp("vocab_dup.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nhello\n");
  expect_error_mentions([&] { WordPieceTokenizer::from_vocab_file(dup); }, {dup, "line 6", "hello"});
}

TEST(WordPieceTokenizer, ConcurrentCallsGiveSameIds) {
  const auto lines = fixture_lines();
  std::vector<std::vector<int32_t>> expected;
  for (const auto& j : lines) expected.push_back(bert().ids(j.at("text")));
  std::vector<size_t> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep)
        for (size_t k = 0; k < lines.size(); ++k)
          if (bert().ids(lines[(k + t * 97) % lines.size()].at("text")) != expected[(k + t * 97) % lines.size()]) ++bad[t];
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(bad[t], 0u) << "thread " << t;
}

}  // namespace
}  // namespace ladder::data
