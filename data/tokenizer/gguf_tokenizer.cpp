#include "data/tokenizer/gguf_tokenizer.h"

#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#if __has_include("data/tokenizer/sentencepiece_tokenizer.h")
#include "data/tokenizer/sentencepiece_tokenizer.h"
#define LADDER_HAS_SENTENCEPIECE 1
#else
#define LADDER_HAS_SENTENCEPIECE 0
#endif

namespace ladder::data {
namespace {

constexpr int64_t kControl = 3, kUserDefined = 4;  // llama.cpp's token types

std::string where(const core::GgufFile& f) { return "GGUF '" + f.path() + "'"; }

// An optional special-token id: -1 when the key is absent; an error naming it when outside the vocabulary.
int32_t special_id(const core::GgufFile& f, const std::string& key, int32_t vocab_size) {
  if (!f.has(key)) return -1;
  const int64_t id = f.get_int(key);
  if (id < 0 || id >= vocab_size)
    throw std::runtime_error(where(f) + ": " + key + " = " + std::to_string(id) + " is outside the vocabulary of " +
                             std::to_string(vocab_size) + " tokens");
  return static_cast<int32_t>(id);
}

ByteLevelBpeTokenizer::PreTokenizer pre_tokenizer_of(const core::GgufFile& f) {
  const std::string key = "tokenizer.ggml.pre";
  if (!f.has(key)) return ByteLevelBpeTokenizer::PreTokenizer::gpt2;
  const std::string pre = f.get_string(key);
  if (pre == "smollm") return ByteLevelBpeTokenizer::PreTokenizer::gpt2_individual_digits;
  // llama.cpp's "default" BPE regex is not GPT-2's, but transformers' loader (the reference) reads any
  // pre-type it has no split for with GPT-2's ByteLevel.
  if (pre == "gpt2" || pre == "default") return ByteLevelBpeTokenizer::PreTokenizer::gpt2;
  throw std::runtime_error(where(f) + ": " + key + " = '" + pre +
                           "' is not a pre-tokenizer ladder knows (supported: smollm, gpt2, default)");
}

// Takes what from_gguf returns, an object or a unique_ptr, as the interface.
template <class T>
std::unique_ptr<TextTokenizer> as_text_tokenizer(T&& t) {
  if constexpr (std::is_constructible_v<std::unique_ptr<TextTokenizer>, T&&>)
    return std::unique_ptr<TextTokenizer>(std::forward<T>(t));
  else
    return std::make_unique<std::decay_t<T>>(std::forward<T>(t));
}

}  // namespace

std::unique_ptr<GgufBpeTokenizer> GgufBpeTokenizer::from_gguf(const core::GgufFile& f) {
  const auto pre = pre_tokenizer_of(f);
  const std::vector<std::string>& tokens = f.get_strings("tokenizer.ggml.tokens");
  const std::vector<std::string>& merges = f.get_strings("tokenizer.ggml.merges");
  std::vector<std::string> specials;
  if (f.has("tokenizer.ggml.token_type")) {
    const auto& tv = f.metadata().at("tokenizer.ggml.token_type").value;
    if (!std::holds_alternative<std::vector<int64_t>>(tv))
      throw std::runtime_error(where(f) + ": tokenizer.ggml.token_type is not an array of integers");
    const auto& types = std::get<std::vector<int64_t>>(tv);
    if (types.size() != tokens.size())
      throw std::runtime_error(where(f) + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                               " entries for " + std::to_string(tokens.size()) + " tokens");
    for (size_t id = 0; id < tokens.size(); ++id)
      if (types[id] == kControl || types[id] == kUserDefined) specials.push_back(tokens[id]);
  }
  std::unique_ptr<GgufBpeTokenizer> t;
  try {
    t.reset(new GgufBpeTokenizer(
        ByteLevelBpeTokenizer::from_tokens(tokens, merges, specials, pre, where(f) + " tokenizer.ggml.merges")));
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    if (what.rfind(where(f), 0) == 0) throw;
    throw std::runtime_error(where(f) + ": " + what);
  }
  const int32_t n = t->vocab_size();
  t->bos_id_ = special_id(f, "tokenizer.ggml.bos_token_id", n);
  t->eos_id_ = special_id(f, "tokenizer.ggml.eos_token_id", n);
  t->pad_id_ = special_id(f, "tokenizer.ggml.padding_token_id", n);
  t->add_bos_ = f.has("tokenizer.ggml.add_bos_token") && f.get_bool("tokenizer.ggml.add_bos_token");
  return t;
}

std::unique_ptr<TextTokenizer> make_gguf_tokenizer(const core::GgufFile& f) {
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model == "gpt2") return GgufBpeTokenizer::from_gguf(f);
  if (model == "llama") {
#if LADDER_HAS_SENTENCEPIECE
    return as_text_tokenizer(SentencePieceTokenizer::from_gguf(f));
#else
    throw std::runtime_error(where(f) + ": tokenizer.ggml.model = 'llama' (SentencePiece) is not supported by this "
                             "build (data/tokenizer/sentencepiece_tokenizer.h is missing)");
#endif
  }
  throw std::runtime_error(where(f) + ": tokenizer.ggml.model = '" + model +
                           "' is not a tokenizer ladder reads (supported: gpt2 = byte-level BPE, llama = "
                           "SentencePiece)");
}

}  // namespace ladder::data
