#include "core/optim/grad_clip.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/modules/tensor_parallel_regions.h"

namespace ladder::core {

double l2_norm(const float* x, int64_t n) {
  double sum = 0.0;
#pragma omp parallel for simd reduction(+ : sum) schedule(static) if (n >= (1 << 16))
  for (int64_t i = 0; i < n; i++) sum += double(x[i]) * double(x[i]);
  return std::sqrt(sum);
}

float global_grad_norm(const ParameterRegistry& params) {
  const Tensor& g = params.gradient_buffer();
  if (!g.defined() || g.numel() == 0) return 0.0f;
  return float(l2_norm(g.data<float>(), g.numel()));
}

float clip_grad_norm(ParameterRegistry& params, float max_norm) {
  if (!(max_norm > 0))
    throw std::invalid_argument("clip_grad_norm: max_norm must be > 0, got " + std::to_string(max_norm));
  const Tensor& g = params.gradient_buffer();
  if (!g.defined() || g.numel() == 0) return 0.0f;
  float* x = g.data<float>();
  const int64_t n = g.numel();
  const float norm = float(l2_norm(x, n));
  if (!std::isfinite(norm)) return norm;
  // torch: clip_coef = max_norm / (total_norm + 1e-6) in f32, clamped to 1, then grads *= clip_coef.
  const float coef = float(max_norm) / (norm + 1e-6f);
  if (coef < 1.0f) {
#pragma omp parallel for simd schedule(static) if (n >= (1 << 16))
    for (int64_t i = 0; i < n; i++) x[i] *= coef;
  }
  return norm;
}

float clip_grad_norm(ParameterRegistry& params, float max_norm, TensorParallelGroup* tp) {
  if (!tp_active(tp)) return clip_grad_norm(params, max_norm);
  if (!(max_norm > 0))
    throw std::invalid_argument("clip_grad_norm: max_norm must be > 0, got " + std::to_string(max_norm));
  double sharded = 0, replicated = 0;
  for (Parameter* p : params.trainable()) {
    const double n = l2_norm(p->g(), p->grad.numel());
    (p->shard.sharded() ? sharded : replicated) += n * n;
  }
  float part = float(sharded);
  reduce_from_region(tp, &part, 1);
  const float norm = float(std::sqrt(double(part) + replicated));
  if (!std::isfinite(norm)) return norm;
  const float coef = float(max_norm) / (norm + 1e-6f);
  if (coef < 1.0f) {
    const Tensor& g = params.gradient_buffer();
    float* x = g.data<float>();
    const int64_t n = g.numel();
#pragma omp parallel for simd schedule(static) if (n >= (1 << 16))
    for (int64_t i = 0; i < n; i++) x[i] *= coef;
  }
  return norm;
}

}  // namespace ladder::core
