#include "core/modules/linear.h"

#include "core/kernels/activations.h"
#include "core/kernels/gemm.h"

#include <stdexcept>

namespace ladder::core {

void Linear::forward(float* y, const float* x, int N, int ldy, int ldx, const BranchCall* call) const {
  if (!ldy) ldy = out;
  if (!ldx) ldx = in;
  const bool t = layout == WeightLayout::out_in;
  if (parallel == Parallel::row && tp && tp->size() > 1) {
    // Partial sums of every rank, completed by one all-reduce; the bias is added once, after it.
    if (ldy != out) throw std::logic_error("row-parallel Linear: the output must be contiguous");
    gemm(false, t, N, out, in, 1.0f, x, ldx, weight->w(), t ? in : out, 0.0f, y, ldy);
    if (branch) branch->forward_add(y, x, N, ldy, ldx, call ? *call : BranchCall{});
    tp->all_reduce_sum(y, size_t(N) * out);
    if (bias) {
      const float* b = bias->w();
#pragma omp parallel for schedule(static)
      for (int n = 0; n < N; ++n) {
        float* row = y + size_t(n) * ldy;
#pragma omp simd
        for (int o = 0; o < out; ++o) row[o] += b[o];
      }
    }
    return;
  }
  // out_in: W is [out, in] -> y = x W^T ; in_out: W is [in, out] -> y = x W
  // With a bias, y starts as the bias and the GEMM accumulates (beta = 1): BLAS would otherwise make its
  // own pass to zero y for beta = 0, and we a third one to add the bias.
  if (bias) {
    const float* b = bias->w();
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      float* row = y + size_t(n) * ldy;
#pragma omp simd
      for (int o = 0; o < out; ++o) row[o] = b[o];
    }
  }
  gemm(false, t, N, out, in, 1.0f, x, ldx, weight->w(), t ? in : out, bias ? 1.0f : 0.0f, y, ldy);
  if (branch) branch->forward_add(y, x, N, ldy, ldx, call ? *call : BranchCall{});
}

void Linear::backward(float* dx, const float* dy, const float* x, int N, bool accumulate_dx, int ldx, int ldy) const {
  if (!ldy) ldy = out;
  if (!ldx) ldx = in;
  const bool t = layout == WeightLayout::out_in;
  if (dx) {
    // out_in: dx = dy W ([N,out]x[out,in]); in_out: dx = dy W^T
    gemm(false, !t, N, in, out, 1.0f, dy, ldy, weight->w(), t ? in : out, accumulate_dx ? 1.0f : 0.0f, dx, ldx);
  }
  if (weight->trainable) {
    if (t)  // dW [out,in] += dy^T x
      gemm(true, false, out, in, N, 1.0f, dy, ldy, x, ldx, 1.0f, weight->g(), in);
    else  // dW [in,out] += x^T dy
      gemm(true, false, in, out, N, 1.0f, x, ldx, dy, ldy, 1.0f, weight->g(), out);
  }
  if (branch) branch->backward(dx, dy, x, N, ldx, ldy);
  if (bias && bias->trainable) {
    float* db = bias->g();
    if (ldy == out) {
      bias_backward(db, dy, N, out);
    } else {
      for (int n = 0; n < N; ++n)
        for (int o = 0; o < out; ++o) db[o] += dy[size_t(n) * ldy + o];
    }
  }
}

}  // namespace ladder::core
