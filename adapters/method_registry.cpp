#include "adapters/method_registry.h"

#include <algorithm>
#include <stdexcept>

#include "adapters/adapter_methods.h"
#include "adapters/basic_methods.h"
#include "adapters/ia3.h"
#include "adapters/lora_methods.h"
#include "adapters/lst/lst_method.h"
#include "adapters/prompt_tuning.h"

namespace ladder::adapters {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

std::vector<MethodInfo> build_registry() {
  std::vector<MethodInfo> r = {full_method_info(), bitfit_method_info(), lora_method_info(), dylora_method_info(),
                               prompt_method_info(), ia3_method_info()};
  for (auto& m : adapter_method_infos()) r.push_back(std::move(m));
  r.push_back(lst_method_info());
  return r;
}

bool conflicts_with(const MethodInfo& a, const std::string& b) {
  return std::find(a.conflicts.begin(), a.conflicts.end(), "*") != a.conflicts.end() ||
         std::find(a.conflicts.begin(), a.conflicts.end(), b) != a.conflicts.end();
}

}  // namespace

const std::vector<MethodInfo>& method_registry() {
  static const std::vector<MethodInfo> registry = build_registry();
  return registry;
}

const MethodInfo& method_info(const std::string& name) {
  for (const auto& m : method_registry())
    if (m.name == name) return m;
  throw std::invalid_argument("unknown method '" + name + "'; valid: " + join(method_names()));
}

std::vector<std::string> method_names() {
  std::vector<std::string> v;
  for (const auto& m : method_registry()) v.push_back(m.name);
  return v;
}

std::vector<OptionSpec> method_option_specs() {
  std::vector<OptionSpec> out;
  for (const auto& m : method_registry())
    for (const auto& o : m.options)
      if (std::none_of(out.begin(), out.end(), [&](const OptionSpec& s) { return s.key == o.key; })) out.push_back(o);
  return out;
}

std::vector<std::string> parse_method_spec(const std::string& spec) {
  // Split on '+', matching known names greedily so that "compacter++" and "compacter+++lora" parse.
  auto valid_names = method_names();
  std::stable_sort(valid_names.begin(), valid_names.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
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
  for (auto& n : names) method_info(n);  // throws for an unknown name
  for (const auto& a : names)
    for (const auto& b : names) {
      if (a == b) continue;
      const MethodInfo& ia = method_info(a);
      if (conflicts_with(ia, b))
        throw std::invalid_argument((ia.conflict_reason.empty() ? "'" + a + "' and '" + b + "' conflict"
                                                                : ia.conflict_reason) +
                                    "; it cannot be combined with '" + b + "'");
    }
  return names;
}

std::string method_recipe(const std::string& spec) {
  std::string recipe;
  for (const auto& n : parse_method_spec(spec))
    if (!method_info(n).recipe.empty()) recipe = method_info(n).recipe;
  return recipe;
}

bool method_exports(const std::string& spec, ExportFormat format) {
  for (const auto& n : parse_method_spec(spec))
    if (!(method_info(n).exports & format)) return false;
  return true;
}

std::unique_ptr<Method> make_method(const std::string& name, core::Backbone& backbone, const MethodConfig& opt) {
  const MethodInfo& info = method_info(name);
  if (!info.make)
    throw std::invalid_argument("method '" + name + "' is a training recipe of its own (" + info.recipe +
                                "), not a method installed on the backbone");
  return info.make(backbone, opt);
}

std::vector<std::unique_ptr<Method>> apply_methods(core::Backbone& backbone, const std::string& spec,
                                                   const MethodConfig& opt) {
  std::vector<std::unique_ptr<Method>> out;
  for (const auto& n : parse_method_spec(spec)) out.push_back(make_method(n, backbone, opt));
  return out;
}

}  // namespace ladder::adapters
