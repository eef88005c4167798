#pragma once
// BERT's uncased WordPiece tokenizer, id-for-id identical to Hugging Face `tokenizers`' BertWordPiece
// pipeline (what BertTokenizerFast runs): special tokens matched in the raw text, BertNormalizer
// (drop NUL/U+FFFD/control chars, whitespace to ' ', spaces around CJK ideographs, NFD and drop Mn
// marks, lower-case), BertPreTokenizer (split on White_Space, isolate punctuation), then greedy
// longest-match-first WordPiece with "##" continuations ([UNK] for words over 100 code points).
// Character classes follow HF's own tables (Unicode 8.0 categories, see the .cpp), so even characters
// added to Unicode since are treated as HF treats them. Invalid UTF-8 reads as U+FFFD (then dropped).
// Immutable after construction: concurrent const calls are safe.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "data/tokenizer/encoding.h"

namespace ladder::data {

class WordPieceTokenizer {
 public:
  // Reads a vocab.txt (one token per line, id = line number). Throws std::runtime_error naming the
  // file if it cannot be read, lacks [CLS]/[SEP]/[PAD]/[UNK], or repeats a token (with its line).
  static WordPieceTokenizer from_vocab_file(const std::string& vocab_txt, bool lower_case = true);

  std::vector<std::string> tokenize(const std::string& text) const;  // word pieces, no specials
  std::vector<int32_t> ids(const std::string& text) const;            // their ids, no specials

  // [CLS] a [SEP] (b [SEP]) cut to at most max_len tokens with HF's "longest_first" truncation.
  // b may be null. Throws std::invalid_argument if max_len cannot even hold the special tokens.
  Encoding encode(const std::string& a, const std::string* b, int max_len) const;

  int32_t token_to_id(const std::string& token) const;  // throws std::out_of_range naming the token
  const std::string& id_to_token(int32_t id) const;      // throws std::out_of_range naming the id
  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token_.size()); }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }

 private:
  WordPieceTokenizer() = default;
  void tokenize_into(const std::string& text, std::vector<int32_t>& out) const;
  void normalize_and_split(std::u32string& chars, std::vector<std::u32string>& words) const;
  void wordpiece(const std::u32string& word, std::vector<int32_t>& out, std::string& buf) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<std::pair<std::string, int32_t>> specials_;  // matched verbatim in the input
  bool lower_case_ = true;
  int32_t cls_id_ = -1, sep_id_ = -1, pad_id_ = -1, unk_id_ = -1;
};

}  // namespace ladder::data
