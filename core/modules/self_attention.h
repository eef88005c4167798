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
  int key_positions = 0;  // the model's max length: probability-dropout counters keyed by sample (see attention.h)
  // Tensor parallelism: NH is this rank's heads, [head0, head0 + NH) of heads_total; q/k/v (qkv) are
  // column-parallel and out row-parallel, so attention needs no communication and backward one all-reduce
  // of the input gradient over `tp`. D = NH * head size (C without tensor parallelism).
  int head0 = 0, heads_total = 0, D = 0;
  TensorParallelGroup* tp = nullptr;
  // Keep no softmax for backward and recompute it there, one (b, h) at a time, from the saved Q/K/V: saves
  // [B, NH, T, T] floats per layer for one more QK^T and softmax. Worth it where heads are many and narrow
  // (LST's side blocks).
  bool recompute_probs = false;
  int width() const { return D > 0 ? D : C; }
  bool sharded() const { return tp_active(tp); }

  struct Buffers {
    Tensor qkv;    // [N, 3D]  q | k | v column blocks
    Tensor probs;  // [B, NH, T, T] softmax before dropout
    Tensor ctx;    // [N, D]   attention output before the out projection ([B, D] with first_token_only)
    Tensor ctx_all;  // [N, D] scratch: every row of ctx when only the first token's go on
  };

  // y [N, C] OVERWRITTEN with out(attention(x)). With `save`, what backward reads goes to `saved` (ctx only
  // when the output projection is trainable); everything else goes to `scratch`, shared by all layers.
  // `call` is passed to the projections' branches (LoRA...), null for none.
  // first_token_only: y is [B, C], the output at position 0 of each sequence (keys and values still
  // cover every token); `out_call` (the row batch of first_token_rows) then goes to the out projection.
  void forward(float* y, const float* x, Buffers& saved, Buffers& scratch, bool save, const TokenBatch& b,
               float dropout, uint64_t seed, const SampleKeys& samples, const BranchCall* call = nullptr,
               bool first_token_only = false, const BranchCall* out_call = nullptr) const;
  // dx OVERWRITTEN (or ACCUMULATED when accumulate_dx; null: parameter gradients only). dy is [B, C] with
  // first_token_only. dqkv_ws [N, 3D] and scratch (backward_scratch_floats()) are workspace; tp_ws [N, C]
  // too, needed when sharded() and accumulate_dx (the partial input gradient is reduced apart from what dx
  // already holds).
  void backward(float* dx, const float* dy, const float* x, const Buffers& buf, const TokenBatch& b, float dropout,
                uint64_t seed, const SampleKeys& samples, float* dqkv_ws, float* scratch, bool accumulate_dx,
                bool first_token_only = false, float* tp_ws = nullptr) const;
  // Floats of `scratch` backward needs: the attention kernel's (attention_backward_scratch_floats) + [N, D].
  size_t backward_scratch_floats(const TokenBatch& b) const {
    return attention_backward_scratch_floats(shape(b), /*recompute_probs=*/true) + size_t(b.rows()) * width();
  }

  AttentionShape shape(const TokenBatch& b, const SampleKeys& samples = {}) const {
    const int Dw = width();
    return {b.B, b.T, NH, Dw / NH, 3 * Dw, samples, key_positions, head0, heads_total};
  }
  double flops(const TokenBatch& b) const;
};

}  // namespace ladder::core
