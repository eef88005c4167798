#pragma once
// The architecture hyper-parameters of a Hugging Face transformer, read from its config.json.
// Supported: BERT-style encoders (model_type "bert") and GPT-2 decoders ("gpt2"); anything else is an error
// naming the file and the model_type.
#include <string>

#include "core/kernels/activations.h"

namespace ladder::core {

enum class Architecture { bert, gpt2 };

struct TransformerConfig {
  Architecture arch = Architecture::bert;
  std::string model_type;  // as written in config.json
  int vocab_size = 0;
  int hidden = 0;        // d
  int layers = 0;        // L
  int heads = 0;         // NH
  int intermediate = 0;  // FFN width
  int max_positions = 0;
  int type_vocab_size = 0;  // BERT segment embeddings (0 for GPT-2)
  float layer_norm_eps = 1e-12f;
  GeluKind gelu = GeluKind::erf;
  float hidden_dropout = 0.1f;  // BERT hidden_dropout_prob / GPT-2 resid_pdrop
  float attn_dropout = 0.1f;
  float embd_dropout = 0.1f;  // BERT uses hidden_dropout_prob for embeddings
  int pad_token_id = 0;

  int head_size() const { return hidden / heads; }
  // Reads and validates `path` (errors name the file and the key).
  static TransformerConfig from_json_file(const std::string& path);
};

}  // namespace ladder::core
