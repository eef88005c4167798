#pragma once
// Gradient scratch shared by every layer of a backward pass (one set per model, not per layer), grown to
// the largest batch once and then reused, so a training step allocates nothing after the first.
#include "core/kernels/attention.h"
#include "core/modules/step_context.h"
#include "core/tensor/tensor.h"

namespace ladder::core {

struct BackwardWorkspace {
  Tensor d_a, d_b;   // [N, C]
  Tensor d_ffn;      // [N, F]
  Tensor d_qkv;      // [N, 3C]
  Tensor scratch;    // attention scratch (per thread, room to recompute probabilities: small) + [N, C] for d(ctx)
  Tensor d_tp;       // [N, C] a partial input gradient under tensor parallelism (empty otherwise)

  void ensure(const TokenBatch& b, int C, int F, int NH, bool tensor_parallel = false) {
    const int64_t N = b.rows();
    Tensor::ensure(d_a, {N, C}, DType::f32, MemCategory::workspace);
    Tensor::ensure(d_b, {N, C}, DType::f32, MemCategory::workspace);
    Tensor::ensure(d_ffn, {N, F}, DType::f32, MemCategory::workspace);
    Tensor::ensure(d_qkv, {N, 3 * C}, DType::f32, MemCategory::workspace);
    AttentionShape s{b.B, b.T, NH, C / NH, 3 * C};
    Tensor::ensure(scratch, {int64_t(attention_backward_scratch_floats(s, /*recompute_probs=*/true)) + N * C}, DType::f32,
                   MemCategory::workspace);
    if (tensor_parallel) Tensor::ensure(d_tp, {N, C}, DType::f32, MemCategory::workspace);
  }
};

}  // namespace ladder::core
