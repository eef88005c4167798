#include "adapters/method.h"

#include "adapters/adapter_methods.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/kernels/dropout.h"

namespace ladder::adapters {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

// Full fine-tuning: every backbone parameter trains (the baseline).
class FullMethod : public Method {
 public:
  explicit FullMethod(core::Backbone& b) { b.params().set_all_trainable(true); }
  std::string name() const override { return "full"; }
  bool mergeable() const override { return true; }  // nothing to fold: the weights are the model
};

// BitFit (Ben Zaken et al. 2022): only the bias terms of the backbone train (LayerNorm biases included).
class BitFitMethod : public Method {
 public:
  explicit BitFitMethod(core::Backbone& b) {
    int n = 0;
    for (auto& p : b.params().all())
      if (p->name.size() > 5 && p->name.compare(p->name.size() - 5, 5, ".bias") == 0) {
        b.params().set_trainable(p->name, true);
        ++n;
      }
    if (n == 0) throw std::runtime_error("bitfit: the backbone has no bias parameters");
  }
  std::string name() const override { return "bitfit"; }
  bool mergeable() const override { return true; }  // the trained biases are the model's own
};

class LoraMethod : public BranchMethod<LoraBranch> {
 public:
  LoraMethod(core::Backbone& b, const MethodOptions& opt) {
    for (auto& [name, lin] : select_linears(b, opt.lora_targets))
      branches_.push_back(std::make_unique<LoraBranch>(b.params(), name, *lin, opt.lora, opt.seed));
  }
  std::string name() const override { return "lora"; }
};

// Prompt tuning (Lester et al. 2021): P trainable soft-token embeddings; the backbone stays frozen. Rows are
// initialised from the embeddings of P vocabulary tokens drawn with the run seed (the paper's
// "sampled vocabulary" init).
class PromptMethod : public Method {
 public:
  PromptMethod(core::Backbone& b, const MethodOptions& opt) : P_(opt.prompt_tokens) {
    if (P_ <= 0) throw std::invalid_argument("prompt: method.prompt_tokens must be positive");
    const int C = b.config().hidden, V = b.config().vocab_size;
    const bool gpt2 = b.config().arch == core::Architecture::gpt2;
    const core::Parameter& vocab = b.params().at(gpt2 ? "wte.weight" : "embeddings.word_embeddings.weight");
    std::vector<float> rows(size_t(P_) * C);
    std::mt19937_64 g(opt.seed ^ 0x9e0417ull);
    // Under tensor parallelism each rank holds some vocabulary rows: read the whole table (once, at start-up).
    const auto table = core::gather_whole(vocab.value, vocab.shard, b.tensor_parallel(), core::MemCategory::workspace).to_floats();
    for (int p = 0; p < P_; ++p) {
      const size_t id = size_t(g() % uint64_t(V));
      std::copy(table.begin() + long(id * C), table.begin() + long((id + 1) * C), rows.begin() + long(size_t(p) * C));
    }
    auto& prm = b.params().add("prompt_embeddings.weight",
                               core::Tensor::from_floats(rows, {P_, C}, core::MemCategory::trainable_weights));
    prm.trainable = true;
    b.set_prompt_embeddings(&prm);
  }
  std::string name() const override { return "prompt"; }
  int prompt_tokens() const override { return P_; }

 private:
  int P_;
};

}  // namespace

int total_prompt_tokens(const std::vector<std::unique_ptr<Method>>& methods) {
  int n = 0;
  for (auto& m : methods) n += m->prompt_tokens();
  return n;
}

void insert_prompt_tokens(const std::vector<std::unique_ptr<Method>>& methods, const core::Backbone& backbone,
                          std::vector<int32_t>& ids, std::vector<int32_t>& type_ids, std::vector<int32_t>& mask) {
  const int P = total_prompt_tokens(methods);
  if (P == 0) return;
  const bool gpt2 = backbone.config().arch == core::Architecture::gpt2;
  const long at = gpt2 ? 0 : std::min<long>(1, long(ids.size()));  // after [CLS]
  std::vector<int32_t> prompt(static_cast<size_t>(P));
  for (int p = 0; p < P; ++p) prompt[size_t(p)] = backbone.config().vocab_size + p;
  ids.insert(ids.begin() + at, prompt.begin(), prompt.end());
  type_ids.insert(type_ids.begin() + std::min<long>(at, long(type_ids.size())), size_t(P), 0);
  mask.insert(mask.begin() + std::min<long>(at, long(mask.size())), size_t(P), 1);
}

std::vector<std::pair<std::string, core::Linear*>> select_linears(core::Backbone& backbone,
                                                                  const std::vector<std::string>& targets) {
  const bool gpt2 = backbone.config().arch == core::Architecture::gpt2;
  // target -> suffix of the Hugging Face module name
  const std::map<std::string, std::vector<std::string>> bert = {
      {"query", {".attention.self.query"}}, {"key", {".attention.self.key"}}, {"value", {".attention.self.value"}},
      {"qkv", {".attention.self.query", ".attention.self.key", ".attention.self.value"}},
      {"attention_output", {".attention.output.dense"}}, {"ffn_in", {".intermediate.dense"}}, {"ffn_out", {".output.dense"}}};
  const std::map<std::string, std::vector<std::string>> gpt = {
      {"qkv", {".attn.c_attn"}}, {"attention_output", {".attn.c_proj"}}, {"ffn_in", {".mlp.c_fc"}}, {"ffn_out", {".mlp.c_proj"}}};
  const auto& table = gpt2 ? gpt : bert;
  std::set<std::string> suffixes;
  for (const auto& t : targets) {
    auto it = table.find(t);
    if (it == table.end()) {
      std::vector<std::string> valid;
      for (auto& [k, v] : table) valid.push_back(k);
      std::string hint = gpt2 && (t == "query" || t == "key" || t == "value")
                             ? " (GPT-2 fuses query, key and value in attn.c_attn: use qkv)"
                             : "";
      throw std::invalid_argument("unknown target module '" + t + "' for " + backbone.config().model_type +
                                  hint + "; valid: " + join(valid));
    }
    suffixes.insert(it->second.begin(), it->second.end());
  }
  std::vector<std::pair<std::string, core::Linear*>> out;
  for (auto& [name, lin] : backbone.linear_modules())
    for (const auto& s : suffixes)
      if (name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
          // ".output.dense" must not match ".attention.output.dense"
          !(s == ".output.dense" && name.find(".attention.output.dense") != std::string::npos))
        out.emplace_back(name, lin);
  if (out.empty()) throw std::invalid_argument("no Linear module matches the targets " + join(targets));
  return out;
}

DyLoraMethod::DyLoraMethod(core::Backbone& backbone, const MethodOptions& opt) : opt_(opt), rank_(opt.lora.r) {
  for (auto& [name, lin] : select_linears(backbone, opt.lora_targets))
    branches_.push_back(std::make_unique<LoraBranch>(backbone.params(), name, *lin, opt.lora, opt.seed));
}

void DyLoraMethod::on_step_begin(uint64_t global_step) {
  // Uniform{1..r_max} from the step alone: all data-parallel ranks agree without communicating.
  const float u = core::counter_uniform(core::derive_seed(opt_.seed, 0xd71'07a0ull), global_step);
  rank_ = std::min(opt_.lora.r, 1 + int(u * float(opt_.lora.r)));
  for (auto& br : branches_) br->set_active_rank(rank_, opt_.dylora_frozen);
}

void DyLoraMethod::set_rank(int b) {
  rank_ = b;
  for (auto& br : branches_) br->set_active_rank(b, false);
}


DyLoraMethod* find_dylora(const std::vector<std::unique_ptr<Method>>& methods) {
  for (auto& m : methods)
    if (auto* d = dynamic_cast<DyLoraMethod*>(m.get())) return d;
  return nullptr;
}

std::vector<std::string> method_names() {
  std::vector<std::string> v = {"full", "bitfit", "lora", "dylora", "prompt"};
  for (auto& n : adapter_method_names()) v.push_back(n);
  return v;
}

std::vector<std::unique_ptr<Method>> apply_methods(core::Backbone& backbone, const std::string& spec,
                                                   const MethodOptions& opt) {
  // Split on '+', matching known names greedily so that "compacter++" and "compacter+++lora" parse.
  auto valid_names = method_names();
  std::sort(valid_names.begin(), valid_names.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  std::vector<std::string> names;
  size_t i = 0;
  while (i < spec.size()) {
    std::string item;
    for (auto& v : valid_names)
      if (spec.compare(i, v.size(), v) == 0 && (i + v.size() == spec.size() || spec[i + v.size()] == '+')) {
        item = v;
        break;
      }
    if (item.empty()) {
      size_t end = spec.find('+', i);
      item = spec.substr(i, end == std::string::npos ? std::string::npos : end - i);
      if (item.empty()) throw std::invalid_argument("empty method name in '" + spec + "'");
    }
    if (std::find(names.begin(), names.end(), item) != names.end())
      throw std::invalid_argument("method '" + item + "' given twice in '" + spec + "'");
    names.push_back(item);
    i += item.size();
    if (i < spec.size()) {
      ++i;  // the '+'
      if (i == spec.size()) throw std::invalid_argument("empty method name at the end of '" + spec + "'");
    }
  }
  if (names.empty()) throw std::invalid_argument("no method given");
  const auto valid = method_names();
  for (auto& n : names)
    if (std::find(valid.begin(), valid.end(), n) == valid.end())
      throw std::invalid_argument("unknown method '" + n + "'; valid: " + join(valid));
  auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  // Combinations that cannot work, named.
  if (has("full") && names.size() > 1)
    throw std::invalid_argument("'full' trains every weight already; it cannot be combined with '" +
                                (names[0] == "full" ? names[1] : names[0]) + "'");
  if (has("lora") && has("dylora"))
    throw std::invalid_argument("'lora' and 'dylora' both put a low-rank branch on the same Linears; pick one");
  std::vector<std::unique_ptr<Method>> out;
  for (auto& n : names) {
    if (n == "full") out.push_back(std::make_unique<FullMethod>(backbone));
    else if (n == "bitfit") out.push_back(std::make_unique<BitFitMethod>(backbone));
    else if (n == "lora") out.push_back(std::make_unique<LoraMethod>(backbone, opt));
    else if (n == "dylora") out.push_back(std::make_unique<DyLoraMethod>(backbone, opt));
    else if (n == "prompt") out.push_back(std::make_unique<PromptMethod>(backbone, opt));
    else out.push_back(make_adapter_method(n, backbone, opt));
  }
  return out;
}

}  // namespace ladder::adapters
