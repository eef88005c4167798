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

}  // namespace ladder::test
