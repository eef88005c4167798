#pragma once
// The `ladder` command line: dispatches `ladder <subcommand> [options]` and turns exceptions into a
// one-line error and a non-zero exit code.
namespace ladder::apps {

int run_command_line(int argc, char** argv);

}  // namespace ladder::apps
