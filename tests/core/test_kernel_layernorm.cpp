// LayerNorm: forward statistics against double loops, finite-difference gradients of input, weight and bias,
// and the overwrite (dinp) / accumulate (dweight, dbias) contract.
#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/kernels/layernorm.h"
#include "tests/support/gradcheck.h"

namespace lc = ladder::core;
using ladder::test::expect_grad_ok;
using ladder::test::randn;

namespace {
double weighted_sum(const std::vector<float>& y, const std::vector<float>& r) {
  double s = 0;
  for (size_t i = 0; i < y.size(); i++) s += double(y[i]) * r[i];
  return s;
}
}  // namespace

TEST(KernelLayerNorm, ForwardMatchesBiasedVarianceInDouble) {
  const int N = 33, C = 96;
  const float eps = 1e-5f;
  auto x = randn(size_t(N) * C, 21, 2.0f), w = randn(C, 22), b = randn(C, 23);
  for (int n = 0; n < N; n++) x[n * C] += 10.0f;  // a large offset in some entries
  std::vector<float> y(size_t(N) * C), mean(N), rstd(N);
  lc::layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, eps);
  for (int n = 0; n < N; n++) {
    double m = 0, v = 0;
    for (int c = 0; c < C; c++) m += x[n * C + c];
    m /= C;
    for (int c = 0; c < C; c++) v += (x[n * C + c] - m) * (x[n * C + c] - m);
    v /= C;  // biased
    double s = 1.0 / std::sqrt(v + eps);
    EXPECT_NEAR(mean[n], m, 1e-5);
    EXPECT_NEAR(rstd[n], s, 1e-5 * s);
    for (int c = 0; c < C; c++) EXPECT_NEAR(y[n * C + c], (x[n * C + c] - m) * s * w[c] + b[c], 2e-5);
  }
  std::vector<float> y2(size_t(N) * C);  // statistics are optional
  lc::layernorm_forward(y2.data(), nullptr, nullptr, x.data(), w.data(), b.data(), N, C, eps);
  EXPECT_EQ(y, y2);
}

TEST(KernelLayerNorm, BackwardFiniteDifference) {
  const int N = 5, C = 8;
  const float eps = 1e-5f;
  auto x = randn(size_t(N) * C, 24), w = randn(C, 25), b = randn(C, 26), r = randn(size_t(N) * C, 27);
  std::vector<float> y(size_t(N) * C), mean(N), rstd(N);
  lc::layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, eps);
  std::vector<float> dx(size_t(N) * C, std::numeric_limits<float>::quiet_NaN()), dw(C, 0.0f), db(C, 0.0f);
  lc::layernorm_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), mean.data(), rstd.data(), N, C);
  auto loss = [&] {
    lc::layernorm_forward(y.data(), nullptr, nullptr, x.data(), w.data(), b.data(), N, C, eps);
    return weighted_sum(y, r);
  };
  expect_grad_ok("layernorm dinp", loss, x.data(), x.size(), dx.data(), 2e-2, 1e-3, 1e-2);
  expect_grad_ok("layernorm dweight", loss, w.data(), C, dw.data(), 2e-2, 1e-3, 1e-2);
  expect_grad_ok("layernorm dbias", loss, b.data(), C, db.data(), 2e-2, 1e-3, 1e-2);
}

TEST(KernelLayerNorm, DinpOverwrittenParamGradsAccumulate) {
  const int N = 300, C = 130;  // several column blocks, parallel rows
  auto x = randn(size_t(N) * C, 28), w = randn(C, 29), b = randn(C, 30), r = randn(size_t(N) * C, 31);
  std::vector<float> y(size_t(N) * C), mean(N), rstd(N);
  lc::layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, 1e-5f);
  std::vector<float> dx(size_t(N) * C, 7.0f), dw(C, 0.0f), db(C, 0.0f);
  lc::layernorm_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), mean.data(), rstd.data(), N, C);
  auto dx1 = dx, dw1 = dw, db1 = db;
  lc::layernorm_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), mean.data(), rstd.data(), N, C);
  EXPECT_EQ(dx, dx1);  // overwritten, not accumulated
  for (int c = 0; c < C; c++) {
    EXPECT_NEAR(dw[c], 2 * dw1[c], 1e-4 * (1 + std::fabs(dw1[c])));
    EXPECT_NEAR(db[c], 2 * db1[c], 1e-4 * (1 + std::fabs(db1[c])));
  }
  // Frozen parameters: nullptr gradients still give the same dinp.
  std::vector<float> dx2(size_t(N) * C, -1.0f);
  lc::layernorm_backward(dx2.data(), nullptr, nullptr, r.data(), x.data(), w.data(), mean.data(), rstd.data(), N, C);
  EXPECT_EQ(dx2, dx1);
}

TEST(KernelLayerNorm, ParameterGradientsDoNotDependOnThreadCount) {
  const int N = 257, C = 200;
  auto x = randn(size_t(N) * C, 32), w = randn(C, 33), b = randn(C, 34), r = randn(size_t(N) * C, 35);
  std::vector<float> y(size_t(N) * C), mean(N), rstd(N), dx(size_t(N) * C);
  lc::layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, 1e-5f);
  std::vector<float> dw1(C, 0.0f), db1(C, 0.0f), dw2(C, 0.0f), db2(C, 0.0f);
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  lc::layernorm_backward(dx.data(), dw1.data(), db1.data(), r.data(), x.data(), w.data(), mean.data(), rstd.data(), N,
                         C);
  omp_set_num_threads(std::max(2, saved));
  lc::layernorm_backward(dx.data(), dw2.data(), db2.data(), r.data(), x.data(), w.data(), mean.data(), rstd.data(), N,
                         C);
  omp_set_num_threads(saved);
  EXPECT_EQ(dw1, dw2);
  EXPECT_EQ(db1, db2);
}
