#include "core/backbones/transformer_config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace ladder::core {

using json = nlohmann::json;

namespace {
struct Reader {
  const json& j;
  const std::string& path;
  int i(const char* key) const {
    if (!j.contains(key) || !j[key].is_number_integer())
      throw std::runtime_error(path + ": missing or non-integer key \"" + key + "\"");
    int v = j[key].get<int>();
    if (v <= 0) throw std::runtime_error(path + ": key \"" + key + "\" must be positive");
    return v;
  }
  int i_or(const char* key, int dflt) const {
    return j.contains(key) && j[key].is_number_integer() ? j[key].get<int>() : dflt;
  }
  float f_or(const char* key, float dflt) const { return j.contains(key) && j[key].is_number() ? j[key].get<float>() : dflt; }
  std::string s_or(const char* key, const std::string& dflt) const {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : dflt;
  }
};

GeluKind parse_activation(const std::string& act, const std::string& path) {
  if (act == "gelu") return GeluKind::erf;
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") return GeluKind::tanh;
  throw std::runtime_error(path + ": unsupported activation \"" + act + "\" (ladder supports gelu and gelu_new)");
}
// rope_theta as transformers 4 writes it, or inside rope_parameters as transformers 5 does (per layer type
// for Gemma 3).
float rope_base(const json& j, const char* layer_type, float dflt) {
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    const json& rp = j["rope_parameters"];
    const json& r = rp.contains(layer_type) ? rp[layer_type] : rp;
    if (r.contains("rope_theta") && r["rope_theta"].is_number()) return r["rope_theta"].get<float>();
  }
  return j.contains("rope_theta") && j["rope_theta"].is_number() ? j["rope_theta"].get<float>() : dflt;
}

void read_rope_scaling(TransformerConfig& c, const json& j, const std::string& path) {
  const json* rs = nullptr;
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) rs = &j["rope_scaling"];
  else if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    const json& rp = j["rope_parameters"];
    rs = rp.contains("full_attention") ? &rp["full_attention"] : &rp;
  }
  if (!rs) return;
  const std::string type = rs->value("rope_type", rs->value("type", std::string("default")));
  if (type == "default") return;
  if (type == "linear") {
    c.rope_linear_factor = rs->value("factor", 1.0f);
    return;
  }
  throw std::runtime_error(path + ": rope scaling type \"" + type + "\" is not supported (default and linear are)");
}

void read_llama_family(TransformerConfig& c, const Reader& r, bool gemma) {
  const json& j = r.j;
  c.arch = gemma ? Architecture::gemma3 : Architecture::llama;
  c.vocab_size = r.i("vocab_size");
  c.hidden = r.i("hidden_size");
  c.layers = r.i("num_hidden_layers");
  c.heads = r.i("num_attention_heads");
  c.kv_heads = r.i_or("num_key_value_heads", c.heads);
  c.head_dim = r.i_or("head_dim", c.hidden / c.heads);
  c.intermediate = r.i("intermediate_size");
  c.max_positions = r.i_or("max_position_embeddings", 2048);
  c.rms_norm_eps = r.f_or("rms_norm_eps", 1e-6f);
  c.hidden_dropout = c.embd_dropout = 0.0f;
  c.attn_dropout = r.f_or("attention_dropout", 0.0f);
  c.tie_word_embeddings = j.contains("tie_word_embeddings") && j["tie_word_embeddings"].is_boolean()
                              ? j["tie_word_embeddings"].get<bool>()
                              : gemma;
  c.bos_token_id = r.i_or("bos_token_id", -1);
  c.eos_token_id = j.contains("eos_token_id") && j["eos_token_id"].is_array() && !j["eos_token_id"].empty()
                       ? j["eos_token_id"][0].get<int>()
                       : r.i_or("eos_token_id", -1);
  c.pad_token_id = r.i_or("pad_token_id", c.eos_token_id >= 0 ? c.eos_token_id : 0);
  const std::string act = r.s_or(gemma ? "hidden_activation" : "hidden_act", gemma ? "gelu_pytorch_tanh" : "silu");
  if (act == "silu") c.gate = GateActivation::silu;
  else if (act == "gelu_pytorch_tanh" || act == "gelu_new") c.gate = GateActivation::gelu_tanh;
  else throw std::runtime_error(r.path + ": unsupported gate activation \"" + act + "\" (silu and gelu_pytorch_tanh are)");
  for (const char* key : {"attention_bias", "mlp_bias"})
    if (j.contains(key) && j[key].is_boolean() && j[key].get<bool>())
      throw std::runtime_error(r.path + ": \"" + std::string(key) + "\": true is not supported (Llama-family Linears without biases)");
  read_rope_scaling(c, j, r.path);
  if (!gemma) {
    c.rope_theta = rope_base(j, "full_attention", 10000.0f);
    return;
  }
  c.rms_norm_unit_offset = true;
  c.qk_norm = true;
  c.sandwich_norm = true;
  c.embedding_scale = std::sqrt(float(c.hidden));
  c.query_scale = 1.0f / std::sqrt(r.f_or("query_pre_attn_scalar", float(c.head_dim)));
  c.rope_theta = rope_base(j, "full_attention", 1000000.0f);
  c.rope_local_theta = j.contains("rope_local_base_freq") && j["rope_local_base_freq"].is_number()
                           ? j["rope_local_base_freq"].get<float>()
                           : rope_base(j, "sliding_attention", 10000.0f);
  c.sliding_window = r.i_or("sliding_window", 0);
  if (j.contains("layer_types") && j["layer_types"].is_array()) {
    for (auto& t : j["layer_types"]) c.layer_is_local.push_back(t.get<std::string>() == "sliding_attention");
  } else {
    const int pattern = r.i_or("sliding_window_pattern", 6);  // every pattern-th layer is global
    for (int i = 0; i < c.layers; ++i) c.layer_is_local.push_back((i + 1) % pattern != 0);
  }
  for (const char* key : {"final_logit_softcapping", "attn_logit_softcapping"})
    if (j.contains(key) && j[key].is_number())
      throw std::runtime_error(r.path + ": \"" + std::string(key) + "\" is set: logit soft-capping is not supported");
}

}  // namespace

void validate_llama_family(const TransformerConfig& c, const std::string& where) {
  if (c.heads % c.kv_head_count() != 0)
    throw std::runtime_error(where + ": " + std::to_string(c.heads) + " attention heads are not a multiple of " +
                             std::to_string(c.kv_head_count()) + " key/value heads");
  if (c.head_size() % 2 != 0)
    throw std::runtime_error(where + ": head width " + std::to_string(c.head_size()) + " is odd (RoPE rotates pairs)");
  if (!c.layer_is_local.empty() && int(c.layer_is_local.size()) != c.layers)
    throw std::runtime_error(where + ": " + std::to_string(c.layer_is_local.size()) + " layer types for " +
                             std::to_string(c.layers) + " layers");
}

TransformerConfig TransformerConfig::from_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open model config");
  json j;
  try {
    j = json::parse(in);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": invalid JSON: " + e.what());
  }
  Reader r{j, path};
  TransformerConfig c;
  c.model_type = r.s_or("model_type", "");
  if (c.model_type == "bert") {
    c.arch = Architecture::bert;
    c.vocab_size = r.i("vocab_size");
    c.hidden = r.i("hidden_size");
    c.layers = r.i("num_hidden_layers");
    c.heads = r.i("num_attention_heads");
    c.intermediate = r.i("intermediate_size");
    c.max_positions = r.i("max_position_embeddings");
    c.type_vocab_size = r.i_or("type_vocab_size", 2);
    c.layer_norm_eps = r.f_or("layer_norm_eps", 1e-12f);
    c.gelu = parse_activation(r.s_or("hidden_act", "gelu"), path);
    c.hidden_dropout = r.f_or("hidden_dropout_prob", 0.1f);
    c.attn_dropout = r.f_or("attention_probs_dropout_prob", 0.1f);
    c.embd_dropout = c.hidden_dropout;
    c.pad_token_id = r.i_or("pad_token_id", 0);
    std::string pos = r.s_or("position_embedding_type", "absolute");
    if (pos != "absolute")
      throw std::runtime_error(path + ": position_embedding_type \"" + pos + "\" is not supported (only absolute)");
  } else if (c.model_type == "gpt2") {
    c.arch = Architecture::gpt2;
    c.vocab_size = r.i("vocab_size");
    c.hidden = r.i("n_embd");
    c.layers = r.i("n_layer");
    c.heads = r.i("n_head");
    c.intermediate = r.i_or("n_inner", 0) > 0 ? r.i("n_inner") : 4 * c.hidden;
    c.max_positions = r.i("n_positions");
    c.type_vocab_size = 0;
    c.layer_norm_eps = r.f_or("layer_norm_epsilon", 1e-5f);
    c.gelu = parse_activation(r.s_or("activation_function", "gelu_new"), path);
    c.hidden_dropout = r.f_or("resid_pdrop", 0.1f);
    c.attn_dropout = r.f_or("attn_pdrop", 0.1f);
    c.embd_dropout = r.f_or("embd_pdrop", 0.1f);
    c.pad_token_id = r.i_or("eos_token_id", 50256);
  } else if (c.model_type == "llama" || c.model_type == "gemma3_text" || c.model_type == "gemma3") {
    // A Gemma3ForConditionalGeneration directory nests the language model's config under text_config.
    const json& t = c.model_type == "gemma3" && j.contains("text_config") ? j["text_config"] : j;
    read_llama_family(c, Reader{t, path}, c.model_type != "llama");
    validate_llama_family(c, path);
    return c;
  } else {
    throw std::runtime_error(path + ": unsupported architecture model_type \"" + c.model_type +
                             "\" (ladder supports \"bert\", \"gpt2\", \"llama\" and \"gemma3_text\")");
  }
  if (c.hidden % c.heads != 0)
    throw std::runtime_error(path + ": hidden size " + std::to_string(c.hidden) + " is not divisible by " +
                             std::to_string(c.heads) + " heads");
  return c;
}

}  // namespace ladder::core
