#include "adapters/target_linears.h"

#include <set>
#include <stdexcept>

namespace ladder::adapters {

std::vector<std::pair<std::string, core::Linear*>> select_linears(core::Backbone& backbone,
                                                                  const std::vector<std::string>& targets) {
  using core::LinearRole;
  const auto seams = backbone.layer_seams();
  std::set<LinearRole> present;
  for (const auto& s : seams)
    for (const auto& l : s.linears) present.insert(l.role);
  const bool fused = present.count(LinearRole::qkv) > 0;
  std::string fused_name;  // "attn.c_attn": the module's name within its layer
  for (const auto& s : seams)
    for (const auto& l : s.linears)
      if (l.role == LinearRole::qkv && fused_name.empty()) fused_name = l.name.substr(s.prefix.size() + 1);
  std::vector<std::string> valid = {"qkv"};
  for (LinearRole r : present)
    if (r != LinearRole::qkv) valid.push_back(core::role_name(r));
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
    return s;
  };
  std::set<LinearRole> roles;
  for (const auto& t : targets) {
    bool known = false;
    for (LinearRole r : {LinearRole::query, LinearRole::key, LinearRole::value, LinearRole::qkv, LinearRole::attention_output,
                         LinearRole::ffn_in, LinearRole::ffn_out})
      if (t == core::role_name(r)) {
        known = true;
        if (r == LinearRole::qkv && !fused) roles.insert({LinearRole::query, LinearRole::key, LinearRole::value});
        else if (present.count(r)) roles.insert(r);
        else
          throw std::invalid_argument("target module '" + t + "' does not exist in " + backbone.config().model_type +
                                      (fused ? " (it fuses query, key and value in " + fused_name + ": use qkv)" : "") +
                                      "; valid: " + join(valid));
      }
    if (!known)
      throw std::invalid_argument("unknown target module '" + t + "' for " + backbone.config().model_type + "; valid: " + join(valid));
  }
  std::vector<std::pair<std::string, core::Linear*>> out;
  for (const auto& s : seams)
    for (const auto& l : s.linears)
      if (roles.count(l.role)) out.emplace_back(l.name, l.linear);
  if (out.empty()) throw std::invalid_argument("no Linear module matches the targets " + join(targets));
  return out;
}

}  // namespace ladder::adapters
