#include "adapters/adapter_methods.h"

#include <stdexcept>

#include "adapters/bottleneck_adapter.h"
#include "adapters/krona.h"
#include "adapters/phm.h"
#include "adapters/target_linears.h"

namespace ladder::adapters {

namespace {

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
  BottleneckMethod(std::string name, core::Backbone& b, const MethodConfig& opt, bool at_attention, bool at_ffn,
                   bool phm)
      : name_(std::move(name)) {
    const auto seams = b.layer_seams();
    for (const auto& s : seams) {  // check every seam before installing anything
      if (at_attention && *s.after_attention) seam_taken(name_, s.prefix + " after_attention");
      if (at_ffn && *s.after_ffn) seam_taken(name_, s.prefix + " after_ffn");
    }
    const auto act = parse_adapter_activation(opt.text("adapter_activation"));
    const int d = b.config().hidden, rf = opt.integer("adapter_reduction"), n = opt.integer("compacter_n");
    // shapes checked before anything is registered
    if (rf <= 0 || d % rf != 0)
      throw std::invalid_argument(name_ + ": hidden width " + std::to_string(d) + " is not divisible by adapter_reduction " +
                                  std::to_string(rf));
    if (phm && (n <= 0 || d % n != 0 || (d / rf) % n != 0))
      throw std::invalid_argument(name_ + ": hidden width " + std::to_string(d) + " and bottleneck " +
                                  std::to_string(d / rf) + " must be divisible by compacter_n " + std::to_string(n));
    auto& reg = b.params();
    core::Parameter* rule = phm ? &add_phm_rule(reg, n, opt.seed) : nullptr;
    auto make = [&](const std::string& site) {
      return phm ? make_compacter_adapter(reg, site, d, rf, *rule, act, opt.seed)
                 : BottleneckAdapter::dense(reg, site, d, rf, act, AdapterInit::bert, opt.seed);
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
    if (opt.flag("train_layer_norms")) {
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
  KronaMethod(core::Backbone& b, const MethodConfig& opt) {
    const int a1 = opt.integer("krona_a1"), a2 = opt.integer("krona_a2");
    const auto targets = select_linears(b, opt.list("krona_targets"));
    for (auto& [name, lin] : targets)
      if (lin->branch) seam_taken("krona", name + " (Linear branch: LoRA, DyLoRA or KronA)");
      else if (a1 <= 0 || a2 <= 0 || lin->in % a1 || lin->out % a2)
        throw std::invalid_argument("krona: '" + name + "' is " + std::to_string(lin->in) + " -> " +
                                    std::to_string(lin->out) + "; krona_a1 = " + std::to_string(a1) +
                                    " must divide the input width and krona_a2 = " + std::to_string(a2) +
                                    " the output width");
    for (auto& [name, lin] : targets)
      branches_.push_back(std::make_unique<KronaBranch>(b.params(), name, *lin, a1, a2, opt.real("krona_scale"), opt.seed));
  }
  std::string name() const override { return "krona"; }
};

// KronA^B (and KronA^B_res): one d -> d branch parallel to each layer's FFN. Not mergeable (the FFN is not
// linear).
class KronaBlockMethod : public Method {
 public:
  KronaBlockMethod(core::Backbone& b, const MethodConfig& opt, bool residual)
      : name_(residual ? "krona_b_res" : "krona_b") {
    const auto seams = b.layer_seams();
    for (const auto& s : seams)
      if (*s.ffn_parallel) seam_taken(name_, s.prefix + " ffn_parallel");
    const int d = b.config().hidden, a1 = opt.integer("krona_a1"), a2 = opt.integer("krona_a2");
    if (a1 <= 0 || a2 <= 0 || d % a1 || d % a2)
      throw std::invalid_argument(name_ + ": hidden width " + std::to_string(d) + " is not divisible by krona_a1 = " +
                                  std::to_string(a1) + " and krona_a2 = " + std::to_string(a2));
    for (const auto& s : seams) {
      branches_.push_back(std::make_unique<KronaBranch>(b.params(), s.block_site, d, d, a1, a2, opt.real("krona_scale"),
                                                        residual, opt.seed));
      *s.ffn_parallel = branches_.back().get();
    }
  }
  std::string name() const override { return name_; }

 private:
  std::string name_;
  std::vector<std::unique_ptr<KronaBranch>> branches_;
};

}  // namespace

namespace {

std::vector<OptionSpec> bottleneck_options(bool phm) {
  std::vector<OptionSpec> o = {
      {"adapter_reduction", OptionType::integer, 16, "bottleneck adapters: m = d / reduction", positive()},
      {"adapter_activation", OptionType::text, std::string("relu"), "relu, swish (silu), gelu or gelu_new", one_of({"relu", "swish", "silu", "gelu", "gelu_new"})},
      {"train_layer_norms", OptionType::boolean, false, "also train the backbone's LayerNorms", nullptr}};
  if (phm) o.push_back({"compacter_n", OptionType::integer, 4, "PHM components", positive()});
  return o;
}

std::vector<OptionSpec> krona_options(bool targets) {
  std::vector<OptionSpec> o = {{"krona_a1", OptionType::integer, 16, "KronA factor A rows", nullptr},
                               {"krona_a2", OptionType::integer, 16, "KronA factor A columns", nullptr},
                               {"krona_scale", OptionType::real, 1.0f, "KronA scale s", nullptr}};
  if (targets)
    o.push_back({"krona_targets", OptionType::list, std::vector<std::string>{"query", "value"}, "KronA target Linears", nullptr});
  return o;
}

MethodInfo bottleneck_info(const std::string& name, const std::string& summary, bool at_attention, bool phm) {
  MethodInfo m;
  m.name = name;
  m.summary = summary;
  m.options = bottleneck_options(phm);
  m.make = [name, at_attention, phm](core::Backbone& b, const MethodConfig& o) -> std::unique_ptr<Method> {
    return std::make_unique<BottleneckMethod>(name, b, o, at_attention, true, phm);
  };
  return m;
}

MethodInfo krona_block_info(bool residual) {
  MethodInfo m;
  m.name = residual ? "krona_b_res" : "krona_b";
  m.summary = residual ? "KronA^B_res: krona_b plus a learnable residual scale" : "KronA^B: a Kronecker branch parallel to each FFN";
  m.options = krona_options(false);
  m.make = [residual](core::Backbone& b, const MethodConfig& o) -> std::unique_ptr<Method> {
    return std::make_unique<KronaBlockMethod>(b, o, residual);
  };
  return m;
}

}  // namespace

std::vector<MethodInfo> adapter_method_infos() {
  std::vector<MethodInfo> v;
  v.push_back(bottleneck_info("houlsby", "Houlsby adapters after attention and after the FFN", true, false));
  v.push_back(bottleneck_info("pfeiffer", "Pfeiffer adapter after the FFN", false, false));
  v.push_back(bottleneck_info("compacter", "Compacter (LPHM adapters) after attention and after the FFN", true, true));
  v.push_back(bottleneck_info("compacter++", "Compacter++ (LPHM adapter) after the FFN", false, true));
  MethodInfo k;
  k.name = "krona";
  k.summary = "KronA: Kronecker-product branches beside the target Linears";
  k.options = krona_options(true);
  k.make = [](core::Backbone& b, const MethodConfig& o) -> std::unique_ptr<Method> { return std::make_unique<KronaMethod>(b, o); };
  k.exports = export_merged;
  v.push_back(std::move(k));
  v.push_back(krona_block_info(false));
  v.push_back(krona_block_info(true));
  return v;
}

}  // namespace ladder::adapters
