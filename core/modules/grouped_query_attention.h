#pragma once
// Causal self-attention of the Llama family (Hugging Face `self_attn`): q/k/v/o projections without
// biases, grouped-query attention (kv_heads <= heads, each K/V head shared by heads / kv_heads query heads),
// optional per-head RMSNorm of q and k (Gemma 3), RoPE on q and k, an optional sliding window, and a
// KV cache for incremental decoding.
// Training reuses the dense attention kernel (core/kernels/attention.h) on K/V expanded to every query
// head; backward sums the expanded heads' gradients back into their K/V head.
#include <vector>

#include "core/kernels/attention.h"
#include "core/kernels/rope.h"
#include "core/modules/linear.h"
#include "core/modules/rms_norm.h"
#include "core/modules/step_context.h"

namespace ladder::core {

// One layer's cached keys (after norm and RoPE) and values: [B, capacity, kv_heads * head_dim] each.
struct KvCache {
  Tensor k, v;
  int B = 0, capacity = 0, length = 0;  // length: positions filled
};

struct GroupedQueryAttention {
  Linear q, k, v, o;
  RmsNorm q_norm, k_norm;  // used when qk_norm
  bool qk_norm = false;
  int C = 0;              // model width
  int NH = 0, KVH = 0;    // this rank's query and key/value heads
  int HS = 0;             // head width
  float scale = 0.0f;     // softmax scale
  int window = 0;         // sliding window (0: none)
  float dropout_p = 0.0f;
  int key_positions = 0;  // dropout counters (see attention.h)
  int head0 = 0, heads_total = 0;  // tensor parallelism: this rank's first query head, and all of them
  TensorParallelGroup* tp = nullptr;
  const RopeTable* rope = nullptr;  // the layer's RoPE base (owned by the model)

  int D() const { return NH * HS; }
  int KD() const { return KVH * HS; }
  int group() const { return NH / KVH; }
  bool sharded() const { return tp_active(tp); }

  struct Buffers {
    Tensor qkv;          // [N, 3D]: q | k expanded | v expanded, q and k after norm and RoPE
    Tensor q_raw, k_raw; // [N, D], [N, KD]: projections before the q/k norm (qk_norm only)
    Tensor q_rstd, k_rstd;
    Tensor kc, vc;       // [N, KD] compact k and v
    Tensor probs;        // softmax (kept when backward reads it)
    Tensor ctx;          // [N, D] attention output before o
  };

  // y [N, C] OVERWRITTEN with o(attention(x)); pos [N] the RoPE position of each row. `saved`/`scratch`
  // as in SelfAttention.
  void forward(float* y, const float* x, const int32_t* pos, Buffers& saved, Buffers& scratch, bool save,
               const TokenBatch& b, uint64_t seed, const SampleKeys& samples, const BranchCall* call) const;
  // dx OVERWRITTEN (complete: reduced over tp when sharded). ws: [N, 3D] + [N, 2 KD + D] floats
  // (backward_ws_floats) and the attention kernel's scratch.
  void backward(float* dx, const float* dy, const float* x, const int32_t* pos, const Buffers& buf, const TokenBatch& b,
                uint64_t seed, const SampleKeys& samples, float* ws, float* attn_scratch, size_t attn_scratch_floats) const;
  size_t backward_ws_floats(int N) const { return size_t(N) * (3 * D() + 2 * KD() + D()); }

  // Incremental decoding: x [B*Tn, C] are the next Tn tokens of B sequences at positions cache.length..;
  // their k/v join the cache and y [B*Tn, C] is OVERWRITTEN. Inference only.
  void forward_cached(float* y, const float* x, int B, int Tn, KvCache& cache, Buffers& scratch) const;

  AttentionShape shape(const TokenBatch& b, const SampleKeys& samples = {}) const {
    AttentionShape s{b.B, b.T, NH, HS, 3 * D(), samples, key_positions, head0, heads_total};
    s.window = window;
    return s;
  }
  double flops(const TokenBatch& b) const {
    const double N = b.rows();
    return 2.0 * N * C * (D() + 2 * KD()) + 2.0 * N * D() * C + 4.0 * b.B * double(b.T) * b.T * D();
  }

 private:
  // Projections, q/k norm and RoPE: q into qdst (row stride ldq), k and v into kc, vc [N, KD]. The
  // pre-norm projections and their rstd go to `raw` (activations when keep, else workspace).
  void project(float* qdst, int ldq, float* kc, float* vc, const float* x, const int32_t* pos, int N, Buffers& raw,
               bool keep, const BranchCall* call) const;
};

}  // namespace ladder::core
