#pragma once
// Where tests find their inputs: committed golden fixtures, ../shared data and the real MiniLM model.
#include <string>

namespace ladder::test {

std::string source_dir();   // the checkout
std::string golden_dir();   // tests/golden
std::string shared_dir();   // $LADDER_SHARED or ../shared beside the checkout
// The fetched all-MiniLM-L6-v2 directory ($LADDER_MINILM_DIR or the fetch script's cache). Fails the
// calling test with the command to run when it is missing: a test that needs the real model never skips.
std::string minilm_dir();
bool file_exists(const std::string& path);
// True when the run promised the external readers (h5dump, h5py) are installed: scripts/run_tests.sh sets
// LADDER_REQUIRE_EXTERNAL_TOOLS=1 after installing them, so CI fails instead of skipping.
bool external_tools_required();

}  // namespace ladder::test

// Skips a check that needs an external tool, or fails it when external_tools_required().
#define LADDER_SKIP_OR_FAIL() GTEST_AMBIGUOUS_ELSE_BLOCKER_ \
  if (::ladder::test::external_tools_required()) return ADD_FAILURE() << "required external tool missing: "; \
  else GTEST_SKIP()

namespace ladder::test {

}  // namespace ladder::test
