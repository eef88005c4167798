#include "core/backbones/gguf_model.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <vector>

namespace ladder::core {

namespace {
int positive(const GgufFile& f, const std::string& key) {
  const int64_t v = f.get_int(key);
  if (v <= 0 || v > (int64_t(1) << 31))
    throw std::runtime_error(f.path() + ": metadata key '" + key + "' = " + std::to_string(v) + " is not a valid size");
  return int(v);
}
int int_or(const GgufFile& f, const std::string& key, int dflt) { return f.has(key) ? int(f.get_int(key)) : dflt; }
float float_or(const GgufFile& f, const std::string& key, float dflt) { return f.has(key) ? float(f.get_float(key)) : dflt; }

// llama.cpp's converter (LlamaModel.permute) interleaves each head's two rotary halves:
// GGUF row h*HS + 2i + j holds Hugging Face row h*HS + j*HS/2 + i.
void unpermute_rows(float* dst, const float* src, int heads, int HS, int cols) {
  const int half = HS / 2;
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < half; ++i)
      for (int j = 0; j < 2; ++j)
        std::memcpy(dst + (size_t(h) * HS + size_t(j) * half + i) * cols, src + (size_t(h) * HS + 2 * i + j) * cols,
                    sizeof(float) * cols);
}
}  // namespace

bool is_gguf_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

TransformerConfig config_from_gguf(const GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  TransformerConfig c;
  if (arch == "llama") c.arch = Architecture::llama;
  else if (arch == "gemma3") c.arch = Architecture::gemma3;
  else
    throw std::runtime_error(f.path() + ": general.architecture \"" + arch + "\" is not supported (llama and gemma3 are)");
  c.model_type = arch == "gemma3" ? "gemma3_text" : "llama";
  const std::string p = arch + ".";
  c.layers = positive(f, p + "block_count");
  c.hidden = positive(f, p + "embedding_length");
  c.intermediate = positive(f, p + "feed_forward_length");
  c.heads = positive(f, p + "attention.head_count");
  c.kv_heads = f.has(p + "attention.head_count_kv") ? positive(f, p + "attention.head_count_kv") : c.heads;
  c.head_dim = f.has(p + "attention.key_length") ? positive(f, p + "attention.key_length") : c.hidden / c.heads;
  if (f.has(p + "attention.value_length") && positive(f, p + "attention.value_length") != c.head_dim)
    throw std::runtime_error(f.path() + ": attention.key_length and value_length differ, which ladder does not support");
  c.max_positions = int_or(f, p + "context_length", 2048);
  c.rms_norm_eps = float_or(f, p + "attention.layer_norm_rms_epsilon", 1e-6f);
  c.rope_theta = float_or(f, p + "rope.freq_base", c.arch == Architecture::gemma3 ? 1000000.0f : 10000.0f);
  if (f.has(p + "rope.scaling.type")) {
    const std::string t = f.get_string(p + "rope.scaling.type");
    if (t == "linear") c.rope_linear_factor = float_or(f, p + "rope.scaling.factor", 1.0f);
    else if (t != "none")
      throw std::runtime_error(f.path() + ": " + p + "rope.scaling.type \"" + t + "\" is not supported (none and linear are)");
  }
  c.hidden_dropout = c.attn_dropout = c.embd_dropout = 0.0f;
  c.tie_word_embeddings = true;
  for (auto& t : f.tensors())
    if (t.name == "output.weight") c.tie_word_embeddings = false;
  c.vocab_size = f.has(p + "vocab_size") ? positive(f, p + "vocab_size") : int(f.tensor("token_embd.weight").shape[0]);
  c.bos_token_id = int_or(f, "tokenizer.ggml.bos_token_id", -1);
  c.eos_token_id = int_or(f, "tokenizer.ggml.eos_token_id", -1);
  c.pad_token_id = int_or(f, "tokenizer.ggml.padding_token_id", c.eos_token_id >= 0 ? c.eos_token_id : 0);
  if (c.arch == Architecture::gemma3) {
    c.gate = GateActivation::gelu_tanh;
    c.rms_norm_unit_offset = true;
    c.qk_norm = true;
    c.sandwich_norm = true;
    c.embedding_scale = std::sqrt(float(c.hidden));
    // transformers' Gemma 3 default (query_pre_attn_scalar = head_dim); GGUF does not record it.
    c.query_scale = 1.0f / std::sqrt(float(c.head_dim));
    c.rope_local_theta = 10000.0f;  // rope_local_base_freq: fixed for Gemma 3, not in the metadata
    c.sliding_window = int_or(f, p + "attention.sliding_window", 0);
    // Gemma 3's pattern: every sixth layer global (sliding_window_pattern = 6).
    for (int i = 0; i < c.layers; ++i) c.layer_is_local.push_back((i + 1) % 6 != 0);
  }
  validate_llama_family(c, f.path());
  return c;
}

std::string hf_name_of_gguf_tensor(const std::string& g, Architecture arch) {
  static const std::map<std::string, std::string> top = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"output.weight", "lm_head.weight"}};
  if (auto it = top.find(g); it != top.end()) return it->second;
  if (g.rfind("blk.", 0) != 0) return "";
  const size_t dot = g.find('.', 4);
  if (dot == std::string::npos) return "";
  const std::string layer = g.substr(4, dot - 4), rest = g.substr(dot + 1);
  const bool gemma = arch == Architecture::gemma3;
  static const std::map<std::string, std::string> common = {
      {"attn_q.weight", "self_attn.q_proj.weight"},       {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},       {"attn_output.weight", "self_attn.o_proj.weight"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"}, {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},       {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},       {"attn_norm.weight", "input_layernorm.weight"},
      {"post_attention_norm.weight", "post_attention_layernorm.weight"},
      {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"}};
  std::string hf;
  if (rest == "ffn_norm.weight") hf = gemma ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight";
  else if (auto it = common.find(rest); it != common.end()) hf = it->second;
  else return "";
  return "model.layers." + layer + "." + hf;
}

SafetensorsCheckpoint checkpoint_from_gguf(const GgufFile& f, const TransformerConfig& cfg) {
  SafetensorsImageBuilder image;
  std::vector<std::pair<const GgufTensorInfo*, std::string>> wanted;
  for (auto& t : f.tensors()) {
    const std::string hf = hf_name_of_gguf_tensor(t.name, cfg.arch);
    if (hf.empty()) continue;
    image.declare(hf, t.shape);
    wanted.emplace_back(&t, hf);
  }
  image.allocate(f.path());
  std::vector<float> tmp;
  for (auto& [t, hf] : wanted) {
    float* dst = image.data(hf);
    const bool q = hf.find("self_attn.q_proj.") != std::string::npos, k = hf.find("self_attn.k_proj.") != std::string::npos;
    if (cfg.arch == Architecture::llama && (q || k)) {
      tmp = f.dequantize(*t);
      const int heads = q ? cfg.heads : cfg.kv_head_count();
      if (t->shape.size() != 2 || t->shape[0] != int64_t(heads) * cfg.head_size())
        throw std::runtime_error(f.path() + ": tensor '" + t->name + "' has " + std::to_string(t->shape[0]) +
                                 " rows, not heads x head width = " + std::to_string(heads * cfg.head_size()));
      unpermute_rows(dst, tmp.data(), heads, cfg.head_size(), int(t->shape[1]));
      continue;
    }
    dequantize_ggml(t->type, f.tensor_data(*t), dst, t->numel());
    if (cfg.arch == Architecture::gemma3 && hf.size() > 11 && hf.compare(hf.size() - 11, 11, "norm.weight") == 0)
      for (int64_t i = 0; i < t->numel(); ++i) dst[i] -= 1.0f;
  }
  return SafetensorsCheckpoint::from_file(image.finish(), f.path());
}

}  // namespace ladder::core
