#pragma once
// Parameter-efficient methods applied to a loaded backbone. A method decides which parameters train and
// installs its modules at the backbone's seams (Linear branches, sublayer hooks); methods compose with '+'
// ("lora+bitfit"), and a combination that cannot work is an error naming both.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "adapters/lora.h"
#include "core/backbones/backbone.h"

namespace ladder::adapters {

struct MethodOptions {
  // LoRA / DyLoRA
  LoraOptions lora;                                        // r (r_max for DyLoRA), alpha, dropout
  std::vector<std::string> lora_targets = {"query", "value"};  // query key value attention_output ffn_in ffn_out (qkv = all three)
  bool dylora_frozen = true;                               // the paper code's "frozen" mode
  // Bottleneck adapters (Houlsby: after attention and FFN; Pfeiffer: after the FFN only) and Compacter
  int adapter_reduction = 16;            // bottleneck m = d / reduction
  std::string adapter_activation = "relu";
  int compacter_n = 4;                   // PHM components (d and m must be divisible by n)
  bool train_layer_norms = false;        // Compacter configs unfreeze the backbone's LayerNorms
  // KronA: the Kronecker factor A_k is [krona_a1, krona_a2] (B_k is [in/a2... see adapters/krona.h])
  int krona_a1 = 16, krona_a2 = 16;
  float krona_scale = 1.0f;
  std::vector<std::string> krona_targets = {"query", "value"};
  // Prompt tuning: soft tokens inserted after [CLS] (BERT) or before the text (GPT-2)
  int prompt_tokens = 20;
  uint64_t seed = 42;
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
  // Prompt tuning: how many soft tokens to insert into every example (ids vocab .. vocab+P-1), and where
  // (after [CLS] for BERT, first for GPT-2). 0 for every other method.
  virtual int prompt_tokens() const { return 0; }
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

// Parses "full", "bitfit", "lora", "dylora", "lora+bitfit", ... and applies each. Unknown names list the
// valid ones. Call before ParameterRegistry::allocate_gradients().
std::vector<std::unique_ptr<Method>> apply_methods(core::Backbone& backbone, const std::string& spec,
                                                   const MethodOptions& opt);
// The valid method names.
std::vector<std::string> method_names();

// LoRA's target names mapped to this backbone's Linear module names ("query" -> ".attention.self.query").
std::vector<std::pair<std::string, core::Linear*>> select_linears(core::Backbone& backbone,
                                                                  const std::vector<std::string>& targets);

class DyLoraMethod;
// For `ladder eval` at every rank: the DyLoRA method of a method list, or null.
DyLoraMethod* find_dylora(const std::vector<std::unique_ptr<Method>>& methods);

class DyLoraMethod : public BranchMethod<LoraBranch> {
 public:
  DyLoraMethod(core::Backbone& backbone, const MethodOptions& opt);
  std::string name() const override { return "dylora"; }
  // b ~ Uniform{1..r_max} from (seed, global step): identical on every process.
  void on_step_begin(uint64_t global_step) override;
  // Evaluation at a fixed rank (no freezing).
  void set_rank(int b);
  int r_max() const { return opt_.lora.r; }
  int current_rank() const { return rank_; }

 private:
  MethodOptions opt_;
  int rank_;
};

}  // namespace ladder::adapters
