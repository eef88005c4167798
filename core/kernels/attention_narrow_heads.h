#pragma once
// Attention for narrow heads (HS <= 8, as in Ladder Side-Tuning's side network: 12 heads of width 4)
// (internal to core/kernels; attention_forward/backward dispatch here).
// With a head this narrow, Q K^T and P V are GEMMs with an inner dimension of 4: BLAS spends more on packing
// than on arithmetic, and a softmax over a short row is mostly horizontal reductions. Here a block of 8 query
// rows is the 8 lanes of one vector: scores, masked softmax, dropout and the products with K and V are
// vertical vector operations over the keys, on [T, 8] blocks that stay in L1. Backward needs no [T, T]
// block, and draws each element's dropout mask once instead of twice.
// Same contract as attention_forward/backward (attention.h); forward and backward's recomputation share one
// out-of-line probability kernel, so recomputed probabilities equal the forward's bit for bit.
#include <cstddef>
#include <cstdint>

#include "core/kernels/attention.h"

namespace ladder::core {

// True when the shape takes this path: heads of at most 8.
bool narrow_heads(const AttentionShape& s);

void narrow_attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                              const float* key_mask, bool causal, float scale, float dropout_p, uint64_t seed,
                              const AttentionShape& s, int threads);

void narrow_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                               const float* v, const float* probs, const float* key_mask, bool causal, float scale,
                               float dropout_p, uint64_t seed, const AttentionShape& s, int threads);

}  // namespace ladder::core
