// The Llama family's point-wise kernels: RMSNorm (Llama's w and Gemma's 1 + w), RoPE (HF rotate-half, its
// inverse in backward) and the gated FFN activations (SwiGLU, GeGLU with tanh GELU): forward against double
// formulas, finite-difference gradients of every input, and the overwrite/accumulate contracts. The
// sliding window of the attention kernel: keys outside the window get exactly zero probability, and its
// gradient against finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/kernels/attention.h"
#include "core/kernels/gated_activation.h"
#include "core/kernels/rmsnorm.h"
#include "core/kernels/rope.h"
#include "tests/support/gradcheck.h"

namespace lc = ladder::core;
using ladder::test::expect_grad_ok;
using ladder::test::randn;

namespace {
double dot(const std::vector<float>& y, const std::vector<float>& r) {
  double s = 0;
  for (size_t i = 0; i < y.size(); i++) s += double(y[i]) * r[i];
  return s;
}
}  // namespace

TEST(KernelRmsNorm, ForwardMatchesDoubleForBothScaleConventions) {
  const int N = 7, C = 40;
  auto x = randn(size_t(N) * C, 1, 3.0f), w = randn(C, 2);
  for (bool offset : {false, true}) {
    std::vector<float> y(size_t(N) * C), rstd(N);
    lc::rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), N, C, 1e-6f, offset);
    for (int n = 0; n < N; n++) {
      double ss = 0;
      for (int c = 0; c < C; c++) ss += double(x[n * C + c]) * x[n * C + c];
      const double r = 1.0 / std::sqrt(ss / C + 1e-6);
      EXPECT_NEAR(rstd[n], r, 1e-5 * r);
      for (int c = 0; c < C; c++)
        EXPECT_NEAR(y[n * C + c], x[n * C + c] * r * (w[c] + (offset ? 1.0 : 0.0)), 1e-5 * (1 + std::fabs(y[n * C + c])));
    }
  }
}

TEST(KernelRmsNorm, BackwardFiniteDifferenceAndContracts) {
  const int N = 5, C = 12;
  for (bool offset : {false, true}) {
    auto x = randn(size_t(N) * C, 3), w = randn(C, 4), r = randn(size_t(N) * C, 5);
    std::vector<float> y(size_t(N) * C), rstd(N);
    lc::rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), N, C, 1e-6f, offset);
    std::vector<float> dx(size_t(N) * C, std::numeric_limits<float>::quiet_NaN()), dw(C, 1.0f);
    lc::rmsnorm_backward(dx.data(), dw.data(), r.data(), x.data(), w.data(), rstd.data(), N, C, offset);
    for (float& v : dw) v -= 1.0f;  // dw accumulates onto what was there
    auto loss = [&] {
      lc::rmsnorm_forward(y.data(), nullptr, x.data(), w.data(), N, C, 1e-6f, offset);
      return dot(y, r);
    };
    expect_grad_ok(offset ? "rmsnorm(1+w) dx" : "rmsnorm dx", loss, x.data(), x.size(), dx.data());
    expect_grad_ok(offset ? "rmsnorm(1+w) dw" : "rmsnorm dw", loss, w.data(), w.size(), dw.data());
  }
}

TEST(KernelRope, MatchesRotateHalfAndBackwardIsTheInverse) {
  const int rows = 6, heads = 3, D = 8, ld = heads * D + 5;  // a strided layout, as inside q|k|v
  lc::RopeTable t;
  t.ensure(D, 16, 10000.0f);
  std::vector<int32_t> pos = {0, 1, 2, 7, 15, 3};
  auto x = randn(size_t(rows) * ld, 6);
  auto y = x;
  lc::rope_forward(y.data(), rows, heads, ld, pos.data(), t);
  for (int r = 0; r < rows; r++)
    for (int h = 0; h < heads; h++)
      for (int i = 0; i < D / 2; i++) {
        const double inv = 1.0 / std::pow(10000.0, 2.0 * i / D), a = pos[r] * inv;
        const float* xs = x.data() + size_t(r) * ld + h * D;
        const float* ys = y.data() + size_t(r) * ld + h * D;
        EXPECT_NEAR(ys[i], xs[i] * std::cos(a) - xs[i + D / 2] * std::sin(a), 1e-5);
        EXPECT_NEAR(ys[i + D / 2], xs[i + D / 2] * std::cos(a) + xs[i] * std::sin(a), 1e-5);
      }
  for (int r = 0; r < rows; r++)  // the 5 padding columns of each row are untouched
    for (int c = heads * D; c < ld; c++) EXPECT_EQ(y[size_t(r) * ld + c], x[size_t(r) * ld + c]);
  // A rotation is orthogonal: backward (the inverse rotation) of the forward gives the input back, and it is
  // the gradient of <rope(x), g>.
  auto back = y;
  lc::rope_backward(back.data(), rows, heads, ld, pos.data(), t);
  for (size_t i = 0; i < x.size(); i++) EXPECT_NEAR(back[i], x[i], 1e-5);
  auto g = randn(x.size(), 7), dx = g;
  lc::rope_backward(dx.data(), rows, heads, ld, pos.data(), t);
  auto loss = [&] {
    auto z = x;
    lc::rope_forward(z.data(), rows, heads, ld, pos.data(), t);
    return dot(z, g);
  };
  expect_grad_ok("rope dx", loss, x.data(), x.size(), dx.data());
  std::vector<int32_t> bad = {16};
  EXPECT_THROW(lc::rope_forward(x.data(), 1, heads, ld, bad.data(), t), std::out_of_range);
}

TEST(KernelGatedActivation, SwiGluAndGeGluForwardAndGradients) {
  const size_t n = 200;
  for (auto act : {lc::GateActivation::silu, lc::GateActivation::gelu_tanh}) {
    auto g = randn(n, 8, 3.0f), u = randn(n, 9), r = randn(n, 10);
    std::vector<float> h(n);
    lc::gated_forward(h.data(), g.data(), u.data(), n, act);
    for (size_t i = 0; i < n; i++) {
      const double x = g[i];
      const double a = act == lc::GateActivation::silu
                           ? x / (1 + std::exp(-x))
                           : 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
      EXPECT_NEAR(h[i], a * u[i], 1e-5 * (1 + std::fabs(a * u[i])));
    }
    std::vector<float> dg(n), du(n);
    lc::gated_backward(dg.data(), du.data(), r.data(), g.data(), u.data(), n, act);
    auto loss = [&] {
      lc::gated_forward(h.data(), g.data(), u.data(), n, act);
      return dot(h, r);
    };
    const char* name = act == lc::GateActivation::silu ? "swiglu" : "geglu";
    expect_grad_ok(std::string(name) + " d gate", loss, g.data(), n, dg.data());
    expect_grad_ok(std::string(name) + " d up", loss, u.data(), n, du.data());
    // d_up may alias dh (the block computes it in place)
    auto dh = r;
    lc::gated_backward(dg.data(), dh.data(), dh.data(), g.data(), u.data(), n, act);
    for (size_t i = 0; i < n; i++) EXPECT_EQ(dh[i], du[i]);
  }
}

TEST(KernelAttention, SlidingWindowZeroesOldKeysAndHasExactGradients) {
  const int B = 2, T = 9, NH = 2, HS = 16, W = 3, ld = 3 * NH * HS, C = NH * HS;
  auto qkv = randn(size_t(B) * T * ld, 11);
  lc::AttentionShape s{B, T, NH, HS, ld};
  s.window = W;
  const float scale = 1.0f / 4.0f;
  std::vector<float> out(size_t(B) * T * C), probs(size_t(B) * NH * T * T);
  lc::attention_forward(out.data(), probs.data(), qkv.data(), qkv.data() + C, qkv.data() + 2 * C, nullptr, true, scale,
                        0.0f, 0, s);
  for (int bh = 0; bh < B * NH; bh++)
    for (int i = 0; i < T; i++) {
      double sum = 0;
      for (int j = 0; j < T; j++) {
        const float p = probs[(size_t(bh) * T + i) * T + j];
        if (j > i || j <= i - W) EXPECT_EQ(p, 0.0f) << "row " << i << " key " << j;
        sum += p;
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
  auto r = randn(out.size(), 12);
  std::vector<float> dqkv(qkv.size(), 0.0f);
  std::vector<float> scratch(lc::attention_backward_scratch_floats(s, true));
  lc::attention_backward(dqkv.data(), dqkv.data() + C, dqkv.data() + 2 * C, r.data(), qkv.data(), qkv.data() + C,
                         qkv.data() + 2 * C, nullptr, nullptr, true, scale, 0.0f, 0, scratch.data(), scratch.size(), s);
  auto loss = [&] {
    std::vector<float> sc(lc::attention_forward_scratch_floats(s));
    lc::attention_forward(out.data(), nullptr, qkv.data(), qkv.data() + C, qkv.data() + 2 * C, nullptr, true, scale,
                          0.0f, 0, s, sc.data(), sc.size());
    return dot(out, r);
  };
  expect_grad_ok("windowed attention d qkv", loss, qkv.data(), qkv.size(), dqkv.data(), 2e-2, 1e-3, 1e-2, 256);
}
