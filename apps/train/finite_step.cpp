#include "apps/train/finite_step.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace ladder::apps {

namespace {

bool all_finite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return false;
  return true;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

void check_step_finite(int64_t step, double loss, float grad_norm, const core::ParameterRegistry& params,
                       const std::string& last_checkpoint) {
  if (std::isfinite(loss) && std::isfinite(grad_norm)) return;
  std::string what = "step " + std::to_string(step) + ": ";
  if (!std::isfinite(loss)) what += "the training loss is " + number(loss);
  if (!std::isfinite(grad_norm)) {
    if (!std::isfinite(loss)) what += " and ";
    what += "the gradient norm is " + number(grad_norm);
    for (const core::Parameter* p : params.trainable())
      if (p->grad.defined() && !all_finite(p->g(), p->grad.numel())) {
        what += " (the first non-finite gradient is that of '" + p->name + "')";
        break;
      }
  }
  what += "; the run stops before the optimizer applies it (corrupt input data, e.g. an activation store, or a "
          "diverging run: try a lower train.lr)";
  what += last_checkpoint.empty() ? "; no checkpoint was written" : "; the last checkpoint is " + last_checkpoint;
  throw std::runtime_error(what);
}

std::string first_nonfinite(const std::vector<std::pair<std::string, core::Tensor>>& tensors) {
  for (const auto& [name, t] : tensors)
    if (t.defined() && t.dtype() == core::DType::f32 && !all_finite(t.data<float>(), t.numel())) return name;
  return "";
}

}  // namespace ladder::apps
