#pragma once
// RMSNorm with a trainable-or-frozen scale (Llama's `*layernorm.weight`, `norm.weight`; Gemma's scale is
// 1 + w). See core/kernels/rmsnorm.h for the math.
#include "core/kernels/rmsnorm.h"
#include "core/modules/parameter.h"

namespace ladder::core {

struct RmsNorm {
  Parameter* weight = nullptr;
  int C = 0;
  float eps = 1e-6f;
  bool unit_offset = false;

  // out [N, C] OVERWRITTEN (may alias x); rstd [N] written when non-null.
  void forward(float* out, float* rstd, const float* x, int N) const {
    rmsnorm_forward(out, rstd, x, weight->w(), N, C, eps, unit_offset);
  }
  // dx OVERWRITTEN (may alias dy); the weight's gradient ACCUMULATES when trainable.
  void backward(float* dx, const float* dy, const float* x, const float* rstd, int N) const {
    rmsnorm_backward(dx, weight->g(), dy, x, weight->w(), rstd, N, C, unit_offset);
  }
};

}  // namespace ladder::core
