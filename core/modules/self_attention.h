#pragma once
// Multi-head self-attention as Hugging Face's BERT and GPT-2 compute it: Q/K/V projections (three
// nn.Linear for BERT, one fused Conv1D `c_attn` for GPT-2), masked softmax(QK^T/sqrt(HS)) with dropout on
// the probabilities, then the output projection. Residual, output dropout and LayerNorm belong to the block.
#include "core/kernels/attention.h"
#include "core/modules/linear.h"
#include "core/modules/step_context.h"

namespace ladder::core {

struct SelfAttention {
  Linear query, key, value;  // BERT (fused == false)
  Linear qkv;                // GPT-2 (fused == true): [C, 3C] Conv1D, columns q | k | v
  bool fused = false;
  Linear out;
  int C = 0, NH = 0;
  bool causal = false;
  float dropout_p = 0.0f;

  struct Buffers {
    Tensor qkv;    // [N, 3C]  q | k | v column blocks
    Tensor probs;  // [B, NH, T, T] softmax before dropout
    Tensor ctx;    // [N, C]   attention output before the out projection
  };

  // y [N, C] OVERWRITTEN with out(attention(x)). With `save`, what backward reads goes to `saved` (ctx only
  // when the output projection is trainable); everything else goes to `scratch`, shared by all layers.
  // `call` is passed to the projections' branches (LoRA...), null for none.
  void forward(float* y, const float* x, Buffers& saved, Buffers& scratch, bool save, const TokenBatch& b,
               float dropout, uint64_t seed, const BranchCall* call = nullptr) const;
  // dx OVERWRITTEN (or ACCUMULATED when accumulate_dx). dqkv_ws [N, 3C] and scratch are workspace.
  void backward(float* dx, const float* dy, const float* x, const Buffers& buf, const TokenBatch& b, float dropout,
                uint64_t seed, float* dqkv_ws, float* scratch, bool accumulate_dx) const;

  AttentionShape shape(const TokenBatch& b) const { return {b.B, b.T, NH, C / NH, 3 * C}; }
  double flops(const TokenBatch& b) const;
};

}  // namespace ladder::core
