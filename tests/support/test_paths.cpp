#include "tests/support/test_paths.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

namespace ladder::test {

std::string source_dir() { return LADDER_SOURCE_DIR; }
std::string golden_dir() { return source_dir() + "/tests/golden"; }

std::string shared_dir() {
  if (const char* s = std::getenv("LADDER_SHARED")) return s;
  return LADDER_SHARED_DIR_DEFAULT;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool external_tools_required() {
  const char* v = std::getenv("LADDER_REQUIRE_EXTERNAL_TOOLS");
  return v && *v && std::string(v) != "0";
}

std::string minilm_dir() {
  std::string dir;
  if (const char* s = std::getenv("LADDER_MINILM_DIR")) {
    dir = s;
  } else {
    const char* cache = std::getenv("LADDER_CACHE");
    const char* home = std::getenv("HOME");
    dir = std::string(cache ? cache : std::string(home ? home : "/root") + "/.cache/ladder") +
          "/models/all-MiniLM-L6-v2";
  }
  if (!file_exists(dir + "/model.safetensors"))
    ADD_FAILURE() << "the real all-MiniLM-L6-v2 model is not at " << dir
                  << "; run scripts/fetch_minilm.sh (or set LADDER_MINILM_DIR)";
  return dir;
}

}  // namespace ladder::test
