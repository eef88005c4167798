#pragma once
// The tokenizer a GGUF file describes, id for id what Hugging Face's tokenizer of the same model gives.
// make_gguf_tokenizer dispatches on tokenizer.ggml.model:
//   "gpt2"  -> GgufBpeTokenizer: byte-level BPE from tokenizer.ggml.tokens and tokenizer.ggml.merges, the
//              tokens typed control (3) or user-defined (4) in tokenizer.ggml.token_type matched verbatim,
//              pre-tokenization by tokenizer.ggml.pre: "smollm" (HF's Digits(individual_digits) then
//              ByteLevel), "gpt2", "default" or no key (GPT-2's regex, what transformers' GGUF loader uses).
//   "llama" -> SentencePieceTokenizer::from_gguf (data/tokenizer/sentencepiece_tokenizer.h).
// Anything else is an error naming the file, the key and its value.
#include <cstdint>
#include <memory>
#include <string>

#include "core/io/gguf.h"
#include "data/tokenizer/bpe_tokenizer.h"
#include "data/tokenizer/text_tokenizer.h"

namespace ladder::data {

class GgufBpeTokenizer final : public TextTokenizer {
 public:
  // Errors name the file and the key (a missing tokenizer.ggml.merges, an unknown tokenizer.ggml.pre, a
  // special id outside the vocabulary).
  static std::unique_ptr<GgufBpeTokenizer> from_gguf(const core::GgufFile& f);

  std::vector<int32_t> encode(const std::string& text) const override { return bpe_.encode(text); }
  std::string decode(const std::vector<int32_t>& ids) const override { return bpe_.decode(ids); }
  int32_t vocab_size() const override { return bpe_.vocab_size(); }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  int32_t pad_id() const override { return pad_id_; }
  bool add_bos() const override { return add_bos_; }  // tokenizer.ggml.add_bos_token, false when absent (as HF)
  // The token as the vocabulary spells it: "<|im_end|>", or "\xC4\xA0the" (byte-level) for " the".
  int32_t token_id(const std::string& token) const override { return bpe_.token_to_id(token); }

  const ByteLevelBpeTokenizer& bpe() const { return bpe_; }

 private:
  explicit GgufBpeTokenizer(ByteLevelBpeTokenizer bpe) : bpe_(std::move(bpe)) {}
  ByteLevelBpeTokenizer bpe_;
  int32_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
  bool add_bos_ = false;
};

std::unique_ptr<TextTokenizer> make_gguf_tokenizer(const core::GgufFile& f);

}  // namespace ladder::data
