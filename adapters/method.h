#pragma once
// A parameter-efficient method applied to a loaded backbone. A method decides which parameters train and
// installs its modules at the backbone's seams (core/backbones/backbone.h: Linears by role, sublayer hooks,
// Linear branches and scales); methods compose with '+' ("lora+bitfit"). adapters/method_registry.h lists
// them with their options; a method is added by implementing this interface in its own files.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/backbones/backbone.h"

namespace ladder::adapters {

// Several models trained at once by one run (DyLoRA: every rank 1..r_max), by size. `unit` names a size in
// reports ("rank" -> report key "dylora_rank_3").
struct SubModels {
  std::string unit;
  std::vector<int> sizes;  // ascending; the last is the whole model
};

// A PEFT adapter as `ladder export --format peft` writes it: adapter_config.json's method keys (peft_type,
// r, target_modules, ...) and the method's tensors under their backbone module names
// ("encoder.layer.0.attention.self.query.lora_A.weight"; the exporter adds PEFT's prefixes).
struct PeftAdapter {
  nlohmann::json config;
  std::vector<std::pair<std::string, core::Tensor>> tensors;
};

class Method {
 public:
  virtual ~Method() = default;
  virtual std::string name() const = 0;
  // Called before every optimizer step with the global step (DyLoRA draws its rank here, from the step
  // alone, so every process draws the same rank).
  virtual void on_step_begin(uint64_t /*global_step*/) {}
  // Whether the method can fold into the backbone weights (for export and inference).
  virtual bool mergeable() const { return false; }
  virtual void merge() {}
  virtual void unmerge() {}
  // Prompt tuning: how many soft tokens to insert into every example (ids vocab .. vocab+P-1), at the
  // backbone's prompt_position(). 0 for every other method.
  virtual int prompt_tokens() const { return 0; }
  // The sub-models the method trains at once; empty sizes: just one. select_sub_model(size) makes one of
  // them the model forward runs (0 = the whole model, as evaluation and checkpoint selection use it).
  virtual SubModels sub_models() const { return {}; }
  virtual void select_sub_model(int /*size*/) {}
  // The method's trained state as a PEFT adapter (at the selected sub-model), or false when PEFT has no
  // equivalent. `all_modules` are every module name of the backbone (for unambiguous target_modules).
  virtual bool peft_adapter(PeftAdapter& /*out*/, const std::vector<std::string>& /*all_modules*/) const { return false; }
};

// A method made of branches that fold into their Linears (LoRA, DyLoRA, KronA).
template <class Branch>
class BranchMethod : public Method {
 public:
  bool mergeable() const override { return true; }
  void merge() override {
    for (auto& br : branches_) br->merge();
  }
  void unmerge() override {
    for (auto& br : branches_) br->unmerge();
  }

 protected:
  std::vector<std::unique_ptr<Branch>> branches_;
};

// Inserts a method list's soft-prompt ids into an encoding (no-op without prompt tuning). `max_len` is
// the final length limit: the text must have been tokenized to max_len - prompt tokens.
void insert_prompt_tokens(const std::vector<std::unique_ptr<Method>>& methods, const core::Backbone& backbone,
                          std::vector<int32_t>& ids, std::vector<int32_t>& type_ids, std::vector<int32_t>& mask);
int total_prompt_tokens(const std::vector<std::unique_ptr<Method>>& methods);

// The one method of a list that trains sub-models, or null (two such methods in one run are an error).
Method* sub_model_method(const std::vector<std::unique_ptr<Method>>& methods);

// PEFT's target_modules for the modules a method changed: for each the shortest dotted suffix that
// matches no other module (PEFT matches a target t on module name k when k ends with "." + t).
std::vector<std::string> peft_targets(const std::vector<std::string>& changed, const std::vector<std::string>& all_modules);

}  // namespace ladder::adapters
