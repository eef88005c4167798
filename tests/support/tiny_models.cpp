#include "tests/support/tiny_models.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "core/io/safetensors.h"
#include "tests/support/gradcheck.h"

namespace ladder::test {

using core::MemCategory;
using core::Shape;
using core::Tensor;

namespace {
struct Writer {
  unsigned seed;
  std::vector<std::pair<std::string, Tensor>> tensors;
  void add(const std::string& name, const Shape& s, float scale, float offset = 0.0f) {
    auto v = randn(size_t(core::shape_numel(s)), seed++, scale);
    for (auto& x : v) x += offset;
    tensors.emplace_back(name, Tensor::from_floats(v, s, MemCategory::workspace));
  }
};
}  // namespace

std::string temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("ladder_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

std::string write_tiny_bert(const std::string& dir, unsigned seed, float dropout) {
  const int C = 16, F = 32, L = 2, V = 50, P = 24;
  nlohmann::json cfg = {{"model_type", "bert"}, {"vocab_size", V}, {"hidden_size", C}, {"num_hidden_layers", L},
                        {"num_attention_heads", 2}, {"intermediate_size", F}, {"max_position_embeddings", P},
                        {"type_vocab_size", 2}, {"layer_norm_eps", 1e-12}, {"hidden_act", "gelu"},
                        {"hidden_dropout_prob", dropout}, {"attention_probs_dropout_prob", dropout}};
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  Writer w{seed, {}};
  w.add("embeddings.word_embeddings.weight", {V, C}, 0.5f);
  w.add("embeddings.position_embeddings.weight", {P, C}, 0.5f);
  w.add("embeddings.token_type_embeddings.weight", {2, C}, 0.5f);
  w.add("embeddings.LayerNorm.weight", {C}, 0.1f, 1.0f);
  w.add("embeddings.LayerNorm.bias", {C}, 0.1f);
  for (int i = 0; i < L; ++i) {
    std::string p = "encoder.layer." + std::to_string(i) + ".";
    for (const char* n : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
      w.add(p + n + ".weight", {C, C}, 0.3f);
      w.add(p + n + ".bias", {C}, 0.1f);
    }
    w.add(p + "attention.output.LayerNorm.weight", {C}, 0.1f, 1.0f);
    w.add(p + "attention.output.LayerNorm.bias", {C}, 0.1f);
    w.add(p + "intermediate.dense.weight", {F, C}, 0.3f);
    w.add(p + "intermediate.dense.bias", {F}, 0.1f);
    w.add(p + "output.dense.weight", {C, F}, 0.2f);
    w.add(p + "output.dense.bias", {C}, 0.1f);
    w.add(p + "output.LayerNorm.weight", {C}, 0.1f, 1.0f);
    w.add(p + "output.LayerNorm.bias", {C}, 0.1f);
  }
  w.add("pooler.dense.weight", {C, C}, 0.3f);
  w.add("pooler.dense.bias", {C}, 0.1f);
  core::write_safetensors(dir + "/model.safetensors", w.tensors);
  return dir;
}

std::string write_tiny_gpt2(const std::string& dir, unsigned seed, float dropout) {
  const int C = 16, L = 2, V = 50, P = 24;
  nlohmann::json cfg = {{"model_type", "gpt2"}, {"vocab_size", V}, {"n_embd", C}, {"n_layer", L}, {"n_head", 2},
                        {"n_positions", P}, {"activation_function", "gelu_new"}, {"layer_norm_epsilon", 1e-5},
                        {"resid_pdrop", dropout}, {"embd_pdrop", dropout}, {"attn_pdrop", dropout}};
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  Writer w{seed, {}};
  w.add("wte.weight", {V, C}, 0.5f);
  w.add("wpe.weight", {P, C}, 0.3f);
  for (int i = 0; i < L; ++i) {
    std::string p = "h." + std::to_string(i) + ".";
    w.add(p + "ln_1.weight", {C}, 0.1f, 1.0f);
    w.add(p + "ln_1.bias", {C}, 0.1f);
    w.add(p + "attn.c_attn.weight", {C, 3 * C}, 0.3f);
    w.add(p + "attn.c_attn.bias", {3 * C}, 0.1f);
    w.add(p + "attn.c_proj.weight", {C, C}, 0.3f);
    w.add(p + "attn.c_proj.bias", {C}, 0.1f);
    w.add(p + "ln_2.weight", {C}, 0.1f, 1.0f);
    w.add(p + "ln_2.bias", {C}, 0.1f);
    w.add(p + "mlp.c_fc.weight", {C, 4 * C}, 0.3f);
    w.add(p + "mlp.c_fc.bias", {4 * C}, 0.1f);
    w.add(p + "mlp.c_proj.weight", {4 * C, C}, 0.2f);
    w.add(p + "mlp.c_proj.bias", {C}, 0.1f);
  }
  w.add("ln_f.weight", {C}, 0.1f, 1.0f);
  w.add("ln_f.bias", {C}, 0.1f);
  core::write_safetensors(dir + "/model.safetensors", w.tensors);
  return dir;
}

std::string write_tiny_llama(const std::string& dir, unsigned seed, bool gemma, float attn_dropout) {
  const int C = 16, L = 2, V = 50, P = 24, NH = 4, KVH = 2, HS = gemma ? 12 : 4, F = 24;
  nlohmann::json cfg = {{"model_type", gemma ? "gemma3_text" : "llama"}, {"vocab_size", V}, {"hidden_size", C},
                        {"num_hidden_layers", L}, {"num_attention_heads", NH}, {"num_key_value_heads", KVH},
                        {"head_dim", HS}, {"intermediate_size", F}, {"max_position_embeddings", P},
                        {"rms_norm_eps", 1e-6}, {"attention_dropout", attn_dropout}, {"tie_word_embeddings", gemma}};
  if (gemma) {
    cfg["sliding_window"] = 5;
    cfg["layer_types"] = {"sliding_attention", "full_attention"};
  }
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  Writer w{seed, {}};
  w.add("model.embed_tokens.weight", {V, C}, 0.5f);
  for (int i = 0; i < L; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    const float one = gemma ? 0.0f : 1.0f;
    w.add(p + "input_layernorm.weight", {C}, 0.1f, one);
    w.add(p + "post_attention_layernorm.weight", {C}, 0.1f, one);
    if (gemma) {
      w.add(p + "pre_feedforward_layernorm.weight", {C}, 0.1f, one);
      w.add(p + "post_feedforward_layernorm.weight", {C}, 0.1f, one);
      w.add(p + "self_attn.q_norm.weight", {HS}, 0.1f, one);
      w.add(p + "self_attn.k_norm.weight", {HS}, 0.1f, one);
    }
    w.add(p + "self_attn.q_proj.weight", {NH * HS, C}, 0.3f);
    w.add(p + "self_attn.k_proj.weight", {KVH * HS, C}, 0.3f);
    w.add(p + "self_attn.v_proj.weight", {KVH * HS, C}, 0.3f);
    w.add(p + "self_attn.o_proj.weight", {C, NH * HS}, 0.3f);
    w.add(p + "mlp.gate_proj.weight", {F, C}, 0.3f);
    w.add(p + "mlp.up_proj.weight", {F, C}, 0.3f);
    w.add(p + "mlp.down_proj.weight", {C, F}, 0.2f);
  }
  w.add("model.norm.weight", {C}, 0.1f, gemma ? 0.0f : 1.0f);
  if (!gemma) w.add("lm_head.weight", {V, C}, 0.3f);
  core::write_safetensors(dir + "/model.safetensors", w.tensors);
  return dir;
}

}  // namespace ladder::test
