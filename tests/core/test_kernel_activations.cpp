// GELU (erf and tanh), tanh, bias and element-wise helpers: forward against the formulas in double,
// backward by finite differences, and overwrite/accumulate semantics.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/kernels/activations.h"
#include "core/kernels/vec_math.h"
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

TEST(KernelActivations, GeluForwardMatchesHfFormulasInDouble) {
  const size_t n = 40000;  // large enough to run the parallel path
  auto x = randn(n, 11, 3.0f);
  std::vector<float> y(n);
  lc::gelu_forward(y.data(), x.data(), n, lc::GeluKind::erf);
  for (size_t i = 0; i < n; i++) {
    double xd = x[i], ref = 0.5 * xd * (1.0 + std::erf(xd / std::sqrt(2.0)));
    ASSERT_NEAR(y[i], ref, 1e-6 + 1e-6 * std::fabs(ref)) << "erf i=" << i;
  }
  lc::gelu_forward(y.data(), x.data(), n, lc::GeluKind::tanh);
  for (size_t i = 0; i < n; i++) {
    double xd = x[i];
    double ref = 0.5 * xd * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (xd + 0.044715 * xd * xd * xd)));
    ASSERT_NEAR(y[i], ref, 1e-6 + 1e-6 * std::fabs(ref)) << "tanh i=" << i;
  }
}

TEST(KernelActivations, GeluBackwardFiniteDifference) {
  const size_t n = 40;
  auto x = randn(n, 12, 2.0f), r = randn(n, 13);
  for (auto kind : {lc::GeluKind::erf, lc::GeluKind::tanh}) {
    std::vector<float> y(n), dx(n, std::numeric_limits<float>::quiet_NaN());  // dinp must be overwritten
    lc::gelu_backward(dx.data(), r.data(), x.data(), n, kind);
    auto loss = [&] {
      lc::gelu_forward(y.data(), x.data(), n, kind);
      return weighted_sum(y, r);
    };
    expect_grad_ok(kind == lc::GeluKind::erf ? "gelu_erf dinp" : "gelu_tanh dinp", loss, x.data(), n, dx.data(), 1e-2,
                   1e-3, 1e-3);
  }
}

TEST(KernelActivations, TanhForwardBackward) {
  const size_t n = 30;
  auto x = randn(n, 14, 1.5f), r = randn(n, 15);
  std::vector<float> y(n), dx(n);
  lc::tanh_forward(y.data(), x.data(), n);
  for (size_t i = 0; i < n; i++) EXPECT_NEAR(y[i], std::tanh(double(x[i])), 1e-6);
  lc::tanh_backward(dx.data(), r.data(), y.data(), n);
  auto loss = [&] {
    lc::tanh_forward(y.data(), x.data(), n);
    return weighted_sum(y, r);
  };
  expect_grad_ok("tanh dinp", loss, x.data(), n, dx.data(), 1e-2, 1e-3, 1e-3);
}

TEST(KernelActivations, AddBiasAndBiasBackwardAccumulates) {
  const int N = 5, C = 70;  // C spans two column blocks
  auto x = randn(size_t(N) * C, 16), bias = randn(C, 17), r = randn(size_t(N) * C, 18);
  std::vector<float> y = x;
  lc::add_bias(y.data(), bias.data(), N, C);
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++) EXPECT_FLOAT_EQ(y[n * C + c], x[n * C + c] + bias[c]);

  std::vector<float> dbias(C, 0.0f);
  lc::bias_backward(dbias.data(), r.data(), N, C);
  auto loss = [&] {
    y = x;
    lc::add_bias(y.data(), bias.data(), N, C);
    return weighted_sum(y, r);
  };
  expect_grad_ok("add_bias dbias", loss, bias.data(), C, dbias.data());
  std::vector<float> once = dbias;
  lc::bias_backward(dbias.data(), r.data(), N, C);  // second call accumulates
  for (int c = 0; c < C; c++) EXPECT_NEAR(dbias[c], 2 * once[c], 1e-5);
}

TEST(KernelActivations, AddScaleHelpers) {
  const size_t n = 20000;
  auto a = randn(n, 19), b = randn(n, 20);
  std::vector<float> out(n);
  lc::add(out.data(), a.data(), b.data(), n);
  for (size_t i = 0; i < n; i++) ASSERT_FLOAT_EQ(out[i], a[i] + b[i]);
  lc::add_inplace(out.data(), a.data(), n);
  for (size_t i = 0; i < n; i++) ASSERT_FLOAT_EQ(out[i], (a[i] + b[i]) + a[i]);
  lc::scale_inplace(out.data(), 0.5f, n);
  for (size_t i = 0; i < n; i++) ASSERT_FLOAT_EQ(out[i], ((a[i] + b[i]) + a[i]) * 0.5f);
  std::vector<float> alias = a;
  lc::add(alias.data(), alias.data(), b.data(), n);  // out aliases a
  for (size_t i = 0; i < n; i++) ASSERT_FLOAT_EQ(alias[i], a[i] + b[i]);
}

TEST(KernelActivations, VectorMathMatchesLibm) {
  double worst_exp = 0, worst_erf = 0, worst_tanh = 0;
  for (int i = -200000; i <= 200000; i++) {
    float x = i * 4.35e-4f;  // [-87, 87]
    double e = std::exp(double(x));
    worst_exp = std::max(worst_exp, std::fabs(lc::vec_math::exp(x) - e) / e);
    float y = i * 5e-5f;  // [-10, 10]
    worst_erf = std::max(worst_erf, std::fabs(lc::vec_math::erf(y) - std::erf(double(y))));
    worst_tanh = std::max(worst_tanh, std::fabs(lc::vec_math::tanh(y) - std::tanh(double(y))));
  }
  EXPECT_LT(worst_exp, 3e-7);
  EXPECT_LT(worst_erf, 5e-7);  // A&S 7.1.26 bound 1.5e-7 plus float rounding
  EXPECT_LT(worst_tanh, 3e-7);
  EXPECT_EQ(lc::vec_math::exp(-100.0f), 0.0f);
  EXPECT_EQ(lc::vec_math::tanh(50.0f), 1.0f);
  EXPECT_EQ(lc::vec_math::tanh(-50.0f), -1.0f);
}
