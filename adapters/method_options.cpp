#include "adapters/method_options.h"

#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "adapters/method_registry.h"

namespace ladder::adapters {

namespace {

const char* type_name(OptionType t) {
  switch (t) {
    case OptionType::boolean: return "true or false";
    case OptionType::integer: return "an integer";
    case OptionType::real: return "a number";
    case OptionType::text: return "a word";
    case OptionType::list: return "a comma-separated list";
  }
  return "?";
}

OptionType type_of(const OptionValue& v) {
  switch (v.index()) {
    case 0: return OptionType::boolean;
    case 1: return OptionType::integer;
    case 2: return OptionType::real;
    case 3: return OptionType::text;
    default: return OptionType::list;
  }
}

const OptionSpec& spec_of(const std::string& key) {
  static const std::vector<OptionSpec> specs = method_option_specs();
  for (const auto& s : specs)
    if (s.key == key) return s;
  std::string valid;
  for (const auto& s : specs) valid += (valid.empty() ? "" : ", ") + s.key;
  throw std::invalid_argument("unknown method option 'method." + key + "'; valid: " + valid);
}

}  // namespace

std::function<std::string(const OptionValue&)> positive() {
  return [](const OptionValue& v) -> std::string {
    const double x = v.index() == 1 ? double(std::get<int>(v)) : double(std::get<float>(v));
    return x > 0 ? "" : "must be positive, got " + format_value(v);
  };
}

std::function<std::string(const OptionValue&)> non_negative() {
  return [](const OptionValue& v) -> std::string {
    const double x = v.index() == 1 ? double(std::get<int>(v)) : double(std::get<float>(v));
    return x >= 0 ? "" : "must not be negative, got " + format_value(v);
  };
}

std::function<std::string(const OptionValue&)> one_of(std::vector<std::string> words) {
  return [words](const OptionValue& v) -> std::string {
    for (const auto& w : words)
      if (std::get<std::string>(v) == w) return "";
    std::string s;
    for (const auto& w : words) s += (s.empty() ? "" : ", ") + w;
    return "'" + std::get<std::string>(v) + "' is not one of " + s;
  };
}

std::string format_value(const OptionValue& v) {
  switch (v.index()) {
    case 0: return std::get<bool>(v) ? "true" : "false";
    case 1: return std::to_string(std::get<int>(v));
    case 2: {
      std::ostringstream o;
      o << std::get<float>(v);
      return o.str();
    }
    case 3: return std::get<std::string>(v);
    default: {
      std::string s;
      for (const auto& w : std::get<std::vector<std::string>>(v)) s += (s.empty() ? "" : ",") + w;
      return s;
    }
  }
}

MethodConfig::MethodConfig() {
  for (const auto& s : method_option_specs()) values_[s.key] = s.default_value;
}

void MethodConfig::set(const std::string& key, OptionValue value) {
  const OptionSpec& spec = spec_of(key);
  if (type_of(value) != spec.type) {
    if (spec.type == OptionType::real && value.index() == 1) value = float(std::get<int>(value));
    else throw std::invalid_argument("method." + key + ": expected " + type_name(spec.type) + ", got " + format_value(value));
  }
  if (spec.check)
    if (const std::string why = spec.check(value); !why.empty()) throw std::invalid_argument("method." + key + ": " + why);
  values_[key] = std::move(value);
}

void MethodConfig::set_text(const std::string& key, const std::string& text) {
  const OptionSpec& spec = spec_of(key);
  auto bad = [&] { return std::invalid_argument("method." + key + ": '" + text + "' is not " + type_name(spec.type)); };
  switch (spec.type) {
    case OptionType::boolean:
      if (text == "true" || text == "1" || text == "yes" || text == "on") return set(key, true);
      if (text == "false" || text == "0" || text == "no" || text == "off") return set(key, false);
      throw bad();
    case OptionType::integer: {
      char* end = nullptr;
      const long v = std::strtol(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || v < -2147483647L || v > 2147483647L) throw bad();
      return set(key, int(v));
    }
    case OptionType::real: {
      char* end = nullptr;
      const float v = std::strtof(text.c_str(), &end);
      if (text.empty() || *end != '\0') throw bad();
      return set(key, v);
    }
    case OptionType::text: return set(key, text);
    case OptionType::list: {
      std::vector<std::string> out;
      std::stringstream ss(text);
      std::string item;
      while (std::getline(ss, item, ','))
        if (!item.empty()) out.push_back(item);
      return set(key, out);
    }
  }
}

const OptionValue& MethodConfig::get(const std::string& key, OptionType type) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw std::logic_error("method option '" + key + "' is not registered");
  if (type_of(it->second) != type) throw std::logic_error("method option '" + key + "' read as the wrong type");
  return it->second;
}

bool MethodConfig::flag(const std::string& key) const { return std::get<bool>(get(key, OptionType::boolean)); }
int MethodConfig::integer(const std::string& key) const { return std::get<int>(get(key, OptionType::integer)); }
float MethodConfig::real(const std::string& key) const { return std::get<float>(get(key, OptionType::real)); }
const std::string& MethodConfig::text(const std::string& key) const {
  return std::get<std::string>(get(key, OptionType::text));
}
const std::vector<std::string>& MethodConfig::list(const std::string& key) const {
  return std::get<std::vector<std::string>>(get(key, OptionType::list));
}

}  // namespace ladder::adapters
