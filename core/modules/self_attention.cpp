#include "core/modules/self_attention.h"

#include <cmath>

#include "core/modules/activation_slot.h"

namespace ladder::core {

void SelfAttention::forward(float* y, const float* x, Buffers& saved, Buffers& scratch, bool save, const TokenBatch& b,
                            float dropout, uint64_t seed, const BranchCall* call) const {
  const int N = b.rows();
  Tensor& qkv_t = activation_slot(save, saved.qkv, scratch.qkv, {N, 3 * C});
  Tensor& probs_t = activation_slot(save, saved.probs, scratch.probs, {b.B, NH, b.T, b.T});
  Tensor& ctx_t = activation_slot(save && out.needs_input(), saved.ctx, scratch.ctx, {N, C});
  float* qkv_out = qkv_t.data<float>();
  if (fused) {
    qkv.forward(qkv_out, x, N, 0, 0, call);
  } else {
    query.forward(qkv_out, x, N, 3 * C, 0, call);
    key.forward(qkv_out + C, x, N, 3 * C, 0, call);
    value.forward(qkv_out + 2 * C, x, N, 3 * C, 0, call);
  }
  const AttentionShape s = shape(b);
  attention_forward(ctx_t.data<float>(), probs_t.data<float>(), qkv_out, qkv_out + C, qkv_out + 2 * C,
                    b.attention_mask, causal, 1.0f / std::sqrt(float(s.HS)), dropout, seed, s);
  out.forward(y, ctx_t.data<float>(), N, 0, 0, call);
}

void SelfAttention::backward(float* dx, const float* dy, const float* x, const Buffers& buf, const TokenBatch& b,
                             float dropout, uint64_t seed, float* dqkv, float* scratch, bool accumulate_dx) const {
  const int N = b.rows();
  // d(ctx) lives after the attention kernel's scratch: attention_backward reads it while writing dq/dk/dv.
  const AttentionShape s = shape(b);
  float* dctx = scratch + attention_backward_scratch_floats(s);
  out.backward(dctx, dy, saved_or_null(buf.ctx), N);
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
