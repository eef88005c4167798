#include "core/kernels/attention_narrow_heads.h"
#include "core/kernels/hot_kernel.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <vector>

#include <omp.h>

#include "core/kernels/dropout_rng.h"
#include "core/kernels/vec_math.h"

namespace ladder::core {

namespace {

constexpr int kNarrowMaxHS = 8;
constexpr int L = 8;  // query rows per block: the lanes of one AVX2 register

// The keys a block's rows may attend: all T, or up to its last row when causal.
int block_keys(bool causal, int r0, int T) { return causal ? std::min(T, r0 + L) : T; }

// qv[d][l] = scale * q[r0 + l][d]; rows past T are zero (their lanes compute harmless values nobody reads).
void load_queries(float* qv, const float* q, int ld, int r0, int T, int HS, float scale) {
  for (int d = 0; d < HS; d++)
    for (int l = 0; l < L; l++) qv[d * L + l] = r0 + l < T ? scale * q[size_t(r0 + l) * ld + d] : 0.0f;
}

// Softmax probabilities of the block's rows against keys [0, width), P[j*L + l], as masked_softmax_row
// defines them: masked keys (padding, or j > i when causal) exactly 0, and a row with no allowed key uniform
// over all T keys (then width is T). Lanes are rows, so the max and the sum are vertical, with no horizontal
// reduction per row. Out of line, so that forward and backward's recomputation run the same instructions.
[[gnu::noinline]] int probability_block(float* P, const float* qv, const float* k, int ld, const float* key_mask,
                                        bool causal, int r0, int T, int HS) {
  const int w = block_keys(causal, r0, T);
  alignas(32) int32_t mx[L];
  std::fill(mx, mx + L, INT32_MIN);
  for (int j = 0; j < w; j++) {
    const float* kj = k + size_t(j) * ld;
    const int32_t key_ok = key_mask ? -int32_t((std::bit_cast<int32_t>(key_mask[j]) & 0x7FFFFFFF) != 0) : -1;
    float* pj = P + size_t(j) * L;
    // (innermost loops run over the 8 lanes only, so each is one vector instruction)
#pragma omp simd
    for (int l = 0; l < L; l++) pj[l] = qv[l] * kj[0];
    for (int d = 1; d < HS; d++) {
      const float kd = kj[d];
#pragma omp simd
      for (int l = 0; l < L; l++) pj[l] += qv[d * L + l] * kd;
    }
#pragma omp simd
    for (int l = 0; l < L; l++) {
      const int32_t ok = key_ok & -int32_t(!causal || j <= r0 + l);
      mx[l] = std::max(mx[l], (vec_math::ordered_bits(pj[l]) & ok) | (INT32_MIN & ~ok));
    }
  }
  alignas(32) float m[L], sum[L];
  bool uniform = false;
  for (int l = 0; l < L; l++) {
    uniform |= mx[l] == INT32_MIN;
    m[l] = mx[l] == INT32_MIN ? 0.0f : vec_math::from_ordered_bits(mx[l]);
    sum[l] = 0.0f;
  }
  for (int j = 0; j < w; j++) {
    const int32_t key_ok = key_mask ? -int32_t((std::bit_cast<int32_t>(key_mask[j]) & 0x7FFFFFFF) != 0) : -1;
    float* pj = P + size_t(j) * L;
    alignas(32) float e[L];
#pragma omp simd
    for (int l = 0; l < L; l++) e[l] = vec_math::exp(pj[l] - m[l]);
#pragma omp simd
    for (int l = 0; l < L; l++) {
      const int32_t ok = key_ok & -int32_t(!causal || j <= r0 + l);
      pj[l] = std::bit_cast<float>(std::bit_cast<int32_t>(e[l]) & ok);
      sum[l] += pj[l];
    }
  }
  alignas(32) float inv[L];
  for (int l = 0; l < L; l++) inv[l] = sum[l] > 0.0f ? 1.0f / sum[l] : 0.0f;
  for (int j = 0; j < w; j++) {
    float* pj = P + size_t(j) * L;
#pragma omp simd
    for (int l = 0; l < L; l++) pj[l] *= inv[l];
  }
  if (!uniform) return w;
  for (int j = 0; j < T; j++)
    for (int l = 0; l < L; l++) {
      float& p = P[size_t(j) * L + l];
      if (mx[l] == INT32_MIN) p = 1.0f / T;
      else if (j >= w) p = 0.0f;
    }
  return T;
}

// Dropout multipliers of the block, keep[j*L + l] = 1/(1-p) or 0, from each row's counters (as attention.h).
// Each lane steps its generator state by kGamma per key (dropout_rng::weyl): the bits of counter base + j.
void dropout_block(float* keep, const uint64_t* base, uint64_t rng_key, uint32_t thr, float keep_scale, int width) {
  alignas(32) uint64_t z[L];
  for (int l = 0; l < L; l++) z[l] = dropout_rng::weyl(rng_key, base[l]);
  for (int j = 0; j < width; j++) {
    float* kj = keep + size_t(j) * L;
#pragma omp simd
    for (int l = 0; l < L; l++) {
      kj[l] = dropout_rng::select_or_zero(dropout_rng::bits24_at(z[l]) >= thr, keep_scale);
      z[l] += dropout_rng::kGamma;
    }
  }
}

// One (sequence, head): where its columns of q, k, v start (row stride ld_qkv) and its key mask.
struct Head {
  int b, h;
  size_t row0;
  const float* mask;
  Head(int bh, const AttentionShape& s, const float* key_mask)
      : b(bh / s.NH), h(bh % s.NH), row0(size_t(b) * s.T * s.ld_qkv + size_t(h) * s.HS),
        mask(key_mask ? key_mask + size_t(b) * s.T : nullptr) {}
};

struct Dropout {
  uint64_t rng_key;
  uint32_t thr;
  float keep_scale;
  bool on;
  Dropout(float p, uint64_t seed)
      : rng_key(dropout_rng::key(seed)), thr(dropout_rng::keep_threshold(p)),
        keep_scale(p < 1.0f ? 1.0f / (1.0f - p) : 0.0f), on(p > 0.0f) {}
  // The multipliers of the block of rows [r0, r0 + L) of one head over its first `width` keys (rows past T
  // reuse the last row's counters: nobody reads them).
  void block(float* keep, const AttentionShape& s, const Head& hd, int r0, int width) const {
    alignas(32) uint64_t base[L];
    for (int l = 0; l < L; l++) base[l] = s.dropout_base(hd.b, hd.h, std::min(r0 + l, s.T - 1));
    dropout_block(keep, base, rng_key, thr, keep_scale, width);
  }
};

}  // namespace

bool narrow_heads(const AttentionShape& s) { return s.HS <= kNarrowMaxHS; }

LADDER_HOT_KERNEL void narrow_attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                              const float* key_mask, bool causal, float scale, float dropout_p, uint64_t seed,
                              const AttentionShape& s, int threads) {
  const int B = s.B, T = s.T, NH = s.NH, HS = s.HS, ld = s.ld_qkv, C = NH * HS;
  const Dropout drop(dropout_p, seed);
#pragma omp parallel num_threads(threads)
  {
    // P, then the dropout multipliers, [T, L] each: a block of rows against every key.
    std::vector<float> ws(size_t(2) * T * L);
    float* P = ws.data();
    float* keep = P + size_t(T) * L;
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
      const Head hd(bh, s, key_mask);
      const float* kb = k + hd.row0;
      const float* vb = v + hd.row0;
      for (int r0 = 0; r0 < T; r0 += L) {
        const int n = std::min(L, T - r0);
        alignas(32) float qv[kNarrowMaxHS * L], acc[kNarrowMaxHS * L];
        load_queries(qv, q + hd.row0, ld, r0, T, HS, scale);
        const int width = probability_block(P, qv, kb, ld, hd.mask, causal, r0, T, HS);
        if (probs)
          for (int l = 0; l < n; l++) {
            float* pr = probs + (size_t(bh) * T + r0 + l) * T;
            for (int j = 0; j < T; j++) pr[j] = j < width ? P[size_t(j) * L + l] : 0.0f;
          }
        if (drop.on) {
          drop.block(keep, s, hd, r0, width);
          for (size_t e = 0; e < size_t(width) * L; e++) keep[e] *= P[e];
        }
        const float* pd = drop.on ? keep : P;
        std::fill(acc, acc + HS * L, 0.0f);
        for (int j = 0; j < width; j++) {  // out[i, d] = sum_j dropout(P)[i, j] V[j, d]
          const float* pj = pd + size_t(j) * L;
          const float* vj = vb + size_t(j) * ld;
          for (int d = 0; d < HS; d++) {
            const float x = vj[d];
#pragma omp simd
            for (int l = 0; l < L; l++) acc[d * L + l] += pj[l] * x;
          }
        }
        float* ob = out + size_t(hd.b) * T * C + hd.h * HS;
        for (int l = 0; l < n; l++)
          for (int d = 0; d < HS; d++) ob[size_t(r0 + l) * C + d] = acc[d * L + l];
      }
    }
  }
}

// Per block of query rows, with P the probabilities, m the dropout multipliers (1/(1-p) or 0), dO the output
// gradient and qv = scale Q:
//   g = (dO V^T) m;   dS = P (g - rowsum(g P));   dQ = scale dS K;   dK += dS^T qv;   dV += (P m)^T dO
// dK and dV accumulate per lane ([T, HS, L]) and are summed across lanes once per (b, h).
LADDER_HOT_KERNEL void narrow_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                               const float* v, const float* probs, const float* key_mask, bool causal, float scale,
                               float dropout_p, uint64_t seed, const AttentionShape& s, int threads) {
  const int B = s.B, T = s.T, NH = s.NH, HS = s.HS, ld = s.ld_qkv, C = NH * HS;
  const Dropout drop(dropout_p, seed);
#pragma omp parallel num_threads(threads)
  {
    const size_t TL = size_t(T) * L;
    std::vector<float> ws(3 * TL + 2 * TL * HS);
    float* P = ws.data();
    float* m = P + TL;
    float* g = m + TL;
    float* dK = g + TL;  // [T, HS, L]
    float* dV = dK + TL * HS;
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
      const Head hd(bh, s, key_mask);
      const size_t row0 = hd.row0;
      const float* kb = k + row0;
      const float* vb = v + row0;
      const float* dob = dout + size_t(hd.b) * T * C + hd.h * HS;
      std::fill(dK, dK + 2 * TL * HS, 0.0f);
      for (int r0 = 0; r0 < T; r0 += L) {
        const int n = std::min(L, T - r0);
        alignas(32) float qv[kNarrowMaxHS * L], dov[kNarrowMaxHS * L], acc[kNarrowMaxHS * L];
        load_queries(qv, q + row0, ld, r0, T, HS, scale);
        int width;
        if (probs) {
          width = block_keys(causal, r0, T);
          const float* pb = probs + (size_t(bh) * T + r0) * T;
          for (int l = 0; l < n; l++)
            if (width < T && pb[size_t(l) * T + width] != 0.0f) width = T;  // a uniform (fully masked) row
          for (int j = 0; j < width; j++)
            for (int l = 0; l < L; l++) P[size_t(j) * L + l] = l < n ? pb[size_t(l) * T + j] : 0.0f;
        } else {
          width = probability_block(P, qv, kb, ld, hd.mask, causal, r0, T, HS);
        }
        for (int d = 0; d < HS; d++)
          for (int l = 0; l < L; l++) dov[d * L + l] = l < n ? dob[size_t(r0 + l) * C + d] : 0.0f;
        if (drop.on) drop.block(m, s, hd, r0, width);
        alignas(32) float dot[L] = {};
        for (int j = 0; j < width; j++) {
          const float* vj = vb + size_t(j) * ld;
          const float* pj = P + size_t(j) * L;
          float* gj = g + size_t(j) * L;
          const float* mj = m + size_t(j) * L;
          float* dVj = dV + size_t(j) * HS * L;
          alignas(32) float pm[L];
#pragma omp simd
          for (int l = 0; l < L; l++) {
            gj[l] = dov[l] * vj[0];
            pm[l] = drop.on ? pj[l] * mj[l] : pj[l];
          }
          for (int d = 1; d < HS; d++) {
            const float x = vj[d];
#pragma omp simd
            for (int l = 0; l < L; l++) gj[l] += dov[d * L + l] * x;
          }
          if (drop.on) {
#pragma omp simd
            for (int l = 0; l < L; l++) gj[l] *= mj[l];
          }
#pragma omp simd
          for (int l = 0; l < L; l++) dot[l] += gj[l] * pj[l];
          for (int d = 0; d < HS; d++) {
            float* dvd = dVj + d * L;
            const float* od = dov + d * L;
#pragma omp simd
            for (int l = 0; l < L; l++) dvd[l] += pm[l] * od[l];
          }
        }
        std::fill(acc, acc + HS * L, 0.0f);
        for (int j = 0; j < width; j++) {
          const float* kj = kb + size_t(j) * ld;
          const float* pj = P + size_t(j) * L;
          float* gj = g + size_t(j) * L;
          float* dKj = dK + size_t(j) * HS * L;
#pragma omp simd
          for (int l = 0; l < L; l++) gj[l] = pj[l] * (gj[l] - dot[l]);  // dS
          for (int d = 0; d < HS; d++) {
            const float x = kj[d];
            float* ad = acc + d * L;
            float* dkd = dKj + d * L;
            const float* qd = qv + d * L;
#pragma omp simd
            for (int l = 0; l < L; l++) {
              ad[l] += gj[l] * x;
              dkd[l] += gj[l] * qd[l];
            }
          }
        }
        for (int l = 0; l < n; l++)
          for (int d = 0; d < HS; d++) dq[row0 + size_t(r0 + l) * ld + d] = scale * acc[d * L + l];
      }
      for (int j = 0; j < T; j++)
        for (int d = 0; d < HS; d++) {
          const float* a = dK + (size_t(j) * HS + d) * L;
          const float* c = dV + (size_t(j) * HS + d) * L;
          float sk = 0.0f, sv = 0.0f;
          for (int l = 0; l < L; l++) {
            sk += a[l];
            sv += c[l];
          }
          dk[row0 + size_t(j) * ld + d] = sk;
          dv[row0 + size_t(j) * ld + d] = sv;
        }
    }
  }
}

}  // namespace ladder::core
