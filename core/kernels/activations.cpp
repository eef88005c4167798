#include "core/kernels/activations.h"
#include "core/kernels/hot_kernel.h"

#include <cmath>

#include "core/kernels/vec_math.h"

namespace ladder::core {

// Element-wise loops only spawn threads when the work pays for the fork/join.
static constexpr size_t kParallelMin = 1 << 14;

static constexpr float kInvSqrt2 = 0.70710678118654752440f;
static constexpr float kInvSqrt2Pi = 0.39894228040143267794f;   // 1/sqrt(2*pi)
static constexpr float kSqrt2OverPi = 0.79788456080286535588f;  // sqrt(2/pi)
static constexpr float kGeluCoef = 0.044715f;

// out, inp: [n]. erf: 0.5 x (1 + erf(x/sqrt2)) (HF "gelu"); tanh: 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))
// (HF "gelu_new").
LADDER_HOT_KERNEL void gelu_forward(float* out, const float* inp, size_t n, GeluKind kind) {
  if (kind == GeluKind::erf) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (size_t i = 0; i < n; i++) {
      float x = inp[i];
      out[i] = 0.5f * x * (1.0f + vec_math::erf(x * kInvSqrt2));
    }
  } else {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (size_t i = 0; i < n; i++) {
      float x = inp[i];
      out[i] = 0.5f * x * (1.0f + vec_math::tanh(kSqrt2OverPi * (x + kGeluCoef * x * x * x)));
    }
  }
}

// dinp OVERWRITTEN (may alias dout).
LADDER_HOT_KERNEL void gelu_backward(float* dinp, const float* dout, const float* inp, size_t n, GeluKind kind) {
  if (kind == GeluKind::erf) {
    // d/dx = Phi(x) + x * phi(x)
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (size_t i = 0; i < n; i++) {
      float x = inp[i];
      float cdf = 0.5f * (1.0f + vec_math::erf(x * kInvSqrt2));
      float pdf = kInvSqrt2Pi * vec_math::exp(-0.5f * x * x);
      dinp[i] = dout[i] * (cdf + x * pdf);
    }
  } else {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (size_t i = 0; i < n; i++) {
      float x = inp[i];
      float u = kSqrt2OverPi * (x + kGeluCoef * x * x * x);
      float t = vec_math::tanh(u);
      float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCoef * x * x);
      dinp[i] = dout[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
    }
  }
}

LADDER_HOT_KERNEL void tanh_forward(float* out, const float* inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (size_t i = 0; i < n; i++) out[i] = std::tanh(inp[i]);
}

// dinp OVERWRITTEN; uses the saved output.
LADDER_HOT_KERNEL void tanh_backward(float* dinp, const float* dout, const float* out, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
}

LADDER_HOT_KERNEL void add(float* out, const float* a, const float* b, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

LADDER_HOT_KERNEL void add_inplace(float* out, const float* a, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (size_t i = 0; i < n; i++) out[i] += a[i];
}

// out: [N, C], bias: [C].
LADDER_HOT_KERNEL void add_bias(float* out, const float* bias, int N, int C) {
#pragma omp parallel for schedule(static) if (size_t(N) * C >= kParallelMin)
  for (int r = 0; r < N; r++) {
    float* o = out + size_t(r) * C;
#pragma omp simd
    for (int c = 0; c < C; c++) o[c] += bias[c];
  }
}

// dbias: [C] ACCUMULATES sum over rows of dout [N, C]. Threads own column blocks and sweep all rows, so the
// result has no races and does not depend on the thread count.
LADDER_HOT_KERNEL void bias_backward(float* dbias, const float* dout, int N, int C) {
  constexpr int kBlock = 64;
  int nblocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (size_t(N) * C >= kParallelMin)
  for (int blk = 0; blk < nblocks; blk++) {
    int c0 = blk * kBlock, c1 = c0 + kBlock < C ? c0 + kBlock : C;
    float acc[kBlock] = {};
    for (int r = 0; r < N; r++) {
      const float* d = dout + size_t(r) * C;
#pragma omp simd
      for (int c = c0; c < c1; c++) acc[c - c0] += d[c];
    }
    for (int c = c0; c < c1; c++) dbias[c] += acc[c - c0];
  }
}

LADDER_HOT_KERNEL void scale_inplace(float* x, float s, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (size_t i = 0; i < n; i++) x[i] *= s;
}

}  // namespace ladder::core
