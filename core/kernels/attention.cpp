#include "core/kernels/attention.h"
#include "core/kernels/hot_kernel.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <stdexcept>
#include <string>

#include <omp.h>

#include "core/kernels/attention_narrow_heads.h"
#include "core/kernels/dropout_rng.h"
#include "core/kernels/gemm.h"
#include "core/kernels/vec_math.h"

namespace ladder::core {

namespace {

// Rows of the dropped-out probability matrix the forward builds at once on the stack (bounded: 64 KiB).
constexpr int kDropBufFloats = 16384;

// Softmax of one score row in place: max-subtracted, masked keys exactly 0. A row with no allowed key (all
// keys padded) becomes uniform over all T keys, which is what Hugging Face's additive finfo.min mask yields.
inline void masked_softmax_row(float* row, const float* key_mask, int limit, int T) {
  // limit: keys [0, limit) may be attended (T, or i+1 when causal); key_mask further removes keys.
  float m;
  if (key_mask) {
    // Max over allowed keys as an integer max of order-preserving bits (vectorises; masked keys -> INT32_MIN).
    int32_t km = INT32_MIN;
#pragma omp simd reduction(max : km)
    for (int j = 0; j < limit; j++) {
      const int32_t keep = -int32_t((std::bit_cast<int32_t>(key_mask[j]) & 0x7FFFFFFF) != 0);
      km = std::max(km, (vec_math::ordered_bits(row[j]) & keep) | (INT32_MIN & ~keep));
    }
    if (km == INT32_MIN) {  // no allowed key
      for (int j = 0; j < T; j++) row[j] = 1.0f / T;
      return;
    }
    m = vec_math::from_ordered_bits(km);
  } else {
    m = vec_math::max(row, limit);  // limit >= 1
  }
  float sum = 0.0f;
  if (key_mask) {
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < limit; j++) {
      // Integer test of the mask so the loop vectorises; a masked key's exp is finite (clamped), then zeroed.
      const int32_t keep = -int32_t((std::bit_cast<int32_t>(key_mask[j]) & 0x7FFFFFFF) != 0);
      float e = std::bit_cast<float>(std::bit_cast<int32_t>(vec_math::exp(row[j] - m)) & keep);
      row[j] = e;
      sum += e;
    }
  } else {
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < limit; j++) {
      float e = vec_math::exp(row[j] - m);
      row[j] = e;
      sum += e;
    }
  }
  for (int j = limit; j < T; j++) row[j] = 0.0f;
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int j = 0; j < limit; j++) row[j] *= inv;
}

// S = scale * Q K^T of one (b, h) into P [T, T], then the masked softmax of every row. Forward and the
// recomputation in backward both call this, so they produce the same bits.
// A sliding window (causal) starts row i at key i - window + 1: the softmax runs over the window's keys
// only and the keys before it are exactly 0.
inline void softmax_scores(float* P, const float* qb, const float* kb, int ld, const float* mask, bool causal,
                           float scale, int T, int HS, int window) {
  gemm(false, true, T, T, HS, scale, qb, ld, kb, ld, 0.0f, P, T);
  for (int i = 0; i < T; i++) {
    const int j0 = causal && window > 0 && i >= window ? i - window + 1 : 0;
    float* row = P + size_t(i) * T;
    for (int j = 0; j < j0; j++) row[j] = 0.0f;
    masked_softmax_row(row + j0, mask ? mask + j0 : nullptr, (causal ? i + 1 : T) - j0, T - j0);
  }
}

// Threads for a (b, h) loop whose threads each need `per_thread` floats of a scratch of `floats`.
int scratch_threads(size_t floats, size_t per_thread, const char* who) {
  const size_t fit = per_thread ? floats / per_thread : size_t(omp_get_max_threads());
  if (fit < 1)
    throw std::invalid_argument(std::string(who) + ": scratch of " + std::to_string(floats) + " floats holds no (b, h) of " +
                                std::to_string(per_thread));
  return int(std::min<size_t>(fit, size_t(omp_get_max_threads())));
}

}  // namespace

size_t attention_forward_scratch_floats(const AttentionShape& s) {
  return size_t(omp_get_max_threads()) * s.T * s.T;
}

size_t attention_backward_scratch_floats(const AttentionShape& s, bool recompute_probs) {
  return size_t(omp_get_max_threads()) * s.T * s.T * (recompute_probs ? 2 : 1);
}

// out: [B, T, NH*HS]; q, k, v: rows of stride ld_qkv. Per (b, h), on one thread with one-thread BLAS:
// S = scale * Q K^T into P (probs' [T, T] block, or this thread's part of scratch), masked softmax per row,
// then out = dropout(P) V. With dropout, blocks of rows of dropout(P) are formed in a bounded stack buffer
// so P keeps the pre-dropout values backward needs.
LADDER_HOT_KERNEL void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v, const float* key_mask,
                       bool causal, float scale, float dropout_p, uint64_t seed, const AttentionShape& s, float* scratch,
                       size_t scratch_floats) {
  const int B = s.B, T = s.T, NH = s.NH, HS = s.HS, ld = s.ld_qkv, C = NH * HS;
  if (dropout_p > 0.0f && T > kDropBufFloats)
    throw std::invalid_argument("attention_forward: attention dropout supports T <= " +
                                std::to_string(kDropBufFloats) + ", got T = " + std::to_string(T));
  if (!probs && !scratch) throw std::invalid_argument("attention_forward: needs probs or scratch");
  const int threads = probs ? omp_get_max_threads() : scratch_threads(scratch_floats, size_t(T) * T, "attention_forward");
  if (s.window > 0 && (!causal || narrow_heads(s)))
    throw std::invalid_argument("attention_forward: a sliding window needs causal attention with heads wider than 8");
  if (narrow_heads(s)) {
    narrow_attention_forward(out, probs, q, k, v, key_mask, causal, scale, dropout_p, seed, s, threads);
    return;
  }
  const uint64_t rng_key = dropout_rng::key(seed);
  const uint32_t thr = dropout_rng::keep_threshold(dropout_p);
  const float keep_scale = dropout_p < 1.0f ? 1.0f / (1.0f - dropout_p) : 0.0f;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int bh = 0; bh < B * NH; bh++) {
    const int b = bh / NH, h = bh % NH;
    const float* qb = q + size_t(b) * T * ld + h * HS;
    const float* kb = k + size_t(b) * T * ld + h * HS;
    const float* vb = v + size_t(b) * T * ld + h * HS;
    float* ob = out + size_t(b) * T * C + h * HS;
    float* P = probs ? probs + size_t(bh) * T * T : scratch + size_t(omp_get_thread_num()) * T * T;
    const float* mask = key_mask ? key_mask + size_t(b) * T : nullptr;

    softmax_scores(P, qb, kb, ld, mask, causal, scale, T, HS, s.window);
    if (dropout_p <= 0.0f) {
      gemm(false, false, T, HS, T, 1.0f, P, T, vb, ld, 0.0f, ob, C);  // out = P V: [T, HS]
      continue;
    }
    float buf[kDropBufFloats];
    const int rows = kDropBufFloats / T;
    for (int i0 = 0; i0 < T; i0 += rows) {
      const int nr = i0 + rows <= T ? rows : T - i0;
      for (int i = i0; i < i0 + nr; i++) {
        const float* pr = P + size_t(i) * T;
        float* br = buf + size_t(i - i0) * T;
        uint64_t z = dropout_rng::weyl(rng_key, s.dropout_base(b, h, i));  // counter (b, h, i, j): + kGamma per j
        for (int j = 0; j < T; j++, z += dropout_rng::kGamma)
          br[j] = dropout_rng::select_or_zero(dropout_rng::bits24_at(z) >= thr, pr[j] * keep_scale);
      }
      gemm(false, false, nr, HS, T, 1.0f, buf, T, vb, ld, 0.0f, ob + size_t(i0) * C, C);
    }
  }
}

// dq, dk, dv OVERWRITTEN (row stride ld_qkv); dout: [B, T, NH*HS]; probs as saved by the forward, or null
// to recompute each (b, h)'s block into this thread's scratch first. With Pd = dropout(P) and G this thread's
// [T, T] scratch:
//   G = Pd; dV = Pd^T dO;  G = dO V^T (= dPd);  G = dP = dropout(dPd);  G = dS = P * (dP - rowsum(dP * P));
//   dQ = scale * dS K;  dK = scale * dS^T Q.
// Masked keys have P = 0, so they get dS = 0 without consulting the mask; `causal` only skips known zeros.
LADDER_HOT_KERNEL void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* probs, const float* key_mask, bool causal, float scale,
                        float dropout_p, uint64_t seed, float* scratch, size_t scratch_floats, const AttentionShape& s) {
  const int B = s.B, T = s.T, NH = s.NH, HS = s.HS, ld = s.ld_qkv, C = NH * HS;
  const size_t TT = size_t(T) * T;
  const size_t per_thread = probs ? TT : 2 * TT;
  const int threads = scratch_threads(scratch_floats, per_thread, "attention_backward");
  if (narrow_heads(s)) {
    narrow_attention_backward(dq, dk, dv, dout, q, k, v, probs, key_mask, causal, scale, dropout_p, seed, s, threads);
    return;
  }
  const uint64_t rng_key = dropout_rng::key(seed);
  const uint32_t thr = dropout_rng::keep_threshold(dropout_p);
  const bool drop = dropout_p > 0.0f;
  const float keep_scale = dropout_p < 1.0f ? 1.0f / (1.0f - dropout_p) : 0.0f;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int bh = 0; bh < B * NH; bh++) {
    const int b = bh / NH, h = bh % NH;
    const size_t row0 = size_t(b) * T * ld + h * HS;
    const float* qb = q + row0;
    const float* kb = k + row0;
    const float* vb = v + row0;
    float* dqb = dq + row0;
    float* dkb = dk + row0;
    float* dvb = dv + row0;
    const float* dob = dout + size_t(b) * T * C + h * HS;
    float* G = scratch + size_t(omp_get_thread_num()) * per_thread;
    const float* P = probs + size_t(bh) * TT;
    if (!probs) {
      float* Pr = G + TT;
      softmax_scores(Pr, qb, kb, ld, key_mask ? key_mask + size_t(b) * T : nullptr, causal, scale, T, HS, s.window);
      P = Pr;
    }
    // dV = Pd^T dO
    if (drop) {
      for (int i = 0; i < T; i++) {
        uint64_t z = dropout_rng::weyl(rng_key, s.dropout_base(b, h, i));
        for (int j = 0; j < T; j++, z += dropout_rng::kGamma)
          G[size_t(i) * T + j] = dropout_rng::select_or_zero(dropout_rng::bits24_at(z) >= thr, P[size_t(i) * T + j] * keep_scale);
      }
      gemm(true, false, T, HS, T, 1.0f, G, T, dob, C, 0.0f, dvb, ld);
    } else {
      gemm(true, false, T, HS, T, 1.0f, P, T, dob, C, 0.0f, dvb, ld);
    }
    // G = dO V^T, then through dropout and the softmax Jacobian, row by row.
    gemm(false, true, T, T, HS, 1.0f, dob, C, vb, ld, 0.0f, G, T);
    for (int i = 0; i < T; i++) {
      const float* pr = P + size_t(i) * T;
      float* gr = G + size_t(i) * T;
      // Causal rows are zero past the diagonal, except a fully masked row, which is uniform over all T keys.
      int width = causal ? i + 1 : T;
      if (width < T && pr[width] != 0.0f) width = T;
      if (drop) {
        uint64_t z = dropout_rng::weyl(rng_key, s.dropout_base(b, h, i));
        for (int j = 0; j < width; j++, z += dropout_rng::kGamma)
          gr[j] = dropout_rng::select_or_zero(dropout_rng::bits24_at(z) >= thr, gr[j] * keep_scale);
      }
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int j = 0; j < width; j++) dot += gr[j] * pr[j];
#pragma omp simd
      for (int j = 0; j < width; j++) gr[j] = pr[j] * (gr[j] - dot);
      for (int j = width; j < T; j++) gr[j] = 0.0f;
    }
    gemm(false, false, T, HS, T, scale, G, T, kb, ld, 0.0f, dqb, ld);  // dQ = scale * dS K
    gemm(true, false, T, HS, T, scale, G, T, qb, ld, 0.0f, dkb, ld);   // dK = scale * dS^T Q
  }
}

}  // namespace ladder::core
