#include "tests/support/same_training.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace ladder::test {

core::CheckpointData final_checkpoint(const std::string& dir, int step) {
  return core::read_checkpoint(dir + "/checkpoints/" + core::CheckpointDirectory::file_name(step));
}

void expect_same_training(const std::string& ref, const std::string& other, int steps, double tol) {
  const auto a = final_checkpoint(ref, steps), b = final_checkpoint(other, steps);
  const auto& la = a.metrics.at("loss");
  const auto& lb = b.metrics.at("loss");
  ASSERT_EQ(la.size(), size_t(steps));
  ASSERT_EQ(lb.size(), size_t(steps));
  for (int i = 0; i < steps; ++i) EXPECT_NEAR(la[size_t(i)], lb[size_t(i)], 1e-4 * std::fabs(la[size_t(i)])) << other << " step " << i + 1;
  ASSERT_EQ(a.params.size(), b.params.size());
  for (size_t i = 0; i < a.params.size(); ++i) {
    ASSERT_EQ(a.params[i].first, b.params[i].first);
    const auto x = a.params[i].second.to_floats(), y = b.params[i].second.to_floats();
    ASSERT_EQ(x.size(), y.size());
    double worst = 0;
    for (size_t k = 0; k < x.size(); ++k) worst = std::max(worst, double(std::fabs(x[k] - y[k])));
    EXPECT_LE(worst, tol) << other << ": parameter " << a.params[i].first;
  }
}

}  // namespace ladder::test
