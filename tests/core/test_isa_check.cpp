// The start-up instruction-set check (core/cpu/isa_check.c).
#include "core/cpu/isa_check.h"

#include <gtest/gtest.h>

#include <string>

namespace {

std::string missing_of(const std::string& required) {
  char buf[512];
  ladder_isa_missing(required.c_str(), buf, sizeof buf);
  return buf;
}

// An extension this CPU lacks, or "" on a CPU that has all of them.
std::string an_absent_extension() {
  for (const char* name : {"AVX512FP16", "AVX512VP2INTERSECT", "AVX512BF16", "AVX512F", "AVX2", "SSE4A", "AVX"})
    if (ladder_isa_supported(name) == 0) return name;
  return "";
}

}  // namespace

TEST(IsaCheck, ThisBuildsRequirementsHoldOnTheCpuRunningIt) {
  // This process started, so the constructor found nothing missing; the query must agree.
  EXPECT_EQ(ladder_isa_missing(ladder_isa_required(), nullptr, 0), 0) << ladder_isa_required();
  EXPECT_NE(std::string(ladder_isa_build_flags()), "");
}

TEST(IsaCheck, NamesEachMissingExtensionAndOnlyThose) {
  const std::string absent = an_absent_extension();
  if (absent.empty()) GTEST_SKIP() << "this CPU has every extension the test knows of";
  ASSERT_EQ(ladder_isa_supported("SSE2") == 1 || ladder_isa_supported("SSE3") == 1, true);
  EXPECT_EQ(missing_of("SSE3 " + absent), absent);
  char buf[64];
  EXPECT_EQ(ladder_isa_missing(("SSE3 " + absent + " NOT_AN_ISA").c_str(), buf, sizeof buf), 2);
  EXPECT_EQ(std::string(buf), absent + " NOT_AN_ISA");  // an unknown name is reported, never assumed present
}

TEST(IsaCheck, TruncatesInsteadOfOverflowing) {
  char buf[4] = {'x', 'x', 'x', 'x'};
  EXPECT_EQ(ladder_isa_missing("NOT_AN_ISA ALSO_NOT", buf, sizeof buf), 2);
  EXPECT_EQ(std::string(buf), "NOT");
}

TEST(IsaCheck, AMissingExtensionStopsWithAMessageInsteadOfSigill) {
  const std::string absent = an_absent_extension();
  if (absent.empty()) GTEST_SKIP() << "this CPU has every extension the test knows of";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(ladder_isa_enforce(("SSE3 " + absent).c_str(), "-march=test-node"), testing::ExitedWithCode(1),
              "built with -march=test-node and needs SSE3 " + absent + "; this CPU.* lacks " + absent +
                  "\\..*LADDER_ARCH=portable");
  ladder_isa_enforce("SSE3", "-march=test-node");  // present: returns
}
