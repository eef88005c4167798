#include "adapters/ia3.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "adapters/target_linears.h"

namespace ladder::adapters {

namespace {

using core::MemCategory;
using core::Tensor;

// One learned vector on one Linear: over its output features, or over its input features (`input_side`).
class Ia3Scale final : public core::LinearScale {
 public:
  Ia3Scale(core::ParameterRegistry& reg, const std::string& module, core::Linear& base, bool input_side)
      : base_(base), input_(input_side), module_(module) {
    if (base.scale) throw std::invalid_argument("ia3: '" + module + "' is already scaled");
    if (base.branch)
      throw std::invalid_argument("ia3: '" + module + "' has a parallel branch (lora, krona): (IA)^3 would rescale what it adds");
    const int n = input_side ? base.in : base.out;
    // Under tensor parallelism the vector is cut like the weight's dimension it scales: a column-parallel
    // Linear holds some output features, a row-parallel one some input features (replicated otherwise).
    const core::ShardSpec& ws = base.weight->shard;
    const int out_dim = base.layout == core::WeightLayout::out_in ? 0 : 1;
    const int dim = input_side ? 1 - out_dim : out_dim;
    core::ShardSpec spec;
    spec.full = {ws.sharded() && ws.dim == dim ? ws.full.at(size_t(dim)) : int64_t(n)};
    if (ws.sharded() && ws.dim == dim) spec = {0, ws.index, ws.parts, ws.blocks, spec.full};
    l_ = &reg.add(module + ".ia3_l", Tensor::from_floats(std::vector<float>(size_t(n), 1.0f), {n},
                                                         MemCategory::trainable_weights));
    l_->shard = spec;
    l_->trainable = true;
    base.scale = this;
  }

  bool scales_input() const override { return input_; }

  const float* scale_input(const float* x, int N, int ldx, int* ld_out) override {
    if (!input_ || merged_) {
      *ld_out = ldx;
      return x;
    }
    const int in = base_.in;
    xs_.resize(size_t(N) * in);
    const float* l = l_->w();
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; ++r) {
      const float* src = x + size_t(r) * ldx;
      float* dst = xs_.data() + size_t(r) * in;
#pragma omp simd
      for (int i = 0; i < in; ++i) dst[i] = src[i] * l[i];
    }
    *ld_out = in;
    return xs_.data();
  }

  void scale_output(float* y, int N, int ldy, const core::BranchCall& call) override {
    if (input_ || merged_) return;
    const int out = base_.out;
    if (call.save) saved_ = Tensor::empty({N, out}, core::DType::f32, MemCategory::activations);
    float* z = call.save ? saved_.data<float>() : nullptr;
    const float* l = l_->w();
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; ++r) {
      float* row = y + size_t(r) * ldy;
      if (z) std::copy(row, row + out, z + size_t(r) * out);
#pragma omp simd
      for (int o = 0; o < out; ++o) row[o] *= l[o];
    }
  }

  const float* backward_output(const float* dy, int N, int ldy, int* ld_out) override {
    if (input_) {
      *ld_out = ldy;
      return dy;
    }
    const int out = base_.out;
    if (saved_.numel() != int64_t(N) * out) throw std::logic_error("ia3: backward of '" + module_ + "' without a saved forward");
    const float* z = saved_.data<float>();
    const float* l = l_->w();
    float* dl = l_->g();
    dz_.resize(size_t(N) * out);
    // dl = sum over rows of dy * z (rows in a fixed order: the sum does not depend on the thread count).
    for (int r = 0; r < N; ++r) {
      const float* d = dy + size_t(r) * ldy;
      const float* zr = z + size_t(r) * out;
      float* dzr = dz_.data() + size_t(r) * out;
#pragma omp simd
      for (int o = 0; o < out; ++o) {
        dl[o] += d[o] * zr[o];
        dzr[o] = d[o] * l[o];
      }
    }
    *ld_out = out;
    return dz_.data();
  }

  void backward_input(float* g, const float* x, int N, int ldg, int ldx) override {
    if (!input_) return;
    const int in = base_.in;
    const float* l = l_->w();
    float* dl = l_->g();
    for (int r = 0; r < N; ++r) {
      float* gr = g + size_t(r) * ldg;
      const float* xr = x + size_t(r) * ldx;
#pragma omp simd
      for (int i = 0; i < in; ++i) {
        dl[i] += gr[i] * xr[i];
        gr[i] *= l[i];
      }
    }
  }

  // W' = diag(l) W and b' = l b (output side), or W' = W diag(l) (input side), in either weight layout.
  void fold(bool divide) {
    core::Parameter& w = *base_.weight;
    w.writable_f32();
    const float* l = l_->w();
    const int n = input_ ? base_.in : base_.out;
    if (divide)
      for (int k = 0; k < n; ++k)
        if (l[k] == 0.0f) throw std::runtime_error("ia3: '" + module_ + "' has a zero scale; the merge cannot be undone");
    auto f = [&](int k) { return divide ? 1.0f / l[k] : l[k]; };
    float* W = w.w();
    const int in = base_.in, out = base_.out;
    const bool out_in = base_.layout == core::WeightLayout::out_in;
    for (int o = 0; o < out; ++o)
      for (int i = 0; i < in; ++i) {
        const int k = input_ ? i : o;
        W[out_in ? size_t(o) * in + i : size_t(i) * out + o] *= f(k);
      }
    if (!input_ && base_.bias) {
      core::Parameter& b = *base_.bias;
      b.writable_f32();
      for (int o = 0; o < out; ++o) b.w()[o] *= f(o);
    }
  }
  void merge() {
    if (merged_) return;
    fold(false);
    merged_ = true;
  }
  void unmerge() {
    if (!merged_) return;
    fold(true);
    merged_ = false;
  }

  const core::Parameter& vector() const { return *l_; }
  bool input_side() const { return input_; }
  const std::string& module() const { return module_; }

 private:
  core::Linear& base_;
  bool input_;
  std::string module_;
  core::Parameter* l_ = nullptr;
  bool merged_ = false;
  Tensor saved_;                     // the unscaled output, for backward
  std::vector<float> xs_, dz_;       // scaled input / unscaled-output gradient, until the next call
};

std::vector<std::string> default_targets(core::Backbone& b) {
  // PEFT's defaults: BERT key, value and output.dense; GPT-2 c_attn and mlp.c_proj.
  for (const auto& s : b.layer_seams())
    for (const auto& rl : s.linears)
      if (rl.role == core::LinearRole::key) return {"key", "value", "ffn_out"};
  return {"qkv", "ffn_out"};
}

class Ia3Method final : public Method {
 public:
  Ia3Method(core::Backbone& b, const MethodConfig& opt) {
    std::vector<std::string> targets = opt.list("ia3_targets");
    if (targets.size() == 1 && targets[0] == "auto") targets = default_targets(b);
    const std::vector<std::string>& ff = opt.list("ia3_feedforward");
    for (auto& [name, lin] : select_linears(b, targets)) {
      bool input = false;
      for (const auto& s : b.layer_seams())
        for (const auto& rl : s.linears)
          if (rl.linear == lin) input = std::find(ff.begin(), ff.end(), core::role_name(rl.role)) != ff.end();
      scales_.push_back(std::make_unique<Ia3Scale>(b.params(), name, *lin, input));
    }
  }
  std::string name() const override { return "ia3"; }
  bool mergeable() const override { return true; }
  void merge() override {
    for (auto& s : scales_) s->merge();
  }
  void unmerge() override {
    for (auto& s : scales_) s->unmerge();
  }

  // PEFT stores output-side vectors as [out, 1] and input-side ones as [1, in].
  bool peft_adapter(PeftAdapter& out, const std::vector<std::string>& all_modules) const override {
    std::vector<std::string> modules, ff;
    for (const auto& s : scales_) {
      const int64_t n = s->vector().value.numel();
      out.tensors.emplace_back(s->module() + ".ia3_l",
                               Tensor::from_floats(s->vector().value.to_floats(),
                                                   s->input_side() ? core::Shape{1, n} : core::Shape{n, 1},
                                                   MemCategory::workspace));
      modules.push_back(s->module());
      if (s->input_side()) ff.push_back(s->module());
    }
    const std::vector<std::string> targets = peft_targets(modules, all_modules);
    std::vector<std::string> ff_targets = ff.empty() ? std::vector<std::string>{} : peft_targets(ff, all_modules);
    // A feedforward target must itself be a target: PEFT checks feedforward_modules against target_modules.
    for (const auto& t : ff_targets)
      if (std::find(targets.begin(), targets.end(), t) == targets.end()) ff_targets = ff;
    out.config = {{"peft_type", "IA3"},
                  {"target_modules", targets},
                  {"feedforward_modules", ff_targets},
                  {"fan_in_fan_out", false},
                  {"init_ia3_weights", true},
                  {"exclude_modules", nullptr},
                  {"auto_mapping", nullptr}};
    return true;
  }

 private:
  std::vector<std::unique_ptr<Ia3Scale>> scales_;
};

}  // namespace

MethodInfo ia3_method_info() {
  MethodInfo m;
  m.name = "ia3";
  m.summary = "(IA)^3: learned vectors rescale attention keys, values and the FFN's inner activations";
  m.options = {{"ia3_targets", OptionType::list, std::vector<std::string>{"auto"},
                "(IA)^3: Linears whose outputs (or, for ia3_feedforward roles, inputs) are scaled; auto = PEFT's "
                "default for the backbone (BERT key,value,ffn_out; GPT-2 qkv,ffn_out)",
                nullptr},
               {"ia3_feedforward", OptionType::list, std::vector<std::string>{"ffn_out"},
                "(IA)^3: target roles scaled on their input features instead of their outputs", nullptr}};
  m.make = [](core::Backbone& b, const MethodConfig& o) { return std::make_unique<Ia3Method>(b, o); };
  m.conflicts = {"lora", "dylora", "krona"};
  m.conflict_reason = "(IA)^3 rescales the outputs a low-rank branch adds to";
  m.exports = export_merged | export_peft;
  m.peft_name = "IA3";
  return m;
}

}  // namespace ladder::adapters
