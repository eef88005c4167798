#include "adapters/method.h"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace ladder::adapters {

int total_prompt_tokens(const std::vector<std::unique_ptr<Method>>& methods) {
  int n = 0;
  for (auto& m : methods) n += m->prompt_tokens();
  return n;
}

void insert_prompt_tokens(const std::vector<std::unique_ptr<Method>>& methods, const core::Backbone& backbone,
                          std::vector<int32_t>& ids, std::vector<int32_t>& type_ids, std::vector<int32_t>& mask) {
  const int P = total_prompt_tokens(methods);
  if (P == 0) return;
  const long at = std::min<long>(backbone.prompt_position(), long(ids.size()));
  std::vector<int32_t> prompt(static_cast<size_t>(P));
  for (int p = 0; p < P; ++p) prompt[size_t(p)] = backbone.config().vocab_size + p;
  ids.insert(ids.begin() + at, prompt.begin(), prompt.end());
  type_ids.insert(type_ids.begin() + std::min<long>(at, long(type_ids.size())), size_t(P), 0);
  mask.insert(mask.begin() + std::min<long>(at, long(mask.size())), size_t(P), 1);
}

Method* sub_model_method(const std::vector<std::unique_ptr<Method>>& methods) {
  Method* found = nullptr;
  for (auto& m : methods)
    if (!m->sub_models().sizes.empty()) {
      if (found)
        throw std::invalid_argument("methods '" + found->name() + "' and '" + m->name() +
                                    "' both train several sub-models; a run evaluates one such method");
      found = m.get();
    }
  return found;
}

std::vector<std::string> peft_targets(const std::vector<std::string>& changed_list, const std::vector<std::string>& all_modules) {
  const std::set<std::string> changed(changed_list.begin(), changed_list.end());
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  std::set<std::string> out;
  for (const auto& m : changed) {
    std::vector<std::string> parts;
    for (size_t s = 0, e; s <= m.size(); s = e + 1) {
      e = m.find('.', s);
      if (e == std::string::npos) e = m.size();
      parts.push_back(m.substr(s, e - s));
    }
    std::string chosen = m;
    for (size_t k = 1; k <= parts.size(); ++k) {
      std::string suffix;
      for (size_t i = parts.size() - k; i < parts.size(); ++i) suffix += (suffix.empty() ? "" : ".") + parts[i];
      bool ok = true;
      for (const auto& other : all_modules)
        if ((other == suffix || ends_with(other, "." + suffix)) && !changed.count(other)) ok = false;
      if (ok) {
        chosen = suffix;
        break;
      }
    }
    out.insert(chosen);
  }
  return {out.begin(), out.end()};
}

}  // namespace ladder::adapters
