#pragma once
// The architecture hyper-parameters of a Hugging Face transformer, read from its config.json.
// Supported: BERT-style encoders (model_type "bert"), GPT-2 decoders ("gpt2") and the Llama family's
// decoders ("llama", and "gemma3_text"/"gemma3" for Gemma 3: the same block with its variations as fields
// below); anything else is an error naming the file and the model_type. GGUF files give the same fields
// from their metadata (core/backbones/gguf_config.h).
#include <string>
#include <vector>

#include "core/kernels/activations.h"

namespace ladder::core {

enum class Architecture { bert, gpt2, llama, gemma3 };

// The gate activation of a gated FFN: SwiGLU (Llama) or GeGLU with tanh GELU (Gemma).
enum class GateActivation { silu, gelu_tanh };

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

  // Llama family (arch llama / gemma3). Heads of width head_dim (hidden / heads unless the model says);
  // kv_heads <= heads share K/V (grouped-query attention).
  int kv_heads = 0;
  int head_dim = 0;
  float rms_norm_eps = 1e-6f;
  bool rms_norm_unit_offset = false;  // Gemma: RMSNorm scales by (1 + w)
  GateActivation gate = GateActivation::silu;
  float rope_theta = 10000.0f;        // RoPE base of global layers
  float rope_local_theta = 0.0f;      // RoPE base of sliding-window layers (0: rope_theta)
  float rope_linear_factor = 1.0f;    // rope_scaling {"rope_type": "linear", "factor"}: positions divided by it
  int sliding_window = 0;             // keys a sliding-window layer sees (0: none)
  std::vector<bool> layer_is_local;   // per layer: sliding-window (true) or global attention; empty: all global
  bool qk_norm = false;               // Gemma 3: RMSNorm of each head's q and k before RoPE
  bool sandwich_norm = false;         // Gemma: norms after attention and after the FFN as well as before
  float embedding_scale = 1.0f;       // Gemma: embeddings times sqrt(hidden) (rounded as the model's dtype)
  float query_scale = 0.0f;           // attention scale (0: 1/sqrt(head_dim)); Gemma 3: query_pre_attn_scalar^-1/2
  bool tie_word_embeddings = true;
  int bos_token_id = -1, eos_token_id = -1;

  bool llama_family() const { return arch == Architecture::llama || arch == Architecture::gemma3; }

  int head_size() const { return head_dim > 0 ? head_dim : hidden / heads; }
  int kv_head_count() const { return kv_heads > 0 ? kv_heads : heads; }
  // Reads and validates `path` (errors name the file and the key).
  static TransformerConfig from_json_file(const std::string& path);
};

// Checks a Llama-family config's shapes (heads a multiple of KV heads, even head width, one type per
// layer); errors start with `where` (the file).
void validate_llama_family(const TransformerConfig& c, const std::string& where);

}  // namespace ladder::core
