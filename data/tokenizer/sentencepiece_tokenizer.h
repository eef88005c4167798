#pragma once
// Gemma's SentencePiece-style tokenizer built from a GGUF file's tokenizer.ggml.* metadata, id-for-id
// identical to the one Hugging Face transformers builds from the same file (AutoTokenizer with gguf_file=,
// transformers 5.25 / tokenizers 0.23): control tokens (<bos>, <start_of_turn>, <unused0>...) and
// user-defined ones ("\n\n", "<div>"...) matched verbatim in the raw text, leftmost and longest first;
// the rest has " " replaced by U+2581 (no dummy prefix: Gemma's rule, whatever add_space_prefix says)
// and is BPE-merged as one word, characters outside the vocabulary falling back to <0xNN> byte tokens.
// The merges are those transformers derives, as the file lists none: every split of a token into two
// vocabulary tokens, ranked by the token's position in the file (not tokenizer.ggml.scores, which do not
// follow Gemma's merge order), longer left part first. Runs of spaces the file spells as real spaces
// are respelled as U+2581 runs, as transformers does. encode adds no BOS (see add_bos()).
// Input that is not valid UTF-8 is read as if each invalid sequence were U+FFFD.
// Immutable after construction: concurrent const calls are safe.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/io/gguf.h"
#include "data/tokenizer/text_tokenizer.h"

namespace ladder::data {

class SentencePieceTokenizer : public TextTokenizer {
 public:
  // Needs tokenizer.ggml.model = "llama" in a gemma/gemma2/gemma3 file, tokenizer.ggml.tokens and
  // tokenizer.ggml.token_type; errors name the file and the key.
  static SentencePieceTokenizer from_gguf(const ladder::core::GgufFile& f);

  SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept;
  SentencePieceTokenizer& operator=(SentencePieceTokenizer&&) noexcept;
  ~SentencePieceTokenizer() override;

  std::vector<int32_t> encode(const std::string& text) const override;
  // HF's decode(skip_special_tokens=False): U+2581 back to " ", consecutive <0xNN> tokens reassembled
  // into UTF-8 (one U+FFFD per byte when a run is not valid UTF-8).
  std::string decode(const std::vector<int32_t>& ids) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  int32_t pad_id() const override { return pad_id_; }
  bool add_bos() const override { return add_bos_; }
  // Looks up the vocabulary as transformers spells it (a run of two spaces is "\u2581\u2581").
  int32_t token_id(const std::string& token) const override;

 private:
  struct Merge {
    uint64_t rank;
    int32_t new_id;
  };
  SentencePieceTokenizer() = default;
  void bpe(std::string_view normalized, std::vector<int32_t>& out) const;

  std::vector<std::string> pieces_;                          // id -> text, respelled
  std::unordered_map<std::string_view, int32_t> piece_id_;   // views into pieces_
  std::unordered_map<uint64_t, Merge> merges_;               // (left id << 32 | right id) -> merge
  std::unordered_map<std::string_view, int32_t> added_;      // matched in the raw text; views into pieces_
  std::vector<size_t> added_lengths_[256];                   // by first byte, longest first
  int32_t byte_id_[256] = {};                                // <0xNN>, -1 when absent
  int32_t unk_id_ = -1, bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
  bool add_bos_ = true;
};

}  // namespace ladder::data
