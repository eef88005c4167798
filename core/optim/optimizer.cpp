#include "core/optim/optimizer.h"

#include <stdexcept>

#include "core/optim/adamw.h"

namespace ladder::core {

namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

bool default_applies_weight_decay(const std::string& name) {
  if (ends_with(name, ".bias")) return false;
  for (const char* norm : {"LayerNorm", "layer_norm", "layernorm", "ln_", ".norm"})
    if (contains(name, norm)) return false;
  return true;
}

void Optimizer::set_step_count(int64_t n) {
  if (n < 0) throw std::invalid_argument(kind() + ": step count must be >= 0, got " + std::to_string(n));
  step_ = n;
}

const std::vector<std::string>& optimizer_kinds() {
  static const std::vector<std::string> kinds = {"adamw"};
  return kinds;
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& kind, ParameterRegistry& params,
                                          const OptimizerConfig& cfg) {
  if (kind == "adamw") return std::make_unique<AdamW>(params, AdamWConfig{cfg});
  std::string valid;
  for (const auto& k : optimizer_kinds()) valid += (valid.empty() ? "" : ", ") + k;
  throw std::invalid_argument("unknown optimizer '" + kind + "' (valid: " + valid + ")");
}

}  // namespace ladder::core
