// The configure-time code generation probe (cmake/probes/codegen_probe.cpp), compiled again with the exact
// flags the library is built with: a build whose flags bypassed the probe (LADDER_ARCH_PROBE=OFF, a
// cross build) fails here on the CPU it runs on.
#define LADDER_CODEGEN_PROBE_NO_MAIN
#include "cmake/probes/codegen_probe.cpp"

#include <gtest/gtest.h>

#include <vector>

TEST(CodegenPatterns, ConstantVectorsWithTrailingZerosAreStoredExactly) { EXPECT_EQ(run_codegen_probe(), 0); }

// The shape that broke a test of this project: a 0/1 mask written as an initialiser list.
TEST(CodegenPatterns, MaskInitialiserListKeepsItsZeros) {
  const std::vector<float> mask = {1, 1, 1, 1, 1, 1, 0, 0};
  volatile int six = 6;
  for (int i = 0; i < 8; i++) EXPECT_EQ(mask[i], i < six ? 1.0f : 0.0f) << "lane " << i;
}
