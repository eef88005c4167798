// The start-up instruction-set check (core/cpu/isa_check.c).
#include "core/cpu/isa_check.h"

#include <gtest/gtest.h>

#include <string>

#if defined(__x86_64__)  // elsewhere the build requires no x86 extension and the check has nothing to do

namespace {

std::string missing_of(const std::string& required) {
  char buf[512];
  ladder_isa_missing(required.c_str(), buf, sizeof buf);
  return buf;
}

// An extension this CPU lacks. Every x86-64 CPU lacks one of these two: FMA4 exists only on AMD's
// Bulldozer family, which has no AVX-512.
std::string an_absent_extension() {
  for (const char* name : {"FMA4", "AVX512F"})
    if (ladder_isa_supported(name) == 0) return name;
  ADD_FAILURE() << "this CPU reports both FMA4 and AVX512F";
  return "FMA4";
}

}  // namespace

TEST(IsaCheck, ThisBuildsRequirementsHoldOnTheCpuRunningIt) {
  // This process started, so the constructor found nothing missing; the query must agree.
  EXPECT_EQ(ladder_isa_missing(ladder_isa_required(), nullptr, 0), 0) << ladder_isa_required();
  EXPECT_NE(std::string(ladder_isa_build_flags()), "");
}

TEST(IsaCheck, NamesEachMissingExtensionAndOnlyThose) {
  const std::string absent = an_absent_extension();
  ASSERT_EQ(ladder_isa_supported("SSE3"), 1);  // every x86-64 CPU since 2005
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
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(ladder_isa_enforce(("SSE3 " + absent).c_str(), "-march=test-node"), testing::ExitedWithCode(1),
              "built with -march=test-node and needs SSE3 " + absent + "; this CPU.* lacks " + absent +
                  "\\..*LADDER_ARCH=portable");
  ladder_isa_enforce("SSE3", "-march=test-node");  // present: returns
}

#endif
