// Cross-entropy (with ignore_index), MSE and distillation KL: forward against double loops, backward by
// finite differences of the forward itself.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "core/kernels/losses.h"
#include "tests/support/gradcheck.h"

namespace lc = ladder::core;
using ladder::test::expect_grad_ok;
using ladder::test::randn;

namespace {
std::vector<double> log_softmax_ref(const float* x, int V, double T = 1.0) {
  double m = -1e300, s = 0;
  for (int v = 0; v < V; v++) m = std::max(m, x[v] / T);
  for (int v = 0; v < V; v++) s += std::exp(x[v] / T - m);
  std::vector<double> out(V);
  for (int v = 0; v < V; v++) out[v] = x[v] / T - m - std::log(s);
  return out;
}
}  // namespace

TEST(KernelLosses, CrossEntropyForwardIgnoreIndex) {
  const int N = 6, V = 8;
  auto logits = randn(size_t(N) * V, 91, 3.0f);
  logits[3] = 80.0f;  // large logit: stable log-softmax needed
  std::vector<int32_t> t = {3, -100, 7, 0, -100, 5};
  int count = -1;
  float loss = lc::cross_entropy_forward(logits.data(), t.data(), N, V, -100, &count);
  EXPECT_EQ(count, 4);
  double ref = 0;
  for (int n = 0; n < N; n++)
    if (t[n] != -100) ref -= log_softmax_ref(logits.data() + n * V, V)[t[n]];
  EXPECT_NEAR(loss, ref / 4, 1e-5);
  EXPECT_TRUE(std::isfinite(loss));

  std::vector<int32_t> all_ignored(N, -100);
  EXPECT_EQ(lc::cross_entropy_forward(logits.data(), all_ignored.data(), N, V, -100, &count), 0.0f);
  EXPECT_EQ(count, 0);
  std::vector<int32_t> bad = {3, 8, 0, 0, 0, 0};
  EXPECT_THROW(lc::cross_entropy_forward(logits.data(), bad.data(), N, V, -100), std::out_of_range);
}

TEST(KernelLosses, CrossEntropyBackwardFiniteDifference) {
  const int N = 5, V = 8;
  auto logits = randn(size_t(N) * V, 92, 2.0f);
  std::vector<int32_t> t = {1, -100, 7, 0, 4};
  std::vector<float> d(size_t(N) * V, std::numeric_limits<float>::quiet_NaN());
  const float gs = 3.0f;
  lc::cross_entropy_backward(d.data(), logits.data(), t.data(), N, V, -100, gs);
  for (int v = 0; v < V; v++) EXPECT_EQ(d[1 * V + v], 0.0f) << "ignored row gets 0";
  auto loss = [&] { return gs * double(lc::cross_entropy_forward(logits.data(), t.data(), N, V, -100)); };
  expect_grad_ok("cross_entropy dlogits", loss, logits.data(), logits.size(), d.data());
}

TEST(KernelLosses, MseForwardBackward) {
  const int n = 37;
  auto p = randn(n, 93), t = randn(n, 94);
  double ref = 0;
  for (int i = 0; i < n; i++) ref += double(p[i] - t[i]) * (p[i] - t[i]);
  EXPECT_NEAR(lc::mse_forward(p.data(), t.data(), n), ref / n, 1e-6);
  std::vector<float> d(n);
  lc::mse_backward(d.data(), p.data(), t.data(), n, 0.5f);
  auto loss = [&] { return 0.5 * double(lc::mse_forward(p.data(), t.data(), n)); };
  expect_grad_ok("mse dpred", loss, p.data(), n, d.data());
}

TEST(KernelLosses, KlDivForwardMatchesDouble) {
  const int N = 5, V = 8;
  const float T = 2.0f;
  auto s = randn(size_t(N) * V, 95, 2.0f), t = randn(size_t(N) * V, 96, 2.0f);
  double ref = 0;
  for (int n = 0; n < N; n++) {
    auto ls = log_softmax_ref(s.data() + n * V, V, T), lt = log_softmax_ref(t.data() + n * V, V, T);
    for (int v = 0; v < V; v++) ref += std::exp(lt[v]) * (lt[v] - ls[v]);
  }
  ref = ref * T * T / N;
  EXPECT_NEAR(lc::kl_div_forward(s.data(), t.data(), N, V, T), ref, 1e-5);
  EXPECT_NEAR(lc::kl_div_forward(t.data(), t.data(), N, V, T), 0.0, 1e-6);  // KL(p || p) = 0
}

TEST(KernelLosses, KlDivBackwardFiniteDifference) {
  const int N = 5, V = 8;
  for (float T : {1.0f, 3.0f}) {
    auto s = randn(size_t(N) * V, 97, 2.0f), t = randn(size_t(N) * V, 98, 2.0f);
    std::vector<float> d(size_t(N) * V, std::numeric_limits<float>::quiet_NaN());
    lc::kl_div_backward(d.data(), s.data(), t.data(), N, V, T, 2.0f);
    auto loss = [&] { return 2.0 * double(lc::kl_div_forward(s.data(), t.data(), N, V, T)); };
    expect_grad_ok("kl_div dstudent", loss, s.data(), s.size(), d.data());
  }
}
