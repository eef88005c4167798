#pragma once
// The `ladder` command line: `ladder <command> [options]`. Each command parses its own options, prints
// progress and a summary with the memory table, and writes --report FILE.json. Errors become one line on
// stderr and a non-zero exit code.
#include <string>
#include <vector>

namespace ladder::apps {

int run_command_line(int argc, char** argv);
// The one stderr line for a command's error: "ladder <command>: error: <message>", without repeating a
// "ladder <command>: " the message already opens with.
std::string error_line(const std::string& command, const std::string& message);

// Subcommands; args exclude the program and command names. They throw on errors.
int encode_command(const std::vector<std::string>& args);
int bench_command(const std::vector<std::string>& args);
int inspect_command(const std::vector<std::string>& args);
int train_command(const std::vector<std::string>& args);
int eval_command(const std::vector<std::string>& args);
int export_command(const std::vector<std::string>& args);
int bench_comm_command(const std::vector<std::string>& args);
int cache_command(const std::vector<std::string>& args);
int generate_command(const std::vector<std::string>& args);
int perplexity_command(const std::vector<std::string>& args);

}  // namespace ladder::apps
