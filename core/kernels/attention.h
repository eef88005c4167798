#pragma once
// Multi-head scaled dot-product attention over B sequences of T tokens, NH heads of size HS.
// q, k, v are [B, T, *] rows with row stride ld_qkv (so they may be three separate [B,T,C] buffers, ld=C,
// or three column blocks of one fused [B,T,3C] buffer, ld=3C); head h uses columns [h*HS, (h+1)*HS).
// out is [B, T, NH*HS] (row stride NH*HS).
// key_mask: [B, T] with 1 for a real token and 0 for padding (nullptr = no padding). Masked keys get
// probability 0, exactly as Hugging Face's additive finfo.min mask does.
// causal: query t attends to keys <= t (GPT-2).
// Dropout on the attention probabilities (BERT/GPT-2 attn_pdrop) uses the counter RNG with `seed` and is
// regenerated in backward. Element index = ((sample(b)*NH + h)*P + i)*P + j with P = key_positions (the
// model's maximum length) and sample(b) from `samples`, so a sample's mask does not depend on its batch,
// its padding or its rank; with key_positions == 0 it is ((b*NH + h)*T + i)*T + j.
// Heads of width <= 8 run the narrow-head kernels (attention_narrow_heads.h), wider ones BLAS per (b, h).
#include <cstddef>
#include <cstdint>

#include "core/kernels/dropout.h"

namespace ladder::core {

struct AttentionShape {
  int B, T, NH, HS;
  int ld_qkv;  // row stride of q, k, v
  SampleKeys samples = {};  // dropout counters: which global sample each row is
  int key_positions = 0;    // dropout counters: positions per sample (0: the batch's own layout)
  // Tensor parallelism: these NH heads are heads [head0, head0 + NH) of the model's heads_total (0: NH),
  // and dropout counters use the model's head index, so a head draws the same mask on any rank.
  int head0 = 0, heads_total = 0;
  // Sliding-window attention (causal only): query i sees keys (i - window, i]; 0 = every earlier key.
  int window = 0;
  uint64_t dropout_base(int b, int h, int i) const {
    const uint64_t H = uint64_t(heads_total > 0 ? heads_total : NH), g = uint64_t(head0 + h);
    if (key_positions <= 0) return ((uint64_t(b) * H + g) * T + i) * T;
    const uint64_t P = uint64_t(key_positions);
    return ((uint64_t(samples.of(b)) * H + g) * P + i) * P;
  }
};

// probs: [B, NH, T, T], filled with the softmax BEFORE dropout, which is what backward needs; or null when
// nothing is kept (inference, or a backward that recomputes): then `scratch` holds one [T, T] block per
// thread (attention_forward_scratch_floats). scale is usually 1/sqrt(HS).
void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       const float* key_mask, bool causal, float scale, float dropout_p, uint64_t seed,
                       const AttentionShape& s, float* scratch = nullptr, size_t scratch_floats = 0);
size_t attention_forward_scratch_floats(const AttentionShape& s);

// Floats of scratch attention_backward needs: one [T, T] block per thread, two when it recomputes the
// probabilities. (Per thread, not per (b, h): the scratch does not grow with the batch or the heads.)
size_t attention_backward_scratch_floats(const AttentionShape& s, bool recompute_probs);

// dq, dk, dv are OVERWRITTEN, with row stride ld_qkv like q, k, v. dout is [B, T, NH*HS]. probs as the
// forward filled them, or null: each (b, h)'s block is then recomputed from q, k and key_mask (bit-identical
// to the forward's), which keeps [B, NH, T, T] out of memory for one more Q K^T and softmax. A scratch with
// room for fewer threads than OpenMP's runs on fewer threads.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* probs, const float* key_mask, bool causal, float scale,
                        float dropout_p, uint64_t seed, float* scratch, size_t scratch_floats, const AttentionShape& s);

}  // namespace ladder::core
