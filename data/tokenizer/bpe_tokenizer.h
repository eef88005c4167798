#pragma once
// GPT-2's byte-level BPE tokenizer, id-for-id identical to Hugging Face `tokenizers` with GPT-2's
// tokenizer.json: "<|endoftext|>" (and any other added token) matched in the raw text, GPT-2's
// pre-tokenization regex, bytes mapped to printable characters, then BPE merges applied by rank in
// HF's exact order. No special tokens are added by encode.
// from_tokens builds the same tokenizer from a GGUF's lists (SmolLM2: tokenizer.ggml.tokens / merges, the
// control tokens, and HF's Digits-then-ByteLevel pre-tokenization); there a byte whose symbol the vocab
// lacks is dropped from the input, as HF's BPE does with unk_token null (SmolLM2 lacks 21 of them).
// Input that is not valid UTF-8 is read as if each invalid byte sequence were U+FFFD (Python can only
// hand HF valid text, so this is what HF sees for the same text after a lossy decode).
// Known deviation: \p{L}/\p{N} come from the system ICU (Debian 12: Unicode 15); HF's Oniguruma knows
// Unicode 16, so code points first assigned in Unicode 16 may split differently.
// Thread-safe for concurrent const calls: the only mutable state is a word cache behind a shared_mutex.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ladder::data {

class ByteLevelBpeTokenizer {
 public:
  // How text is cut into words before BPE (gpt2_pretokenizer.h): GPT-2's regex, or every \p{N} on its own
  // first (HF's Digits(individual_digits=true) before ByteLevel; llama.cpp's "smollm").
  enum class PreTokenizer { gpt2, gpt2_individual_digits };

  // GPT-2's vocab.json (token -> id) and merges.txt ("#version" line, then "a b" per line, by rank).
  // Errors name the file, and the line for a malformed or out-of-vocabulary merge.
  static ByteLevelBpeTokenizer from_files(const std::string& vocab_json, const std::string& merges_txt);
  // An HF tokenizers JSON: model.vocab, model.merges ("a b" strings or [a, b] pairs), added_tokens, and its
  // pre_tokenizer (GPT-2's ByteLevel, or SmolLM2's Digits then ByteLevel; any other is an error).
  static ByteLevelBpeTokenizer from_tokenizer_json(const std::string& path);
  // tokens[id] in the byte-level alphabet, merges "a b" by rank, and the tokens matched verbatim in the
  // raw text (specials; each must be in `tokens`). `merges_where` names the merge list in errors
  // ("GGUF 'x.gguf' tokenizer.ggml.merges", then "[rank]"). No "<|endoftext|>" needed (eos_id() is then -1).
  static ByteLevelBpeTokenizer from_tokens(const std::vector<std::string>& tokens,
                                           const std::vector<std::string>& merges,
                                           const std::vector<std::string>& specials, PreTokenizer pre,
                                           const std::string& merges_where);

  ByteLevelBpeTokenizer(ByteLevelBpeTokenizer&&) noexcept;
  ByteLevelBpeTokenizer& operator=(ByteLevelBpeTokenizer&&) noexcept;
  ~ByteLevelBpeTokenizer();

  std::vector<int32_t> encode(const std::string& text) const;
  // Concatenates the tokens' bytes; special tokens come out as their text ("<|endoftext|>"), like HF's
  // decode(skip_special_tokens=False). Byte sequences that are not valid UTF-8 become U+FFFD.
  // Throws std::out_of_range for an id outside the vocab.
  std::string decode(const std::vector<int32_t>& ids) const;

  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token_.size()); }
  int32_t eos_id() const { return eos_id_; }  // "<|endoftext|>", -1 when the vocab has none
  // The id of a token spelled as in the vocab ("<|im_end|>", "\xC4\xA0the" for " the"), -1 when absent.
  int32_t token_to_id(const std::string& token) const;
  PreTokenizer pre_tokenizer() const { return pre_; }

 private:
  struct WordCache;
  ByteLevelBpeTokenizer();
  // `strict` (the vocab.json / tokenizer.json readers): every byte's symbol and "<|endoftext|>" must exist.
  void build(std::unordered_map<std::string, int32_t> vocab,
             const std::vector<std::pair<std::string, std::string>>& merges,
             std::vector<std::pair<std::string, int32_t>> added,
             const std::function<std::string(size_t)>& merge_where, bool strict = true);
  void bpe(const std::string& bytes, std::vector<int32_t>& out) const;

  std::vector<std::string> id_to_token_;  // in byte-level alphabet
  std::unordered_map<std::string, int32_t> vocab_;  // token -> id, added tokens included
  int32_t byte_id_[256] = {};             // id of each single byte's symbol, -1: absent (byte dropped)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (left id, right id) -> (rank, new id)
  std::vector<std::pair<std::string, int32_t>> added_;                // matched verbatim in the input
  int32_t eos_id_ = -1;
  PreTokenizer pre_ = PreTokenizer::gpt2;
  static PreTokenizer pre_tokenizer_of(const nlohmann::json& tokenizer_json, const std::string& path);
  std::unique_ptr<WordCache> cache_;
};

}  // namespace ladder::data
