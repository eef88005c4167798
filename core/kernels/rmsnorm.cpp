#include "core/kernels/rmsnorm.h"
#include "core/kernels/hot_kernel.h"

#include <cmath>
#include <vector>

#include <omp.h>

namespace ladder::core {

LADDER_HOT_KERNEL void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int N, int C, float eps,
                                       bool unit_offset) {
  const float off = unit_offset ? 1.0f : 0.0f;
#pragma omp parallel for schedule(static) if (N >= 16)
  for (int n = 0; n < N; ++n) {
    const float* xr = x + size_t(n) * C;
    float* o = out + size_t(n) * C;
    // The sum of squares in double: as accurate as PyTorch's pairwise float sum, whatever C.
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int c = 0; c < C; ++c) ss += double(xr[c]) * xr[c];
    const float r = 1.0f / std::sqrt(float(ss / C) + eps);
    if (rstd) rstd[n] = r;
#pragma omp simd
    for (int c = 0; c < C; ++c) o[c] = (xr[c] * r) * (w[c] + off);
  }
}

// dx = r * (dy*g - xhat * mean(dy*g*xhat)),  xhat = x*r;  dw += sum_n dy * xhat.
LADDER_HOT_KERNEL void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                                        const float* rstd, int N, int C, bool unit_offset) {
  const float off = unit_offset ? 1.0f : 0.0f;
  const int threads = N >= 16 ? omp_get_max_threads() : 1;
  // Per-thread partial sums of dw, added in thread order: deterministic for a given thread count.
  std::vector<float> partial(dw ? size_t(threads) * C : 0, 0.0f);
#pragma omp parallel num_threads(threads)
  {
    float* pw = dw ? partial.data() + size_t(omp_get_thread_num()) * C : nullptr;
#pragma omp for schedule(static)
    for (int n = 0; n < N; ++n) {
      const float* xr = x + size_t(n) * C;
      const float* d = dy + size_t(n) * C;
      float* o = dx + size_t(n) * C;
      const float r = rstd[n];
      // In double: dx subtracts two nearly equal terms when dy is nearly parallel to xhat.
      double dot = 0.0;
#pragma omp simd reduction(+ : dot)
      for (int c = 0; c < C; ++c) dot += double(d[c] * (w[c] + off)) * xr[c];
      const float m = float(dot * r / C);  // mean(dy*g*xhat)
      if (pw) {
#pragma omp simd
        for (int c = 0; c < C; ++c) pw[c] += d[c] * xr[c] * r;
      }
#pragma omp simd
      for (int c = 0; c < C; ++c) o[c] = r * (d[c] * (w[c] + off) - xr[c] * r * m);
    }
  }
  if (dw)
    for (int t = 0; t < threads; ++t)
      for (int c = 0; c < C; ++c) dw[c] += partial[size_t(t) * C + c];
}

}  // namespace ladder::core
