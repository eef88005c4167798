#include "data/text_encoder.h"

#include <sys/stat.h>

#include <stdexcept>

#include <algorithm>

#include "core/backbones/gguf_model.h"
#include "data/tokenizer/bpe_tokenizer.h"
#include "data/tokenizer/gguf_tokenizer.h"
#include "data/tokenizer/wordpiece_tokenizer.h"

namespace ladder::data {

static bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

TextEncoder::~TextEncoder() = default;
TextEncoder::TextEncoder(TextEncoder&&) noexcept = default;
TextEncoder& TextEncoder::operator=(TextEncoder&&) noexcept = default;

TextEncoder TextEncoder::for_model(const std::string& dir, core::Architecture arch) {
  TextEncoder e;
  if (core::is_gguf_file(dir)) {
    e.text_ = make_gguf_tokenizer(core::GgufFile::open(dir));
    e.pad_id_ = e.text_->pad_id() >= 0 ? e.text_->pad_id() : std::max(e.text_->eos_id(), 0);
    e.kind_ = "gguf";
    e.source_ = dir;
    return e;
  }
  if (arch == core::Architecture::bert) {
    const std::string vocab = dir + "/vocab.txt";
    if (!exists(vocab)) throw std::runtime_error(dir + ": no vocab.txt (the WordPiece vocabulary a BERT model needs)");
    e.wordpiece_ = std::make_unique<WordPieceTokenizer>(WordPieceTokenizer::from_vocab_file(vocab, true));
    e.pad_id_ = e.wordpiece_->pad_id();
    e.kind_ = "wordpiece";
    e.source_ = vocab;
  } else {
    const std::string vj = dir + "/vocab.json", mt = dir + "/merges.txt", tj = dir + "/tokenizer.json";
    if (exists(vj) && exists(mt)) {
      e.bpe_ = std::make_unique<ByteLevelBpeTokenizer>(ByteLevelBpeTokenizer::from_files(vj, mt));
      e.source_ = vj + " + " + mt;
    } else if (exists(tj)) {
      e.bpe_ = std::make_unique<ByteLevelBpeTokenizer>(ByteLevelBpeTokenizer::from_tokenizer_json(tj));
      e.source_ = tj;
    } else {
      throw std::runtime_error(dir + ": no vocab.json + merges.txt or tokenizer.json (the byte-level BPE a GPT-2 model needs)");
    }
    e.pad_id_ = e.bpe_->eos_id();
    e.kind_ = "bpe";
  }
  return e;
}

std::vector<int32_t> TextEncoder::encode_plain(const std::string& text) const {
  if (text_) return text_->encode(text);
  if (bpe_) return bpe_->encode(text);
  return wordpiece_->ids(text);
}

Encoding TextEncoder::encode(const std::string& a, const std::string* b, int max_len) const {
  if (wordpiece_) return wordpiece_->encode(a, b, max_len);
  Encoding enc;
  if (text_ && text_->add_bos() && text_->bos_id() >= 0) enc.input_ids.push_back(text_->bos_id());
  auto first = text_ ? text_->encode(a) : bpe_->encode(a);
  enc.input_ids.insert(enc.input_ids.end(), first.begin(), first.end());
  if (b) {
    auto more = text_ ? text_->encode(*b) : bpe_->encode(*b);
    enc.input_ids.insert(enc.input_ids.end(), more.begin(), more.end());
  }
  if (max_len > 0 && int(enc.input_ids.size()) > max_len) enc.input_ids.resize(size_t(max_len));
  enc.token_type_ids.assign(enc.input_ids.size(), 0);
  enc.attention_mask.assign(enc.input_ids.size(), 1);
  return enc;
}

}  // namespace ladder::data
