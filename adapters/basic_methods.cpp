#include "adapters/basic_methods.h"

#include <stdexcept>

namespace ladder::adapters {

namespace {

class FullMethod : public Method {
 public:
  explicit FullMethod(core::Backbone& b) { b.params().set_all_trainable(true); }
  std::string name() const override { return "full"; }
  bool mergeable() const override { return true; }  // nothing to fold: the weights are the model
};

class BitFitMethod : public Method {
 public:
  explicit BitFitMethod(core::Backbone& b) {
    int n = 0;
    for (auto& p : b.params().all())
      if (p->name.size() > 5 && p->name.compare(p->name.size() - 5, 5, ".bias") == 0) {
        b.params().set_trainable(p->name, true);
        ++n;
      }
    if (n == 0) throw std::runtime_error("bitfit: the backbone has no bias parameters");
  }
  std::string name() const override { return "bitfit"; }
  bool mergeable() const override { return true; }  // the trained biases are the model's own
};

}  // namespace

MethodInfo full_method_info() {
  MethodInfo m;
  m.name = "full";
  m.summary = "full fine-tuning: every backbone weight trains (the baseline)";
  m.make = [](core::Backbone& b, const MethodConfig&) { return std::make_unique<FullMethod>(b); };
  m.conflicts = {"*"};
  m.conflict_reason = "'full' trains every weight already";
  m.exports = export_merged;
  return m;
}

MethodInfo bitfit_method_info() {
  MethodInfo m;
  m.name = "bitfit";
  m.summary = "BitFit: only the backbone's bias terms train";
  m.make = [](core::Backbone& b, const MethodConfig&) { return std::make_unique<BitFitMethod>(b); };
  m.exports = export_merged;
  return m;
}

}  // namespace ladder::adapters
