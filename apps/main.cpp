// ladder: one executable, one subcommand per job. See `ladder --help`.
#include "apps/commands.h"

int main(int argc, char** argv) { return ladder::apps::run_command_line(argc, argv); }
