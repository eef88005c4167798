#include "core/modules/linear.h"

#include "core/kernels/activations.h"
#include "core/kernels/gemm.h"

#include <stdexcept>

namespace ladder::core {

void Linear::forward(float* y, const float* x, int N, int ldy, int ldx, const BranchCall* call) const {
  if (!ldy) ldy = out;
  if (!ldx) ldx = in;
  const BranchCall none;
  const float* xw = x;  // what the weight multiplies
  int ldxw = ldx;
  if (scale) xw = scale->scale_input(x, N, ldx, &ldxw);
  if (parallel == Parallel::row && tp_active(tp)) {
    // Partial sums of every rank, completed by one all-reduce; the bias is added once, after it.
    if (ldy != out) throw std::logic_error("row-parallel Linear: the output must be contiguous");
    view().forward(N, xw, ldxw, 0.0f, y, ldy);
    if (branch) branch->forward_add(y, x, N, ldy, ldx, call ? *call : BranchCall{});
    reduce_from_region(tp, y, size_t(N) * out);
    if (bias) {
      const float* b = bias->w();
#pragma omp parallel for schedule(static)
      for (int n = 0; n < N; ++n) {
        float* row = y + size_t(n) * ldy;
#pragma omp simd
        for (int o = 0; o < out; ++o) row[o] += b[o];
      }
    }
    if (scale) scale->scale_output(y, N, ldy, call ? *call : none);
    return;
  }
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
  view().forward(N, xw, ldxw, bias ? 1.0f : 0.0f, y, ldy);
  if (branch) branch->forward_add(y, x, N, ldy, ldx, call ? *call : BranchCall{});
  if (scale) scale->scale_output(y, N, ldy, call ? *call : none);
}

void Linear::backward(float* dx, const float* dy, const float* x, int N, bool accumulate_dx, int ldx, int ldy) const {
  if (!ldy) ldy = out;
  if (!ldx) ldx = in;
  const bool t = layout == WeightLayout::out_in;
  if (scale) dy = scale->backward_output(dy, N, ldy, &ldy);
  if (scale && scale->scales_input()) {
    // d/dx' = dy W, then the scale turns it into d/dx (and takes its own gradient from it and x).
    thread_local Tensor g_buf;  // reused across calls: no allocation per step
    Tensor::ensure(g_buf, {int64_t(N) * in}, DType::f32, MemCategory::workspace);
    float* g = g_buf.data<float>();
    view().backward_input(N, dy, ldy, 0.0f, g, in);
    scale->backward_input(g, x, N, in, ldx);
    if (dx) {
#pragma omp parallel for schedule(static)
      for (int n = 0; n < N; ++n) {
        float* d = dx + size_t(n) * ldx;
        const float* s = g + size_t(n) * in;
        if (accumulate_dx)
          for (int i = 0; i < in; ++i) d[i] += s[i];
        else
          for (int i = 0; i < in; ++i) d[i] = s[i];
      }
    }
  } else if (dx) {
    // out_in: dx = dy W ([N,out]x[out,in]); in_out: dx = dy W^T
    view().backward_input(N, dy, ldy, accumulate_dx ? 1.0f : 0.0f, dx, ldx);
  }
  if (weight->trainable) {
    int ldxw = ldx;
    const float* xw = scale ? scale->scale_input(x, N, ldx, &ldxw) : x;
    if (t)  // dW [out,in] += dy^T x'
      gemm(true, false, out, in, N, 1.0f, dy, ldy, xw, ldxw, 1.0f, weight->g(), in);
    else  // dW [in,out] += x'^T dy
      gemm(true, false, in, out, N, 1.0f, xw, ldxw, dy, ldy, 1.0f, weight->g(), out);
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
