#pragma once
// The option tables of methods: each method declares its keys (config key method.<key>) with a type, a
// default, a help line and a check; MethodConfig holds the values of one run. `ladder train --help` lists
// every registered key; a value that fails its check is an error naming method.<key>.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace ladder::adapters {

enum class OptionType { boolean, integer, real, text, list };
// list: comma-separated words ("query,value").
using OptionValue = std::variant<bool, int, float, std::string, std::vector<std::string>>;

struct OptionSpec {
  std::string key;  // "lora_r" is the config key method.lora_r
  OptionType type = OptionType::integer;
  OptionValue default_value;
  std::string help;
  // Empty when the value is acceptable, else why not (the caller prefixes "method.<key>: ").
  std::function<std::string(const OptionValue&)> check;
};

// Checks for common option shapes.
std::function<std::string(const OptionValue&)> positive();
std::function<std::string(const OptionValue&)> non_negative();
std::function<std::string(const OptionValue&)> one_of(std::vector<std::string> words);

std::string format_value(const OptionValue& v);

// The values of every registered method option for one run (defaults until set), plus the run seed.
class MethodConfig {
 public:
  MethodConfig();  // every option of every registered method at its default
  // Sets a registered key; throws naming method.<key> for an unknown key, a wrong type or a failed check.
  void set(const std::string& key, OptionValue value);
  // Parses text as the key's type ("8", "0.1", "true", "query,value") and sets it.
  void set_text(const std::string& key, const std::string& text);
  bool flag(const std::string& key) const;
  int integer(const std::string& key) const;
  float real(const std::string& key) const;
  const std::string& text(const std::string& key) const;
  const std::vector<std::string>& list(const std::string& key) const;
  const std::map<std::string, OptionValue>& values() const { return values_; }
  uint64_t seed = 42;

 private:
  const OptionValue& get(const std::string& key, OptionType type) const;
  std::map<std::string, OptionValue> values_;
};

}  // namespace ladder::adapters
