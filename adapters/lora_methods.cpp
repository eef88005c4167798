#include "adapters/lora_methods.h"

#include <algorithm>
#include <stdexcept>

#include "adapters/lora.h"
#include "adapters/target_linears.h"
#include "core/kernels/dropout.h"

namespace ladder::adapters {

namespace {

LoraOptions lora_options(const MethodConfig& o) {
  LoraOptions l;
  l.r = o.integer("lora_r");
  l.alpha = o.real("lora_alpha");
  l.dropout = o.real("lora_dropout");
  return l;
}

// The first `b` rows of A [r, in] / first `b` columns of B [out, r], as owned f32 tensors.
core::Tensor take_rank(const core::Tensor& t, bool is_A, int b) {
  const auto& s = t.shape();
  const int64_t rows = s[0], cols = s[1];
  const auto v = t.to_floats();
  if (is_A) return core::Tensor::from_floats(std::vector<float>(v.begin(), v.begin() + b * cols), {b, cols},
                                             core::MemCategory::workspace);
  std::vector<float> o(size_t(rows * b));
  for (int64_t i = 0; i < rows; ++i)
    for (int j = 0; j < b; ++j) o[size_t(i * b + j)] = v[size_t(i * cols + j)];
  return core::Tensor::from_floats(o, {rows, b}, core::MemCategory::workspace);
}

class LoraFamily : public BranchMethod<LoraBranch> {
 public:
  LoraFamily(core::Backbone& b, const MethodConfig& opt) : lora_(lora_options(opt)), seed_(opt.seed) {
    for (auto& [name, lin] : select_linears(b, opt.list("lora_targets"))) {
      branches_.push_back(std::make_unique<LoraBranch>(b.params(), name, *lin, lora_, opt.seed));
      modules_.push_back(name);
    }
    fan_in_fan_out_ = !branches_.empty() && b.linear_modules().front().second->layout == core::WeightLayout::in_out;
  }

  // A PEFT LoRA adapter of rank `rank()` with the run's alpha: DyLoRA at rank b is a plain LoRA of rank b.
  bool peft_adapter(PeftAdapter& out, const std::vector<std::string>& all_modules) const override {
    const int r = rank();
    for (size_t i = 0; i < branches_.size(); ++i) {
      out.tensors.emplace_back(modules_[i] + ".lora_A.weight", take_rank(branches_[i]->A().value, true, r));
      out.tensors.emplace_back(modules_[i] + ".lora_B.weight", take_rank(branches_[i]->B().value, false, r));
    }
    out.config = {{"peft_type", "LORA"},
                  {"r", r},
                  {"lora_alpha", lora_.alpha},
                  {"lora_dropout", lora_.dropout},
                  {"target_modules", peft_targets(modules_, all_modules)},
                  {"fan_in_fan_out", fan_in_fan_out_},
                  {"bias", "none"},
                  {"init_lora_weights", true},
                  {"use_rslora", false},
                  {"use_dora", false},
                  {"rank_pattern", nlohmann::json::object()},
                  {"alpha_pattern", nlohmann::json::object()},
                  {"layers_to_transform", nullptr},
                  {"layers_pattern", nullptr}};
    return true;
  }

 protected:
  virtual int rank() const { return lora_.r; }
  LoraOptions lora_;
  uint64_t seed_;
  std::vector<std::string> modules_;
  bool fan_in_fan_out_ = false;
};

class LoraMethod : public LoraFamily {
 public:
  using LoraFamily::LoraFamily;
  std::string name() const override { return "lora"; }
};

class DyLoraMethod : public LoraFamily {
 public:
  DyLoraMethod(core::Backbone& b, const MethodConfig& opt)
      : LoraFamily(b, opt), frozen_(opt.flag("dylora_frozen")), rank_(lora_.r) {}
  std::string name() const override { return "dylora"; }
  void on_step_begin(uint64_t global_step) override {
    // Uniform{1..r_max} from the step alone: all data-parallel ranks agree without communicating.
    const float u = core::counter_uniform(core::derive_seed(seed_, 0xd71'07a0ull), global_step);
    rank_ = std::min(lora_.r, 1 + int(u * float(lora_.r)));
    for (auto& br : branches_) br->set_active_rank(rank_, frozen_);
  }
  SubModels sub_models() const override {
    SubModels s{"rank", {}};
    for (int b = 1; b <= lora_.r; ++b) s.sizes.push_back(b);
    return s;
  }
  void select_sub_model(int b) override {
    if (b == 0) b = lora_.r;
    if (b < 1 || b > lora_.r)
      throw std::invalid_argument("dylora: rank " + std::to_string(b) + " is outside 1.." + std::to_string(lora_.r));
    rank_ = b;
    for (auto& br : branches_) br->set_active_rank(b, false);
  }

 protected:
  int rank() const override { return rank_; }

 private:
  bool frozen_;
  int rank_;
};

std::vector<OptionSpec> lora_option_table() {
  return {{"lora_r", OptionType::integer, 8, "LoRA rank (DyLoRA: r_max)", positive()},
          {"lora_alpha", OptionType::real, 16.0f, "LoRA alpha (scale alpha/r)", nullptr},
          {"lora_dropout", OptionType::real, 0.0f, "dropout on the LoRA input",
           [](const OptionValue& v) -> std::string {
             const float p = std::get<float>(v);
             return p >= 0 && p < 1 ? "" : "must be in [0, 1), got " + format_value(v);
           }},
          {"lora_targets", OptionType::list, std::vector<std::string>{"query", "value"},
           "query key value qkv attention_output ffn_in ffn_out", nullptr}};
}

}  // namespace

MethodInfo lora_method_info() {
  MethodInfo m;
  m.name = "lora";
  m.summary = "LoRA: a trainable low-rank branch beside each target Linear";
  m.options = lora_option_table();
  m.make = [](core::Backbone& b, const MethodConfig& o) { return std::make_unique<LoraMethod>(b, o); };
  m.conflicts = {"dylora"};
  m.conflict_reason = "'lora' and 'dylora' both put a low-rank branch on the same Linears; pick one";
  m.exports = export_merged | export_peft;
  m.peft_name = "LoRA";
  return m;
}

// LoRA's entry (options, exports as a PEFT LoRA at one rank, the conflict reason) with its own name, factory
// and the rank-sampling option.
MethodInfo dylora_method_info() {
  MethodInfo m = lora_method_info();
  m.name = "dylora";
  m.summary = "DyLoRA: LoRA trained at every rank 1..lora_r in one run";
  m.options.push_back({"dylora_frozen", OptionType::boolean, true, "DyLoRA: only the sampled rank's row/column learns", nullptr});
  m.make = [](core::Backbone& b, const MethodConfig& o) { return std::make_unique<DyLoraMethod>(b, o); };
  m.conflicts = {"lora"};
  return m;
}

}  // namespace ladder::adapters
