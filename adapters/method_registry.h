#pragma once
// Every method ladder knows, in one table: its name, its option table, its factory, what it cannot be
// combined with and what it can export. Train, eval and export parse `method.name` with the one parser
// here; adding a method is one entry in method_registry.cpp and the method's own files.
#include <memory>
#include <string>
#include <vector>

#include "adapters/method.h"
#include "adapters/method_options.h"
#include "core/backbones/backbone.h"

namespace ladder::adapters {

enum ExportFormat : unsigned { export_none = 0, export_merged = 1u << 0, export_peft = 1u << 1 };

struct MethodInfo {
  std::string name;
  std::string summary;  // one line for --help
  std::vector<OptionSpec> options;
  // Installs the method on the backbone (null for methods that are a recipe of their own: see `recipe`).
  std::function<std::unique_ptr<Method>(core::Backbone&, const MethodConfig&)> make;
  std::vector<std::string> conflicts;  // methods it cannot be combined with; "*" = any other
  std::string conflict_reason;         // why, for the error
  unsigned exports = export_none;
  std::string peft_name;    // with export_peft: the PEFT method it exports as ("LoRA")
  std::string merge_note;   // without export_merged: why it cannot fold into the backbone (for the error)
  // The training recipe the method needs ("" = plain fine-tuning through the backbone).
  std::string recipe;
};

// The registry, in the order --help lists it.
const std::vector<MethodInfo>& method_registry();
// Throws listing the valid names.
const MethodInfo& method_info(const std::string& name);
std::vector<std::string> method_names();
// Every option of every method, each key once (methods may share a key, e.g. lora_r for lora and dylora).
std::vector<OptionSpec> method_option_specs();

// "lora+bitfit" -> {"lora", "bitfit"}; known names match greedily so "compacter+++lora" parses. Checks the
// names, duplicates and conflicts; throws naming them.
std::vector<std::string> parse_method_spec(const std::string& spec);
// The recipe the methods of a spec need ("" = plain fine-tuning).
std::string method_recipe(const std::string& spec);
// Whether every method of the spec can export in `format`.
bool method_exports(const std::string& spec, ExportFormat format);

// Installs one method by name (throws for an unknown name or a recipe-only method such as lst).
std::unique_ptr<Method> make_method(const std::string& name, core::Backbone& backbone, const MethodConfig& opt);

// Parses the spec and installs each method. Call before ParameterRegistry::allocate_gradients().
std::vector<std::unique_ptr<Method>> apply_methods(core::Backbone& backbone, const std::string& spec,
                                                   const MethodConfig& opt);

}  // namespace ladder::adapters
