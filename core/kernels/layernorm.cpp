#include "core/kernels/layernorm.h"
#include "core/kernels/hot_kernel.h"

#include <cmath>
#include <cstddef>

namespace ladder::core {

// out, inp: [N, C]; weight, bias: [C]; mean, rstd: [N] or nullptr.
// Biased variance and eps inside the square root, like torch.nn.LayerNorm. Two passes over the row (mean,
// then the centred sum of squares) keep the variance accurate when |mean| >> std.
LADDER_HOT_KERNEL void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight, const float* bias,
                       int N, int C, float eps) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < N; r++) {
    const float* x = inp + size_t(r) * C;
    float* o = out + size_t(r) * C;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int c = 0; c < C; c++) sum += x[c];
    float m = sum / C;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int c = 0; c < C; c++) {
      float d = x[c] - m;
      ss += d * d;
    }
    float s = 1.0f / std::sqrt(ss / C + eps);
#pragma omp simd
    for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * weight[c] + bias[c];
    if (mean) mean[r] = m;
    if (rstd) rstd[r] = s;
  }
}

// dinp OVERWRITTEN: rstd * (w*dout - mean(w*dout) - norm * mean(w*dout*norm)).
// dweight += sum_rows dout*norm, dbias += sum_rows dout (ACCUMULATED; nullptr skips). The parameter gradients
// are a second pass where each thread owns a block of columns, so no two threads write the same element and
// the sums do not depend on the thread count.
LADDER_HOT_KERNEL void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < N; r++) {
    const float* x = inp + size_t(r) * C;
    const float* d = dout + size_t(r) * C;
    float* di = dinp + size_t(r) * C;
    float m = mean[r], s = rstd[r];
    float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
#pragma omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)
    for (int c = 0; c < C; c++) {
      float norm = (x[c] - m) * s;
      float dn = weight[c] * d[c];
      dnorm_mean += dn;
      dnorm_norm_mean += dn * norm;
    }
    dnorm_mean /= C;
    dnorm_norm_mean /= C;
#pragma omp simd
    for (int c = 0; c < C; c++) {
      float norm = (x[c] - m) * s;
      di[c] = s * (weight[c] * d[c] - dnorm_mean - norm * dnorm_norm_mean);
    }
  }
  if (!dweight && !dbias) return;
  constexpr int kBlock = 64;
  int nblocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int blk = 0; blk < nblocks; blk++) {
    int c0 = blk * kBlock, c1 = c0 + kBlock < C ? c0 + kBlock : C;
    float dw[kBlock] = {}, db[kBlock] = {};
    for (int r = 0; r < N; r++) {
      const float* x = inp + size_t(r) * C;
      const float* d = dout + size_t(r) * C;
      float m = mean[r], s = rstd[r];
#pragma omp simd
      for (int c = c0; c < c1; c++) {
        dw[c - c0] += d[c] * (x[c] - m) * s;
        db[c - c0] += d[c];
      }
    }
    for (int c = c0; c < c1; c++) {
      if (dweight) dweight[c] += dw[c - c0];
      if (dbias) dbias[c] += db[c - c0];
    }
  }
}

}  // namespace ladder::core
