// Multi-head attention: forward against a naive double reference (padding mask, causal, dropout via the
// public counter RNG), the fused [B,T,3C] layout, and finite-difference gradients of q, k and v.
#include <gtest/gtest.h>

#include <cmath>
#include <omp.h>
#include <limits>
#include <stdexcept>
#include <vector>

#include "core/kernels/attention.h"
#include "core/kernels/dropout.h"
#include "tests/support/gradcheck.h"

namespace lc = ladder::core;
using ladder::test::expect_grad_ok;
using ladder::test::randn;

namespace {

struct Case {
  int B = 2, T = 5, NH = 2, HS = 4;
  bool causal = false;
  bool padding = false;
  float p = 0.0f;
  uint64_t seed = 2024;
};

// Right padding: sequence b keeps its first T - b*2 tokens (never fully masked).
std::vector<float> make_mask(int B, int T) {
  std::vector<float> m(size_t(B) * T, 1.0f);
  for (int b = 0; b < B; b++)
    for (int t = T - 2 * b; t < T; t++)
      if (t >= 0) m[size_t(b) * T + t] = 0.0f;
  return m;
}

// Naive reference: out [B,T,C] and probs [B,NH,T,T] (pre-dropout) in double.
void attention_ref(std::vector<double>& out, std::vector<double>& probs, const float* q, const float* k, const float* v,
                   const float* mask, const Case& c, int ld) {
  const int B = c.B, T = c.T, NH = c.NH, HS = c.HS, C = NH * HS;
  out.assign(size_t(B) * T * C, 0.0);
  probs.assign(size_t(B) * NH * T * T, 0.0);
  const double scale = 1.0 / std::sqrt(double(HS));
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++)
      for (int i = 0; i < T; i++) {
        std::vector<double> s(T);
        std::vector<bool> ok(T);
        double m = -1e300;
        bool any = false;
        for (int j = 0; j < T; j++) {
          double acc = 0;
          for (int d = 0; d < HS; d++)
            acc += double(q[(b * T + i) * ld + h * HS + d]) * k[(b * T + j) * ld + h * HS + d];
          s[j] = acc * scale;
          ok[j] = (!mask || mask[b * T + j] != 0) && (!c.causal || j <= i);
          if (ok[j]) m = std::max(m, s[j]), any = true;
        }
        double sum = 0;
        for (int j = 0; j < T; j++) {
          s[j] = !any ? 1.0 : ok[j] ? std::exp(s[j] - m) : 0.0;
          sum += s[j];
        }
        for (int j = 0; j < T; j++) {
          double pij = s[j] / sum;
          size_t idx = ((size_t(b) * NH + h) * T + i) * T + j;
          probs[idx] = pij;
          double pd = pij;
          if (c.p > 0) pd = lc::counter_uniform(c.seed, idx) >= c.p ? pij / (1.0 - c.p) : 0.0;
          for (int d = 0; d < HS; d++)
            out[(size_t(b) * T + i) * C + h * HS + d] += pd * v[(b * T + j) * ld + h * HS + d];
        }
      }
}

void check_forward(const Case& c) {
  const int B = c.B, T = c.T, NH = c.NH, HS = c.HS, C = NH * HS;
  auto q = randn(size_t(B) * T * C, 61), k = randn(size_t(B) * T * C, 62), v = randn(size_t(B) * T * C, 63);
  auto mask = make_mask(B, T);
  const float* mp = c.padding ? mask.data() : nullptr;
  lc::AttentionShape s{B, T, NH, HS, C};
  std::vector<float> out(size_t(B) * T * C), probs(size_t(B) * NH * T * T);
  lc::attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), mp, c.causal,
                        1.0f / std::sqrt(float(HS)), c.p, c.seed, s);
  std::vector<double> oref, pref;
  attention_ref(oref, pref, q.data(), k.data(), v.data(), mp, c, C);
  for (size_t i = 0; i < out.size(); i++) ASSERT_NEAR(out[i], oref[i], 1e-5) << "out " << i;
  for (size_t r = 0; r < size_t(B) * NH * T; r++) {
    double sum = 0;
    for (int j = 0; j < T; j++) {
      float pij = probs[r * T + j];
      ASSERT_NEAR(pij, pref[r * T + j], 1e-6) << "probs " << r * T + j;
      if (pref[r * T + j] == 0.0) {
        ASSERT_EQ(pij, 0.0f) << "masked probability must be exactly 0";
      }
      sum += pij;
    }
    ASSERT_NEAR(sum, 1.0, 1e-6);
  }
}

// Gradient check of dq, dk, dv for loss = sum(out * R); q, k, v are column blocks of one [B,T,3C] buffer when
// fused, three [B,T,C] buffers otherwise.
void check_backward(const Case& c, bool fused, double rtol = 2e-2) {
  const int B = c.B, T = c.T, NH = c.NH, HS = c.HS, C = NH * HS;
  const int ld = fused ? 3 * C : C;
  const size_t n = size_t(B) * T * ld;
  std::vector<float> qb = randn(n, 71), kb = randn(n, 72), vb = randn(n, 73);
  float* q = qb.data();
  float* k = fused ? qb.data() + C : kb.data();
  float* v = fused ? qb.data() + 2 * C : vb.data();
  auto mask = make_mask(B, T);
  const float* mp = c.padding ? mask.data() : nullptr;
  const float scale = 1.0f / std::sqrt(float(HS));
  lc::AttentionShape s{B, T, NH, HS, ld};
  auto R = randn(size_t(B) * T * C, 74);
  std::vector<float> out(size_t(B) * T * C), probs(size_t(B) * NH * T * T);
  lc::attention_forward(out.data(), probs.data(), q, k, v, mp, c.causal, scale, c.p, c.seed, s);

  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> dqb(n, nan), dkb(n, nan), dvb(n, nan);  // overwritten: a NaN left would leak
  float* dq = dqb.data();
  float* dk = fused ? dqb.data() + C : dkb.data();
  float* dv = fused ? dqb.data() + 2 * C : dvb.data();
  std::vector<float> scratch(lc::attention_backward_scratch_floats(s, true), nan);
  lc::attention_backward(dq, dk, dv, R.data(), q, k, v, probs.data(), mp, c.causal, scale, c.p, c.seed, scratch.data(),
                         scratch.size(), s);
  {
    // Without probs, backward recomputes them one (b, h) at a time: the same bits; and so does a forward
    // that keeps no probs, with any number of scratch blocks (threads).
    std::vector<float> rq(n, nan), rk(n, nan), rv(n, nan);
    float* dq2 = rq.data();
    float* dk2 = fused ? rq.data() + C : rk.data();
    float* dv2 = fused ? rq.data() + 2 * C : rv.data();
    lc::attention_backward(dq2, dk2, dv2, R.data(), q, k, v, nullptr, mp, c.causal, scale, c.p, c.seed, scratch.data(),
                           scratch.size(), s);
    ASSERT_EQ(dqb, rq) << "recomputed probabilities give the saved ones' gradients";
    if (!fused) {
      ASSERT_EQ(dkb, rk);
      ASSERT_EQ(dvb, rv);
    }
    std::vector<float> o3(out.size()), one_block(size_t(T) * T, nan);
    lc::attention_forward(o3.data(), nullptr, q, k, v, mp, c.causal, scale, c.p, c.seed, s, one_block.data(),
                          one_block.size());
    ASSERT_EQ(o3, out) << "a forward without probs computes the same output";
  }

  std::vector<float> o2(out.size()), p2(probs.size());
  auto loss = [&] {
    lc::attention_forward(o2.data(), p2.data(), q, k, v, mp, c.causal, scale, c.p, c.seed, s);
    double acc = 0;
    for (size_t i = 0; i < o2.size(); i++) acc += double(o2[i]) * R[i];
    return acc;
  };
  if (fused) {
    expect_grad_ok("attention fused dqkv", loss, qb.data(), n, dqb.data(), rtol, 1e-3, 1e-2, 1000);
  } else {
    expect_grad_ok("attention dq", loss, qb.data(), n, dqb.data(), rtol, 1e-3, 1e-2, 1000);
    expect_grad_ok("attention dk", loss, kb.data(), n, dkb.data(), rtol, 1e-3, 1e-2, 1000);
    expect_grad_ok("attention dv", loss, vb.data(), n, dvb.data(), rtol, 1e-3, 1e-2, 1000);
  }
  for (float x : dqb) ASSERT_FALSE(std::isnan(x));
}

}  // namespace

TEST(KernelAttention, ForwardPlain) { check_forward(Case{}); }
TEST(KernelAttention, ForwardPaddingMask) { check_forward(Case{.padding = true}); }
TEST(KernelAttention, ForwardCausal) { check_forward(Case{.causal = true}); }
TEST(KernelAttention, ForwardCausalPaddingDropout) { check_forward(Case{.causal = true, .padding = true, .p = 0.2f}); }
TEST(KernelAttention, ForwardLargerParallel) {
  check_forward(Case{.B = 3, .T = 37, .NH = 4, .HS = 8, .padding = true, .p = 0.1f});
}

TEST(KernelAttention, DropoutIsDeterministicPerSeed) {
  const int B = 2, T = 6, NH = 2, HS = 4, C = NH * HS;
  auto q = randn(size_t(B) * T * C, 81), k = randn(size_t(B) * T * C, 82), v = randn(size_t(B) * T * C, 83);
  lc::AttentionShape s{B, T, NH, HS, C};
  std::vector<float> o1(size_t(B) * T * C), o2(o1.size()), o3(o1.size()), p(size_t(B) * NH * T * T);
  lc::attention_forward(o1.data(), p.data(), q.data(), k.data(), v.data(), nullptr, false, 0.5f, 0.3f, 5, s);
  lc::attention_forward(o2.data(), p.data(), q.data(), k.data(), v.data(), nullptr, false, 0.5f, 0.3f, 5, s);
  lc::attention_forward(o3.data(), p.data(), q.data(), k.data(), v.data(), nullptr, false, 0.5f, 0.3f, 6, s);
  EXPECT_EQ(o1, o2);
  EXPECT_NE(o1, o3);
}

TEST(KernelAttention, FullyMaskedRowIsUniformLikeHf) {
  const int B = 1, T = 4, NH = 1, HS = 2, C = 2;
  auto q = randn(T * C, 84), k = randn(T * C, 85), v = randn(T * C, 86);
  std::vector<float> mask = {0, 0, 0, 0};
  lc::AttentionShape s{B, T, NH, HS, C};
  std::vector<float> out(T * C), p(T * T);
  lc::attention_forward(out.data(), p.data(), q.data(), k.data(), v.data(), mask.data(), false, 0.7f, 0.0f, 0, s);
  for (float x : p) EXPECT_FLOAT_EQ(x, 0.25f);
  for (int i = 0; i < T; i++)
    for (int d = 0; d < HS; d++)
      EXPECT_NEAR(out[i * C + d], 0.25 * (v[d] + v[C + d] + v[2 * C + d] + v[3 * C + d]), 1e-6);
}

TEST(KernelAttention, FusedLayoutMatchesSeparateBuffers) {
  const int B = 2, T = 7, NH = 3, HS = 4, C = NH * HS;
  auto qkv = randn(size_t(B) * T * 3 * C, 87);
  std::vector<float> q(size_t(B) * T * C), k(q.size()), v(q.size());
  for (int r = 0; r < B * T; r++)
    for (int c = 0; c < C; c++) {
      q[r * C + c] = qkv[r * 3 * C + c];
      k[r * C + c] = qkv[r * 3 * C + C + c];
      v[r * C + c] = qkv[r * 3 * C + 2 * C + c];
    }
  auto mask = make_mask(B, T);
  std::vector<float> o1(q.size()), o2(q.size()), p(size_t(B) * NH * T * T);
  lc::attention_forward(o1.data(), p.data(), q.data(), k.data(), v.data(), mask.data(), true, 0.5f, 0.1f, 3,
                        lc::AttentionShape{B, T, NH, HS, C});
  lc::attention_forward(o2.data(), p.data(), qkv.data(), qkv.data() + C, qkv.data() + 2 * C, mask.data(), true, 0.5f,
                        0.1f, 3, lc::AttentionShape{B, T, NH, HS, 3 * C});
  EXPECT_EQ(o1, o2);
}

TEST(KernelAttention, BackwardPlain) { check_backward(Case{}, false); }
TEST(KernelAttention, BackwardPaddingMask) { check_backward(Case{.padding = true}, false); }
TEST(KernelAttention, BackwardCausal) { check_backward(Case{.causal = true}, false); }
TEST(KernelAttention, BackwardCausalWithPadding) { check_backward(Case{.causal = true, .padding = true}, false); }
TEST(KernelAttention, BackwardDropout) { check_backward(Case{.padding = true, .p = 0.2f}, false); }
TEST(KernelAttention, BackwardCausalDropout) { check_backward(Case{.causal = true, .p = 0.2f}, false); }
// Wider heads, and LST's narrow heads over longer rows, against the reference and finite differences
// (central differences at eps 1e-2 are a few percent off here: sharper softmaxes).
TEST(KernelAttention, WideHeadsThroughBlas) {
  check_forward(Case{.B = 2, .T = 9, .NH = 2, .HS = 16, .causal = true, .padding = true, .p = 0.1f});
  check_backward(Case{.B = 2, .T = 9, .NH = 2, .HS = 16, .padding = true, .p = 0.2f}, true, 5e-2);
}
TEST(KernelAttention, NarrowHeadsLongerSequences) {
  check_forward(Case{.B = 2, .T = 70, .NH = 3, .HS = 4, .padding = true, .p = 0.1f});
  check_backward(Case{.B = 1, .T = 33, .NH = 2, .HS = 8, .causal = true, .padding = true, .p = 0.1f}, false, 5e-2);
}
TEST(KernelAttention, BackwardFusedLayout) { check_backward(Case{.causal = true, .padding = true, .p = 0.2f}, true); }

TEST(KernelAttention, ScratchIsPerThreadAndTooSmallIsAnError) {
  lc::AttentionShape s{32, 10, 12, 4, 48};
  // Whatever the batch and heads, the scratch is a [T, T] block per thread (two to recompute).
  const size_t threads = size_t(omp_get_max_threads());
  EXPECT_EQ(lc::attention_forward_scratch_floats(s), threads * 100);
  EXPECT_EQ(lc::attention_backward_scratch_floats(s, false), threads * 100);
  EXPECT_EQ(lc::attention_backward_scratch_floats(s, true), threads * 200);
  std::vector<float> x(size_t(32) * 10 * 48), small(99);
  try {
    lc::attention_forward(x.data(), nullptr, x.data(), x.data(), x.data(), nullptr, false, 1.0f, 0.0f, 0, s, small.data(),
                          small.size());
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("scratch of 99 floats"), std::string::npos) << e.what();
  }
  EXPECT_THROW(lc::attention_forward(x.data(), nullptr, x.data(), x.data(), x.data(), nullptr, false, 1.0f, 0.0f, 0, s),
               std::invalid_argument);
}

TEST(KernelAttention, DropoutWithTooLongSequenceThrows) {
  lc::AttentionShape s{1, 20000, 1, 1, 1};
  EXPECT_THROW(lc::attention_forward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, false, 1.0f, 0.1f, 0, s),
               std::invalid_argument);
}

// Heads of width <= 8 take the narrow-head kernels (attention_narrow_heads.cpp), wider ones the BLAS path. The
// same heads zero-padded to width 16 give the same scores and outputs through BLAS: compare forward, saved
// and recomputed backward, on rows that are not a multiple of the 8-row block, with a fully padded
// sequence (uniform rows), causal masking and dropout.
TEST(KernelAttention, NarrowHeadsEqualTheBlasPathOnZeroPaddedHeads) {
  for (bool causal : {false, true})
    for (int HS : {4, 8}) {
      const int B = 3, T = 13, NH = 2, W = 16, C = NH * HS, CW = NH * W;
      const float scale = 0.37f, p = 0.15f;
      auto q = randn(size_t(B) * T * C, 91), k = randn(size_t(B) * T * C, 92), v = randn(size_t(B) * T * C, 93);
      auto dout = randn(size_t(B) * T * C, 94);
      std::vector<float> mask(size_t(B) * T, 1.0f);
      for (int t = 9; t < T; t++) mask[size_t(1) * T + t] = 0.0f;  // sequence 1: right padding
      for (int t = 0; t < T; t++) mask[size_t(2) * T + t] = 0.0f;  // sequence 2: nothing to attend to
      auto widen = [&](const std::vector<float>& x) {
        std::vector<float> w(size_t(B) * T * CW, 0.0f);
        for (int r = 0; r < B * T; r++)
          for (int h = 0; h < NH; h++)
            for (int d = 0; d < HS; d++) w[size_t(r) * CW + h * W + d] = x[size_t(r) * C + h * HS + d];
        return w;
      };
      auto qw = widen(q), kw = widen(k), vw = widen(v), dow = widen(dout);
      lc::AttentionShape sn{B, T, NH, HS, C}, sw{B, T, NH, W, CW};
      std::vector<float> on(q.size()), pn(size_t(B) * NH * T * T), ow(qw.size()), pw(pn.size());
      lc::attention_forward(on.data(), pn.data(), q.data(), k.data(), v.data(), mask.data(), causal, scale, p, 5, sn);
      lc::attention_forward(ow.data(), pw.data(), qw.data(), kw.data(), vw.data(), mask.data(), causal, scale, p, 5, sw);
      for (size_t e = 0; e < pn.size(); e++) ASSERT_NEAR(pn[e], pw[e], 1e-6) << "probability " << e;
      for (int r = 0; r < B * T; r++)
        for (int h = 0; h < NH; h++)
          for (int d = 0; d < W; d++) {
            const float want = d < HS ? on[size_t(r) * C + h * HS + d] : 0.0f;
            ASSERT_NEAR(ow[size_t(r) * CW + h * W + d], want, 1e-5) << "row " << r << " head " << h << " col " << d;
          }
      const float nan = std::numeric_limits<float>::quiet_NaN();
      std::vector<float> scratch(std::max(lc::attention_backward_scratch_floats(sn, true),
                                          lc::attention_backward_scratch_floats(sw, true)));
      std::vector<float> dq(q.size(), nan), dk(q.size(), nan), dv(q.size(), nan);
      std::vector<float> dqw(qw.size(), nan), dkw(qw.size(), nan), dvw(qw.size(), nan);
      lc::attention_backward(dqw.data(), dkw.data(), dvw.data(), dow.data(), qw.data(), kw.data(), vw.data(), nullptr,
                             mask.data(), causal, scale, p, 5, scratch.data(), scratch.size(), sw);
      for (const float* probs : {static_cast<const float*>(pn.data()), static_cast<const float*>(nullptr)}) {
        lc::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(), probs,
                               mask.data(), causal, scale, p, 5, scratch.data(), scratch.size(), sn);
        for (int r = 0; r < B * T; r++)
          for (int h = 0; h < NH; h++)
            for (int d = 0; d < HS; d++) {
              const size_t n = size_t(r) * C + h * HS + d, w = size_t(r) * CW + h * W + d;
              ASSERT_NEAR(dq[n], dqw[w], 1e-5) << "dq row " << r << (probs ? " (saved)" : " (recomputed)");
              ASSERT_NEAR(dk[n], dkw[w], 1e-5) << "dk row " << r << (probs ? " (saved)" : " (recomputed)");
              ASSERT_NEAR(dv[n], dvw[w], 1e-5) << "dv row " << r << (probs ? " (saved)" : " (recomputed)");
            }
      }
    }
}
