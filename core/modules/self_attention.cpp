#include "core/modules/self_attention.h"

#include <cmath>

namespace ladder::core {

void SelfAttention::forward(float* y, const float* x, Buffers& buf, const TokenBatch& b, MemCategory cat,
                            float dropout, uint64_t seed) const {
  const int N = b.rows();
  Tensor::ensure(buf.qkv, {N, 3 * C}, DType::f32, cat);
  Tensor::ensure(buf.probs, {b.B, NH, b.T, b.T}, DType::f32, cat);
  Tensor::ensure(buf.ctx, {N, C}, DType::f32, cat);
  float* qkv_out = buf.qkv.data<float>();
  if (fused) {
    qkv.forward(qkv_out, x, N);
  } else {
    query.forward(qkv_out, x, N, 3 * C);
    key.forward(qkv_out + C, x, N, 3 * C);
    value.forward(qkv_out + 2 * C, x, N, 3 * C);
  }
  const AttentionShape s = shape(b);
  attention_forward(buf.ctx.data<float>(), buf.probs.data<float>(), qkv_out, qkv_out + C, qkv_out + 2 * C,
                    b.attention_mask, causal, 1.0f / std::sqrt(float(s.HS)), dropout, seed, s);
  out.forward(y, buf.ctx.data<float>(), N);
}

void SelfAttention::backward(float* dx, const float* dy, const float* x, const Buffers& buf, const TokenBatch& b,
                             float dropout, uint64_t seed, float* dqkv, float* scratch, bool accumulate_dx) const {
  const int N = b.rows();
  // d(ctx) lives after the attention kernel's scratch: attention_backward reads it while writing dq/dk/dv.
  const AttentionShape s = shape(b);
  float* dctx = scratch + attention_backward_scratch_floats(s);
  out.backward(dctx, dy, buf.ctx.data<float>(), N);
  const float* q = buf.qkv.data<float>();
  attention_backward(dqkv, dqkv + C, dqkv + 2 * C, dctx, q, q + C, q + 2 * C, buf.probs.data<float>(), causal,
                     1.0f / std::sqrt(float(s.HS)), dropout, seed, scratch, s);
  if (fused) {
    qkv.backward(dx, dqkv, x, N, accumulate_dx);
  } else {
    query.backward(dx, dqkv, x, N, accumulate_dx, 0, 3 * C);
    key.backward(dx, dqkv + C, x, N, true, 0, 3 * C);
    value.backward(dx, dqkv + 2 * C, x, N, true, 0, 3 * C);
  }
}

double SelfAttention::flops(const TokenBatch& b) const {
  const double N = b.rows();
  return 2.0 * N * C * 3 * C + 2.0 * N * C * C + 4.0 * b.B * double(b.T) * b.T * C;
}

}  // namespace ladder::core
