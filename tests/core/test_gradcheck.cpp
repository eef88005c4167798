// The finite-difference checker itself: a right gradient passes, a wrong one fails, also where the float32
// forward's rounding noise is large enough that the numeric estimate's uncertainty enters the tolerance.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/support/gradcheck.h"

namespace {

// L(x) = sum_i sin(x_i) * w_i evaluated in float32 over many terms, so that the loss carries rounding noise.
struct NoisyLoss {
  std::vector<float> x, w;
  explicit NoisyLoss(size_t n) : x(ladder::test::randn(n, 3)), w(ladder::test::randn(n, 4)) {}
  double operator()() const {
    float s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += std::sin(x[i]) * w[i];
    return s;
  }
  std::vector<float> gradient() const {
    std::vector<float> g(x.size());
    for (size_t i = 0; i < x.size(); ++i) g[i] = std::cos(x[i]) * w[i];
    return g;
  }
};

}  // namespace

TEST(GradCheck, RightGradientPasses) {
  NoisyLoss f(4096);
  const auto g = f.gradient();
  ladder::test::expect_grad_ok("sin", [&] { return f(); }, f.x.data(), f.x.size(), g.data());
}

TEST(GradCheck, WrongGradientFailsDespiteTheNoiseAllowance) {
  NoisyLoss f(4096);
  auto g = f.gradient();
  for (auto& v : g) v *= 1.1f;  // 10% off everywhere
  EXPECT_NONFATAL_FAILURE(ladder::test::expect_grad_ok("sin", [&] { return f(); }, f.x.data(), f.x.size(), g.data()),
                          "gradient mismatch");
}
