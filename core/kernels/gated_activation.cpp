#include "core/kernels/gated_activation.h"
#include "core/kernels/hot_kernel.h"

#include "core/kernels/vec_math.h"

namespace ladder::core {

namespace {
constexpr size_t kParallelMin = 1 << 14;
constexpr float kSqrt2OverPi = 0.79788456080286535588f;
constexpr float kGeluCoef = 0.044715f;

// act(x) and act'(x).
inline void act_and_slope(float x, GateActivation act, float& a, float& da) {
  if (act == GateActivation::silu) {
    const float s = 1.0f / (1.0f + vec_math::exp(-x));
    a = x * s;
    da = s * (1.0f + x * (1.0f - s));
  } else {
    const float u = kSqrt2OverPi * (x + kGeluCoef * x * x * x);
    const float t = vec_math::tanh(u);
    a = 0.5f * x * (1.0f + t);
    da = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kGeluCoef * x * x);
  }
}
}  // namespace

LADDER_HOT_KERNEL void gated_forward(float* h, const float* gate, const float* up, size_t n, GateActivation act) {
  if (act == GateActivation::silu) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (size_t i = 0; i < n; i++) {
      const float x = gate[i];
      h[i] = x / (1.0f + vec_math::exp(-x)) * up[i];
    }
  } else {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (size_t i = 0; i < n; i++) {
      const float x = gate[i];
      h[i] = 0.5f * x * (1.0f + vec_math::tanh(kSqrt2OverPi * (x + kGeluCoef * x * x * x))) * up[i];
    }
  }
}

LADDER_HOT_KERNEL void gated_backward(float* d_gate, float* d_up, const float* dh, const float* gate, const float* up,
                                      size_t n, GateActivation act) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (size_t i = 0; i < n; i++) {
    float a, da;
    act_and_slope(gate[i], act, a, da);
    const float d = dh[i], u = up[i];
    d_up[i] = d * a;
    d_gate[i] = d * u * da;
  }
}

}  // namespace ladder::core
