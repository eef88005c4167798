#include "core/modules/self_attention.h"

#include <algorithm>
#include <cmath>

#include "core/kernels/activations.h"
#include "core/modules/activation_slot.h"

#include <stdexcept>

namespace ladder::core {

void SelfAttention::forward(float* y, const float* x, Buffers& saved, Buffers& scratch, bool save, const TokenBatch& b,
                            float dropout, uint64_t seed, const SampleKeys& samples, const BranchCall* call,
                            bool first_token_only, const BranchCall* out_call) const {
  const int N = b.rows(), D = width();
  Tensor& qkv_t = activation_slot(save, saved.qkv, scratch.qkv, {N, 3 * D});
  // The softmax is kept only for a backward that reads it; otherwise one [T, T] block per thread.
  const bool keep_probs = save && !recompute_probs;
  const AttentionShape s = shape(b, samples);
  Tensor& probs_t = keep_probs ? activation_slot(true, saved.probs, scratch.probs, {b.B, NH, b.T, b.T})
                               : activation_slot(false, saved.probs, scratch.probs,
                                                 {int64_t(attention_forward_scratch_floats(s))});
  const int R = first_token_only ? b.B : N;  // rows that go through the out projection
  Tensor& ctx_t = activation_slot(save && out.needs_input(), saved.ctx, scratch.ctx, {R, D});
  Tensor& ctx_all = first_token_only ? activation_slot(false, saved.ctx_all, scratch.ctx_all, {N, D}) : ctx_t;
  float* qkv_out = qkv_t.data<float>();
  if (fused) {
    qkv.forward(qkv_out, x, N, 0, 0, call);
  } else {
    query.forward(qkv_out, x, N, 3 * D, 0, call);
    key.forward(qkv_out + D, x, N, 3 * D, 0, call);
    value.forward(qkv_out + 2 * D, x, N, 3 * D, 0, call);
  }
  attention_forward(ctx_all.data<float>(), keep_probs ? probs_t.data<float>() : nullptr, qkv_out, qkv_out + D,
                    qkv_out + 2 * D, b.attention_mask, causal, 1.0f / std::sqrt(float(s.HS)), dropout, seed, s,
                    probs_t.data<float>(), size_t(probs_t.numel()));
  if (first_token_only) {
    const float* all = ctx_all.data<float>();
    float* first = ctx_t.data<float>();
    for (int r = 0; r < b.B; ++r) std::copy(all + size_t(r) * b.T * D, all + (size_t(r) * b.T + 1) * D, first + size_t(r) * D);
  }
  out.forward(y, ctx_t.data<float>(), R, 0, 0, first_token_only && out_call ? out_call : call);
}

void SelfAttention::backward(float* dx, const float* dy, const float* x, const Buffers& buf, const TokenBatch& b,
                             float dropout, uint64_t seed, const SampleKeys& samples, float* dqkv, float* scratch,
                             bool accumulate_dx, bool first_token_only, float* tp_ws) const {
  const int N = b.rows(), D = width();
  // d(ctx) lives after the attention kernel's scratch: attention_backward reads it while writing dq/dk/dv.
  const AttentionShape s = shape(b, samples);
  // (room for the recomputation either way: per-thread blocks are small, and one layout fits every layer)
  const size_t attn_floats = attention_backward_scratch_floats(s, /*recompute_probs=*/true);
  float* dctx = scratch + attn_floats;
  if (first_token_only) {
    // d(ctx) of the first tokens goes through dqkv's memory (free until attention_backward) into the
    // position-0 rows of a zeroed d(ctx): the other positions fed nothing.
    out.backward(dqkv, dy, saved_or_null(buf.ctx), b.B);
    std::fill(dctx, dctx + size_t(N) * D, 0.0f);
    for (int r = 0; r < b.B; ++r) std::copy(dqkv + size_t(r) * D, dqkv + size_t(r + 1) * D, dctx + size_t(r) * b.T * D);
  } else {
    out.backward(dctx, dy, saved_or_null(buf.ctx), N);
  }
  const float* q = buf.qkv.data<float>();
  // With recompute_probs the kernel recomputes each (b, h)'s softmax (as forward computed it) in its scratch.
  const float* probs = recompute_probs ? nullptr : buf.probs.data<float>();
  attention_backward(dqkv, dqkv + D, dqkv + 2 * D, dctx, q, q + D, q + 2 * D, probs, b.attention_mask, causal,
                     1.0f / std::sqrt(float(s.HS)), dropout, seed, scratch, attn_floats, s);
  // Sharded: q/k/v see only this rank's heads, so their input gradient is a partial sum (Megatron's "f"
  // conjugate): reduce it on its own, then add it to what dx already holds.
  const bool reduce = dx && sharded();
  if (reduce && accumulate_dx && !tp_ws) throw std::logic_error("sharded SelfAttention::backward needs tp_ws to accumulate");
  float* d_in = reduce && accumulate_dx ? tp_ws : dx;
  const bool acc = reduce ? false : accumulate_dx;
  if (fused) {
    qkv.backward(d_in, dqkv, x, N, acc);
  } else {
    query.backward(d_in, dqkv, x, N, acc, 0, 3 * D);
    key.backward(d_in, dqkv + D, x, N, true, 0, 3 * D);
    value.backward(d_in, dqkv + 2 * D, x, N, true, 0, 3 * D);
  }
  if (reduce) {
    copy_to_region_backward(tp, d_in, size_t(N) * C);
    if (d_in != dx) add_inplace(dx, d_in, size_t(N) * C);
  }
}

double SelfAttention::flops(const TokenBatch& b) const {
  const double N = b.rows();
  const double D = width();
  return 2.0 * N * C * 3 * D + 2.0 * N * D * C + 4.0 * b.B * double(b.T) * b.T * D;
}

}  // namespace ladder::core
