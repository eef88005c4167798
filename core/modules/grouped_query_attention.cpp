#include "core/modules/grouped_query_attention.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/kernels/activations.h"
#include "core/kernels/gemm.h"
#include "core/modules/activation_slot.h"

namespace ladder::core {

namespace {
// RMSNorm of each head of N rows: in [N, heads*HS] (stride ld_in) -> out (stride ld_out); rstd [N*heads].
void norm_heads(float* out, int ld_out, float* rstd, const float* in, int ld_in, int N, int heads, const RmsNorm& n) {
#pragma omp parallel for schedule(static) if (N >= 16)
  for (int r = 0; r < N; ++r)
    rmsnorm_forward(out + size_t(r) * ld_out, rstd + size_t(r) * heads, in + size_t(r) * ld_in, n.weight->w(), heads,
                    n.C, n.eps, n.unit_offset);
}

// dx [N, heads*HS] (stride ld_dx) OVERWRITTEN from dy (stride ld_dy); the weight gradient accumulates
// per row in order (N calls: deterministic).
void norm_heads_backward(float* dx, int ld_dx, const float* dy, int ld_dy, const float* x, const float* rstd, int N,
                         int heads, const RmsNorm& n) {
  float* dw = n.weight->g();
  if (!dw) {
#pragma omp parallel for schedule(static) if (N >= 16)
    for (int r = 0; r < N; ++r)
      rmsnorm_backward(dx + size_t(r) * ld_dx, nullptr, dy + size_t(r) * ld_dy, x + size_t(r) * heads * n.C,
                       n.weight->w(), rstd + size_t(r) * heads, heads, n.C, n.unit_offset);
    return;
  }
  for (int r = 0; r < N; ++r)
    rmsnorm_backward(dx + size_t(r) * ld_dx, dw, dy + size_t(r) * ld_dy, x + size_t(r) * heads * n.C, n.weight->w(),
                     rstd + size_t(r) * heads, heads, n.C, n.unit_offset);
}
}  // namespace

void GroupedQueryAttention::project(float* qdst, int ldq, float* kc, float* vc, const float* x, const int32_t* pos,
                                    int N, Buffers& raw, bool keep, const BranchCall* call) const {
  const int Dq = D(), Dk = KD();
  if (qk_norm) {
    const MemCategory cat = keep ? MemCategory::activations : MemCategory::workspace;
    Tensor::ensure(raw.q_raw, {N, Dq}, DType::f32, cat);
    Tensor::ensure(raw.k_raw, {N, Dk}, DType::f32, cat);
    Tensor::ensure(raw.q_rstd, {int64_t(N) * NH}, DType::f32, cat);
    Tensor::ensure(raw.k_rstd, {int64_t(N) * KVH}, DType::f32, cat);
    q.forward(raw.q_raw.data<float>(), x, N, 0, 0, call);
    k.forward(raw.k_raw.data<float>(), x, N, 0, 0, call);
    norm_heads(qdst, ldq, raw.q_rstd.data<float>(), raw.q_raw.data<float>(), Dq, N, NH, q_norm);
    norm_heads(kc, Dk, raw.k_rstd.data<float>(), raw.k_raw.data<float>(), Dk, N, KVH, k_norm);
  } else {
    q.forward(qdst, x, N, ldq, 0, call);
    k.forward(kc, x, N, 0, 0, call);
  }
  v.forward(vc, x, N, 0, 0, call);
  rope_forward(qdst, N, NH, ldq, pos, *rope);
  rope_forward(kc, N, KVH, Dk, pos, *rope);
}

void GroupedQueryAttention::forward(float* y, const float* x, const int32_t* pos, Buffers& saved, Buffers& scratch,
                                    bool save, const TokenBatch& b, uint64_t seed, const SampleKeys& samples,
                                    const BranchCall* call) const {
  const int N = b.rows(), Dq = D(), Dk = KD(), G = group();
  float* qkv = activation_slot(save, saved.qkv, scratch.qkv, {N, 3 * Dq}).data<float>();
  float* kc = activation_slot(false, saved.kc, scratch.kc, {N, Dk}).data<float>();
  float* vc = activation_slot(false, saved.vc, scratch.vc, {N, Dk}).data<float>();
  project(qkv, 3 * Dq, kc, vc, x, pos, N, save ? saved : scratch, save, call);
  // Each query head h reads K/V head h / G: copy them into the expanded columns the kernel reads.
#pragma omp parallel for schedule(static) if (N >= 64)
  for (int r = 0; r < N; ++r) {
    float* row = qkv + size_t(r) * 3 * Dq;
    for (int h = 0; h < NH; ++h) {
      std::copy_n(kc + size_t(r) * Dk + size_t(h / G) * HS, HS, row + Dq + size_t(h) * HS);
      std::copy_n(vc + size_t(r) * Dk + size_t(h / G) * HS, HS, row + 2 * Dq + size_t(h) * HS);
    }
  }
  const AttentionShape s = shape(b, samples);
  const bool keep_probs = save;
  Tensor& probs_t = keep_probs ? activation_slot(true, saved.probs, scratch.probs, {b.B, NH, b.T, b.T})
                               : activation_slot(false, saved.probs, scratch.probs,
                                                 {int64_t(attention_forward_scratch_floats(s))});
  float* ctx = activation_slot(save && o.needs_input(), saved.ctx, scratch.ctx, {N, Dq}).data<float>();
  attention_forward(ctx, keep_probs ? probs_t.data<float>() : nullptr, qkv, qkv + Dq, qkv + 2 * Dq, b.attention_mask,
                    /*causal=*/true, scale, dropout_p, seed, s, probs_t.data<float>(), size_t(probs_t.numel()));
  o.forward(y, ctx, N, 0, 0, call);
}

void GroupedQueryAttention::backward(float* dx, const float* dy, const float* x, const int32_t* pos, const Buffers& buf,
                                     const TokenBatch& b, uint64_t seed, const SampleKeys& samples, float* ws,
                                     float* attn_scratch, size_t attn_scratch_floats) const {
  const int N = b.rows(), Dq = D(), Dk = KD(), G = group();
  float* dqkv = ws;
  float* dkc = dqkv + size_t(N) * 3 * Dq;
  float* dvc = dkc + size_t(N) * Dk;
  float* dctx = dvc + size_t(N) * Dk;  // then d(q before RoPE) when qk_norm
  o.backward(dctx, dy, saved_or_null(buf.ctx), N);
  const float* qkv = buf.qkv.data<float>();
  attention_backward(dqkv, dqkv + Dq, dqkv + 2 * Dq, dctx, qkv, qkv + Dq, qkv + 2 * Dq, buf.probs.data<float>(),
                     b.attention_mask, /*causal=*/true, scale, dropout_p, seed, attn_scratch, attn_scratch_floats,
                     shape(b, samples));
#pragma omp parallel for schedule(static) if (N >= 64)
  for (int r = 0; r < N; ++r) {
    const float* row = dqkv + size_t(r) * 3 * Dq;
    float* dk = dkc + size_t(r) * Dk;
    float* dv = dvc + size_t(r) * Dk;
    std::fill(dk, dk + Dk, 0.0f);
    std::fill(dv, dv + Dk, 0.0f);
    for (int h = 0; h < NH; ++h) {
      const float* sk = row + Dq + size_t(h) * HS;
      const float* sv = row + 2 * Dq + size_t(h) * HS;
      float* tk = dk + size_t(h / G) * HS;
      float* tv = dv + size_t(h / G) * HS;
      for (int i = 0; i < HS; ++i) {
        tk[i] += sk[i];
        tv[i] += sv[i];
      }
    }
  }
  rope_backward(dqkv, N, NH, 3 * Dq, pos, *rope);
  rope_backward(dkc, N, KVH, Dk, pos, *rope);
  const float* dq = dqkv;
  int ldq = 3 * Dq;
  if (qk_norm) {
    norm_heads_backward(dctx, Dq, dqkv, 3 * Dq, buf.q_raw.data<float>(), buf.q_rstd.data<float>(), N, NH, q_norm);
    norm_heads_backward(dkc, Dk, dkc, Dk, buf.k_raw.data<float>(), buf.k_rstd.data<float>(), N, KVH, k_norm);
    dq = dctx;
    ldq = Dq;
  }
  q.backward(dx, dq, x, N, false, 0, ldq);
  k.backward(dx, dkc, x, N, dx != nullptr);
  v.backward(dx, dvc, x, N, dx != nullptr);
  // Sharded heads: each rank's q/k/v see only its heads, so the input gradient is a partial sum.
  if (dx && sharded()) copy_to_region_backward(tp, dx, size_t(N) * C);
}

void GroupedQueryAttention::forward_cached(float* y, const float* x, int B, int Tn, KvCache& cache, Buffers& scratch) const {
  const int N = B * Tn, Dq = D(), Dk = KD(), G = group();
  if (cache.B != B) throw std::invalid_argument("KV cache holds " + std::to_string(cache.B) + " sequences, the step has " + std::to_string(B));
  if (cache.length + Tn > cache.capacity)
    throw std::length_error("KV cache full: " + std::to_string(cache.length) + " + " + std::to_string(Tn) + " positions > capacity " +
                            std::to_string(cache.capacity));
  const int P = cache.length, L = P + Tn;
  std::vector<int32_t> pos(static_cast<size_t>(N));
  for (int r = 0; r < N; ++r) pos[size_t(r)] = P + r % Tn;
  Tensor::ensure(scratch.ctx, {N, Dq}, DType::f32, MemCategory::workspace);
  Tensor::ensure(scratch.kc, {N, Dk}, DType::f32, MemCategory::workspace);
  Tensor::ensure(scratch.vc, {N, Dk}, DType::f32, MemCategory::workspace);
  float* qc = scratch.ctx.data<float>();
  float* kc = scratch.kc.data<float>();
  float* vc = scratch.vc.data<float>();
  // The q/k norms' pre-norm values go to the scratch set too: nothing reads them after the step.
  project(qc, Dq, kc, vc, x, pos.data(), N, scratch, false, nullptr);
  float* K = cache.k.data<float>();
  float* V = cache.v.data<float>();
  for (int bb = 0; bb < B; ++bb)
    for (int t = 0; t < Tn; ++t) {
      const size_t dst = (size_t(bb) * cache.capacity + P + t) * Dk, src = (size_t(bb) * Tn + t) * Dk;
      std::copy_n(kc + src, Dk, K + dst);
      std::copy_n(vc + src, Dk, V + dst);
    }
  Tensor::ensure(scratch.qkv, {N, Dq}, DType::f32, MemCategory::workspace);
  float* ctx = scratch.qkv.data<float>();
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * NH; ++bh) {
    const int bb = bh / NH, h = bh % NH;
    std::vector<float> S(size_t(Tn) * L);
    const float* Qb = qc + size_t(bb) * Tn * Dq + size_t(h) * HS;
    const float* Kb = K + size_t(bb) * cache.capacity * Dk + size_t(h / G) * HS;
    const float* Vb = V + size_t(bb) * cache.capacity * Dk + size_t(h / G) * HS;
    gemm(false, true, Tn, L, HS, scale, Qb, Dq, Kb, Dk, 0.0f, S.data(), L);
    for (int i = 0; i < Tn; ++i) {
      float* row = S.data() + size_t(i) * L;
      const int last = P + i;  // causal: keys [j0, last]
      const int j0 = window > 0 && last >= window ? last - window + 1 : 0;
      float m = row[j0];
      for (int j = j0; j <= last; ++j) m = std::max(m, row[j]);
      double sum = 0;
      for (int j = 0; j < L; ++j) {
        const float e = j >= j0 && j <= last ? std::exp(row[j] - m) : 0.0f;
        row[j] = e;
        sum += e;
      }
      const float inv = float(1.0 / sum);
      for (int j = j0; j <= last; ++j) row[j] *= inv;
    }
    gemm(false, false, Tn, HS, L, 1.0f, S.data(), L, Vb, Dk, 0.0f, ctx + size_t(bb) * Tn * Dq + size_t(h) * HS, Dq);
  }
  cache.length = L;
  o.forward(y, ctx, N, 0, 0, nullptr);
}

}  // namespace ladder::core
