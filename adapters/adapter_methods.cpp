#include "adapters/adapter_methods.h"

#include <stdexcept>

#include "adapters/bottleneck_adapter.h"
#include "adapters/krona.h"
#include "adapters/phm.h"
#include "core/backbones/bert_model.h"
#include "core/backbones/gpt2_model.h"

namespace ladder::adapters {

namespace {

// The seams of one transformer layer and the dotted names the methods register under.
struct LayerSeams {
  std::string layer;      // "encoder.layer.3" / "h.3"
  std::string attn_site;  // "encoder.layer.3.attention.output" / "h.3.attn"
  std::string ffn_site;   // "encoder.layer.3.output" / "h.3.mlp"
  std::string block_site; // "encoder.layer.3.ffn" / "h.3.mlp" (KronA^B)
  core::SublayerHook** after_attention;
  core::SublayerHook** after_ffn;
  core::LinearBranch** ffn_parallel;
};

std::vector<LayerSeams> layer_seams(core::Backbone& b, const std::string& method) {
  std::vector<LayerSeams> out;
  if (auto* bert = dynamic_cast<core::BertModel*>(&b)) {
    for (auto* l : bert->layers()) {
      const std::string p = "encoder.layer." + std::to_string(l->layer_index);
      out.push_back({p, p + ".attention.output", p + ".output", p + ".ffn", &l->after_attention, &l->after_ffn,
                     &l->ffn_parallel});
    }
  } else if (auto* gpt = dynamic_cast<core::Gpt2Model*>(&b)) {
    for (auto* blk : gpt->blocks()) {
      const std::string p = "h." + std::to_string(blk->layer_index);
      out.push_back({p, p + ".attn", p + ".mlp", p + ".mlp", &blk->after_attention, &blk->after_ffn, &blk->ffn_parallel});
    }
  } else {
    throw std::invalid_argument(method + ": supports bert and gpt2 backbones, not '" + b.name() + "'");
  }
  return out;
}

[[noreturn]] void seam_taken(const std::string& method, const std::string& seam) {
  throw std::invalid_argument(method + ": seam '" + seam +
                              "' is already taken by another method (houlsby, pfeiffer, compacter and compacter++ "
                              "share the adapter hooks; krona_b and krona_b_res share ffn_parallel); combine "
                              "methods that use different seams");
}

bool is_layer_norm(const std::string& n) {
  return n.find("LayerNorm.") != std::string::npos || n.rfind("ln_", 0) == 0 || n.find(".ln_") != std::string::npos;
}

// houlsby, pfeiffer, compacter, compacter++.
class BottleneckMethod : public Method {
 public:
  BottleneckMethod(std::string name, core::Backbone& b, const MethodOptions& opt, bool at_attention, bool at_ffn,
                   bool phm)
      : name_(std::move(name)) {
    const auto seams = layer_seams(b, name_);
    for (const auto& s : seams) {  // check every seam before installing anything
      if (at_attention && *s.after_attention) seam_taken(name_, s.layer + " after_attention");
      if (at_ffn && *s.after_ffn) seam_taken(name_, s.layer + " after_ffn");
    }
    const auto act = parse_adapter_activation(opt.adapter_activation);
    const int d = b.config().hidden, rf = opt.adapter_reduction, n = opt.compacter_n;
    // shapes checked before anything is registered
    if (rf <= 0 || d % rf != 0)
      throw std::invalid_argument(name_ + ": hidden width " + std::to_string(d) + " is not divisible by adapter_reduction " +
                                  std::to_string(rf));
    if (phm && (n <= 0 || d % n != 0 || (d / rf) % n != 0))
      throw std::invalid_argument(name_ + ": hidden width " + std::to_string(d) + " and bottleneck " +
                                  std::to_string(d / rf) + " must be divisible by compacter_n " + std::to_string(n));
    auto& reg = b.params();
    core::Parameter* rule = phm ? &add_phm_rule(reg, opt.compacter_n, opt.seed) : nullptr;
    auto make = [&](const std::string& site) {
      return phm ? make_compacter_adapter(reg, site, d, opt.adapter_reduction, *rule, act, opt.seed)
                 : BottleneckAdapter::dense(reg, site, d, opt.adapter_reduction, act, AdapterInit::bert, opt.seed);
    };
    for (const auto& s : seams) {
      if (at_attention) {
        adapters_.push_back(make(s.attn_site));
        *s.after_attention = adapters_.back().get();
      }
      if (at_ffn) {
        adapters_.push_back(make(s.ffn_site));
        *s.after_ffn = adapters_.back().get();
      }
    }
    if (opt.train_layer_norms) {
      int n_ln = 0;
      for (auto& p : reg.all())
        if (is_layer_norm(p->name)) {
          reg.set_trainable(p->name, true);
          ++n_ln;
        }
      if (n_ln == 0) throw std::runtime_error(name_ + ": train_layer_norms found no LayerNorm parameter");
    }
  }
  std::string name() const override { return name_; }

 private:
  std::string name_;
  std::vector<std::unique_ptr<BottleneckAdapter>> adapters_;
};

// KronA beside the krona_targets Linears.
class KronaMethod : public BranchMethod<KronaBranch> {
 public:
  KronaMethod(core::Backbone& b, const MethodOptions& opt) {
    const auto targets = select_linears(b, opt.krona_targets);
    for (auto& [name, lin] : targets)
      if (lin->branch) seam_taken("krona", name + " (Linear branch: LoRA, DyLoRA or KronA)");
      else if (opt.krona_a1 <= 0 || opt.krona_a2 <= 0 || lin->in % opt.krona_a1 || lin->out % opt.krona_a2)
        throw std::invalid_argument("krona: '" + name + "' is " + std::to_string(lin->in) + " -> " +
                                    std::to_string(lin->out) + "; krona_a1 = " + std::to_string(opt.krona_a1) +
                                    " must divide the input width and krona_a2 = " + std::to_string(opt.krona_a2) +
                                    " the output width");
    for (auto& [name, lin] : targets)
      branches_.push_back(std::make_unique<KronaBranch>(b.params(), name, *lin, opt.krona_a1, opt.krona_a2,
                                                        opt.krona_scale, opt.seed));
  }
  std::string name() const override { return "krona"; }
};

// KronA^B (and KronA^B_res): one d -> d branch parallel to each layer's FFN. Not mergeable (the FFN is not
// linear).
class KronaBlockMethod : public Method {
 public:
  KronaBlockMethod(core::Backbone& b, const MethodOptions& opt, bool residual)
      : name_(residual ? "krona_b_res" : "krona_b") {
    const auto seams = layer_seams(b, name_);
    for (const auto& s : seams)
      if (*s.ffn_parallel) seam_taken(name_, s.layer + " ffn_parallel");
    const int d = b.config().hidden;
    if (opt.krona_a1 <= 0 || opt.krona_a2 <= 0 || d % opt.krona_a1 || d % opt.krona_a2)
      throw std::invalid_argument(name_ + ": hidden width " + std::to_string(d) + " is not divisible by krona_a1 = " +
                                  std::to_string(opt.krona_a1) + " and krona_a2 = " + std::to_string(opt.krona_a2));
    for (const auto& s : seams) {
      branches_.push_back(std::make_unique<KronaBranch>(b.params(), s.block_site, d, d, opt.krona_a1, opt.krona_a2,
                                                        opt.krona_scale, residual, opt.seed));
      *s.ffn_parallel = branches_.back().get();
    }
  }
  std::string name() const override { return name_; }

 private:
  std::string name_;
  std::vector<std::unique_ptr<KronaBranch>> branches_;
};

}  // namespace

std::vector<std::string> adapter_method_names() {
  return {"houlsby", "pfeiffer", "compacter", "compacter++", "krona", "krona_b", "krona_b_res"};
}

std::unique_ptr<Method> make_adapter_method(const std::string& name, core::Backbone& b, const MethodOptions& opt) {
  if (name == "houlsby") return std::make_unique<BottleneckMethod>(name, b, opt, true, true, false);
  if (name == "pfeiffer") return std::make_unique<BottleneckMethod>(name, b, opt, false, true, false);
  if (name == "compacter") return std::make_unique<BottleneckMethod>(name, b, opt, true, true, true);
  if (name == "compacter++") return std::make_unique<BottleneckMethod>(name, b, opt, false, true, true);
  if (name == "krona") return std::make_unique<KronaMethod>(b, opt);
  if (name == "krona_b") return std::make_unique<KronaBlockMethod>(b, opt, false);
  if (name == "krona_b_res") return std::make_unique<KronaBlockMethod>(b, opt, true);
  std::string valid;
  for (auto& n : adapter_method_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown adapter method '" + name + "'; valid: " + valid);
}

}  // namespace ladder::adapters
