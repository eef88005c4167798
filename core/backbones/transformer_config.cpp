#include "core/backbones/transformer_config.h"

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
}  // namespace

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
  } else {
    throw std::runtime_error(path + ": unsupported architecture model_type \"" + c.model_type +
                             "\" (ladder supports \"bert\" and \"gpt2\")");
  }
  if (c.hidden % c.heads != 0)
    throw std::runtime_error(path + ": hidden size " + std::to_string(c.hidden) + " is not divisible by " +
                             std::to_string(c.heads) + " heads");
  return c;
}

}  // namespace ladder::core
