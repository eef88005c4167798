#pragma once
// GPT-2's byte-level BPE tokenizer, id-for-id identical to Hugging Face `tokenizers` with GPT-2's
// tokenizer.json: "<|endoftext|>" (and any other added token) matched in the raw text, GPT-2's
// pre-tokenization regex, bytes mapped to printable characters, then BPE merges applied by rank in
// HF's exact order. No special tokens are added by encode.
// Input that is not valid UTF-8 is read as if each invalid byte sequence were U+FFFD (Python can only
// hand HF valid text, so this is what HF sees for the same text after a lossy decode).
// Known deviation: \p{L}/\p{N} come from the system ICU (Debian 12: Unicode 15); HF's Oniguruma knows
// Unicode 16, so code points first assigned in Unicode 16 may split differently.
// Thread-safe for concurrent const calls: the only mutable state is a word cache behind a shared_mutex.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ladder::data {

class ByteLevelBpeTokenizer {
 public:
  // GPT-2's vocab.json (token -> id) and merges.txt ("#version" line, then "a b" per line, by rank).
  // Errors name the file, and the line for a malformed or out-of-vocabulary merge.
  static ByteLevelBpeTokenizer from_files(const std::string& vocab_json, const std::string& merges_txt);
  // An HF tokenizers JSON: model.vocab, model.merges ("a b" strings or [a, b] pairs), added_tokens.
  static ByteLevelBpeTokenizer from_tokenizer_json(const std::string& path);

  ByteLevelBpeTokenizer(ByteLevelBpeTokenizer&&) noexcept;
  ByteLevelBpeTokenizer& operator=(ByteLevelBpeTokenizer&&) noexcept;
  ~ByteLevelBpeTokenizer();

  std::vector<int32_t> encode(const std::string& text) const;
  // Concatenates the tokens' bytes; special tokens come out as their text ("<|endoftext|>"), like HF's
  // decode(skip_special_tokens=False). Byte sequences that are not valid UTF-8 become U+FFFD.
  // Throws std::out_of_range for an id outside the vocab.
  std::string decode(const std::vector<int32_t>& ids) const;

  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token_.size()); }
  int32_t eos_id() const { return eos_id_; }

 private:
  struct WordCache;
  ByteLevelBpeTokenizer();
  void build(std::unordered_map<std::string, int32_t> vocab,
             const std::vector<std::pair<std::string, std::string>>& merges,
             std::vector<std::pair<std::string, int32_t>> added,
             const std::function<std::string(size_t)>& merge_where);
  void bpe(const std::string& bytes, std::vector<int32_t>& out) const;

  std::vector<std::string> id_to_token_;  // in byte-level alphabet
  int32_t byte_id_[256] = {};             // id of each single byte's symbol
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (left id, right id) -> (rank, new id)
  std::vector<std::pair<std::string, int32_t>> added_;                // matched verbatim in the input
  int32_t eos_id_ = -1;
  std::unique_ptr<WordCache> cache_;
};

}  // namespace ladder::data
