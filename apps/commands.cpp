#include "apps/commands.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

namespace ladder::apps {

int run_command_line(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::printf("usage: ladder <command> [options]\n");
    return argc < 2 ? 2 : 0;
  }
  std::fprintf(stderr, "ladder: unknown command '%s'\n", argv[1]);
  return 2;
}

}  // namespace ladder::apps
