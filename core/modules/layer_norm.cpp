#include "core/modules/layer_norm.h"

#include "core/kernels/layernorm.h"

namespace ladder::core {

void LayerNorm::forward(float* out, float* mean, float* rstd, const float* x, int N) const {
  layernorm_forward(out, mean, rstd, x, weight->w(), bias->w(), N, C, eps);
}

void LayerNorm::backward(float* dx, const float* dy, const float* x, const float* mean, const float* rstd, int N) const {
  layernorm_backward(dx, weight->g(), bias->g(), dy, x, weight->w(), mean, rstd, N, C);
}

}  // namespace ladder::core
