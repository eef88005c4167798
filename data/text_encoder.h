#pragma once
// A model directory's tokenizer behind one call: WordPiece (vocab.txt) for BERT-style encoders, byte-level
// BPE (vocab.json + merges.txt, or tokenizer.json) for GPT-2 and Llama-family directories, and for a GGUF
// file the tokenizer its metadata describes (data/tokenizer/gguf_tokenizer.h). Thread-safe for concurrent
// encode calls.
#include <memory>
#include <string>
#include <vector>

#include "core/backbones/transformer_config.h"
#include "data/tokenizer/encoding.h"

namespace ladder::data {

class WordPieceTokenizer;
class ByteLevelBpeTokenizer;
class TextTokenizer;

class TextEncoder {
 public:
  // Throws naming the directory and the files it looked for when no tokenizer is there.
  static TextEncoder for_model(const std::string& model_dir, core::Architecture arch);
  ~TextEncoder();
  TextEncoder(TextEncoder&&) noexcept;
  TextEncoder& operator=(TextEncoder&&) noexcept;

  // BERT: [CLS] a [SEP] (b [SEP]), longest-first truncation. GPT-2: the BPE ids of a (then b), no special
  // tokens (as Hugging Face's GPT-2 tokenizer), cut to max_len. GGUF: BOS first when the model wants it.
  Encoding encode(const std::string& a, const std::string* b, int max_len) const;
  // The ids of one text with no special tokens added at all (no BOS), whatever the model.
  std::vector<int32_t> encode_plain(const std::string& text) const;
  int32_t pad_id() const { return pad_id_; }
  const std::string& kind() const { return kind_; }
  // sha256-free identity of the vocabulary files: their paths and sizes (for reports).
  const std::string& source() const { return source_; }

 private:
  TextEncoder() = default;
  std::unique_ptr<WordPieceTokenizer> wordpiece_;
  std::unique_ptr<ByteLevelBpeTokenizer> bpe_;
  std::unique_ptr<TextTokenizer> text_;
  int32_t pad_id_ = 0;
  std::string kind_, source_;
};

}  // namespace ladder::data
