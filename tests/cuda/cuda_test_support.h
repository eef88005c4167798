#pragma once
// Shared by the CUDA tests: the clean skip without a device, seeded inputs, and the tolerance check
// (GPU f32 against a double CPU reference written in the test itself).
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "core/cuda/cuda_device.h"

// Every GPU test starts with this: without a device it skips with the reason (never fails).
#define LADDER_REQUIRE_CUDA()                                                   \
  do {                                                                          \
    if (::ladder::core::cuda_device_count() == 0) {                             \
      GTEST_SKIP() << ::ladder::core::cuda_device_summary();                    \
    }                                                                           \
    ::ladder::core::cuda_select_device(0);                                      \
  } while (0)

namespace ladder::test {

inline std::vector<float> random_floats(size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Passes when |got[i] - ref[i]| <= rtol * (|ref[i]| + scale[i]) for every i: relative error, with `scale`
// the magnitude of the terms that were summed (so a result that cancels to ~0 is judged against its terms).
// Empty `scale` means 1 everywhere.
inline ::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<double>& ref,
                                            double rtol = 1e-5, const std::vector<double>& scale = {}) {
  if (got.size() != ref.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " != reference size " << ref.size();
  size_t bad = 0, first = 0;
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    double s = scale.empty() ? 1.0 : scale[i];
    double err = std::fabs(double(got[i]) - ref[i]);
    double tol = rtol * (std::fabs(ref[i]) + s);
    if (!(err <= tol)) {  // also catches NaN
      if (bad++ == 0) first = i;
      worst = std::max(worst, err / tol);
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << got.size() << " elements out of tolerance; first at "
                                       << first << ": got " << got[first] << ", reference " << ref[first]
                                       << "; worst error " << worst << "x the tolerance";
}

}  // namespace ladder::test
