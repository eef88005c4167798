// Counter-based dropout: determinism, drop rate, offset consistency, scaling and the backward mask.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/kernels/dropout.h"
#include "tests/support/gradcheck.h"

namespace lc = ladder::core;
using ladder::test::expect_grad_ok;
using ladder::test::randn;

TEST(KernelDropout, UniformIsInUnitIntervalAndDeterministic) {
  for (uint64_t i = 0; i < 10000; i++) {
    float u = lc::counter_uniform(42, i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    ASSERT_EQ(u, lc::counter_uniform(42, i));
  }
  EXPECT_NE(lc::counter_uniform(42, 0), lc::counter_uniform(43, 0));
  EXPECT_NE(lc::counter_uniform(42, 0), lc::counter_uniform(42, 1));
}

TEST(KernelDropout, DeriveSeedSeparatesTags) {
  uint64_t s = lc::derive_seed(1, 2, 3, 4);
  EXPECT_EQ(s, lc::derive_seed(1, 2, 3, 4));
  EXPECT_NE(s, lc::derive_seed(1, 2, 3, 5));
  EXPECT_NE(s, lc::derive_seed(1, 2, 4, 3));
  EXPECT_NE(s, lc::derive_seed(1, 3, 2, 4));
  EXPECT_NE(s, lc::derive_seed(2, 2, 3, 4));
  EXPECT_NE(lc::derive_seed(7, 0), lc::derive_seed(7, 1));
}

TEST(KernelDropout, RateScaleAndDeterminism) {
  const size_t n = 1000000;
  std::vector<float> x(n, 1.0f), y(n), y2(n);
  for (float p : {0.1f, 0.2f, 0.5f}) {
    lc::dropout_forward(y.data(), x.data(), n, p, 1234, 99);
    lc::dropout_forward(y2.data(), x.data(), n, p, 1234, 99);
    EXPECT_EQ(y, y2) << "same seed/offset must give the same mask";
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) {
      if (y[i] == 0.0f)
        dropped++;
      else
        ASSERT_FLOAT_EQ(y[i], 1.0f / (1.0f - p));
    }
    double rate = double(dropped) / n;
    EXPECT_NEAR(rate, p, 0.01 * p) << "drop rate within 1% of p";
    lc::dropout_forward(y2.data(), x.data(), n, p, 1235, 99);
    EXPECT_NE(y, y2) << "another seed gives another mask";
  }
}

TEST(KernelDropout, OffsetShiftsTheStream) {
  const size_t n = 50000, off = 12345, m = 20000;
  auto x = randn(n, 41);
  std::vector<float> full(n), tail(m);
  lc::dropout_forward(full.data(), x.data(), n, 0.3f, 77, 1000);
  lc::dropout_forward(tail.data(), x.data() + off, m, 0.3f, 77, 1000 + off);
  for (size_t i = 0; i < m; i++) ASSERT_EQ(tail[i], full[off + i]) << i;
}

TEST(KernelDropout, ZeroProbabilityCopiesAndInPlaceWorks) {
  const size_t n = 1000;
  auto x = randn(n, 42);
  std::vector<float> y(n);
  lc::dropout_forward(y.data(), x.data(), n, 0.0f, 1, 0);
  EXPECT_EQ(y, x);
  std::vector<float> ref(n), inplace = x;
  lc::dropout_forward(ref.data(), x.data(), n, 0.25f, 5, 3);
  lc::dropout_forward(inplace.data(), inplace.data(), n, 0.25f, 5, 3);
  EXPECT_EQ(inplace, ref);
}

TEST(KernelDropout, BackwardUsesTheForwardMask) {
  const size_t n = 64;
  auto x = randn(n, 43), r = randn(n, 44);
  std::vector<float> y(n), dx(n);
  lc::dropout_backward(dx.data(), r.data(), n, 0.2f, 9, 17);
  auto loss = [&] {
    lc::dropout_forward(y.data(), x.data(), n, 0.2f, 9, 17);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += double(y[i]) * r[i];
    return s;
  };
  expect_grad_ok("dropout dinp", loss, x.data(), n, dx.data());
  std::vector<float> d2 = r;  // dinp may alias dout
  lc::dropout_backward(d2.data(), d2.data(), n, 0.2f, 9, 17);
  EXPECT_EQ(d2, dx);
}
