#pragma once
// What a causal language model's tokenizer offers the trainer, `ladder generate` and perplexity: text to ids
// and back, and the special ids. Implemented by the tokenizers a GGUF file describes (byte-level BPE for
// SmolLM2/Llama, SentencePiece-style for Gemma); make_gguf_tokenizer (gguf_tokenizer.h) picks one from the
// file's tokenizer.ggml.model.
#include <cstdint>
#include <string>
#include <vector>

namespace ladder::data {

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  // The ids of `text` with special tokens matched verbatim; no BOS/EOS added (see add_bos()).
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  // The text of `ids`, special tokens included as their text. Throws std::out_of_range for an unknown id.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // -1: none
  virtual int32_t eos_id() const = 0;  // -1: none
  virtual int32_t pad_id() const = 0;  // -1: none
  // Whether the model expects BOS before a text (tokenizer.ggml.add_bos_token).
  virtual bool add_bos() const = 0;
  // The id of a token's exact text (e.g. "<|im_end|>"), -1 when the vocabulary has none.
  virtual int32_t token_id(const std::string& token) const = 0;
};

}  // namespace ladder::data
