#pragma once
// LayerNorm over the last dimension with optional trainable affine parameters (Hugging Face names
// `*.LayerNorm.weight/bias` for BERT, `ln_*.weight/bias` for GPT-2).
#include "core/modules/parameter.h"

namespace ladder::core {

struct LayerNorm {
  Parameter* weight = nullptr;
  Parameter* bias = nullptr;
  int C = 0;
  float eps = 1e-12f;

  // out [N,C] OVERWRITTEN; mean/rstd [N] written when non-null (they are what backward needs, with x).
  void forward(float* out, float* mean, float* rstd, const float* x, int N) const;
  // dx OVERWRITTEN; weight/bias gradients ACCUMULATE when trainable.
  void backward(float* dx, const float* dy, const float* x, const float* mean, const float* rstd, int N) const;
};

}  // namespace ladder::core
