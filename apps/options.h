#pragma once
// Command-line parsing shared by every `ladder` subcommand (Boost.Program_options). An unknown or
// misspelt option is an error that names it and suggests the closest known one. Options are matched
// exactly, as INI keys are: an abbreviation is misspelt too.
#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace ladder::apps {

namespace po = boost::program_options;

// Boost's default command-line style without allow_guessing, which would take `--train.max_step` for
// `--train.max_steps` while the INI key `max_step` is an error. Every ladder parser uses this style.
int command_line_style();
// Adds --help, --threads, --report to `desc`.
void add_common_options(po::options_description& desc, int& threads, std::string& report_path);
// Parses argv (after the subcommand) into vm; throws std::runtime_error for unknown options (with a
// suggestion) and for invalid values (naming the option). Returns false when --help was printed.
bool parse_options(const std::string& command, const std::vector<std::string>& args,
                   const po::options_description& desc, po::variables_map& vm);
// The closest of `known` to `word` by edit distance, else the shortest of `known` that `word` abbreviates,
// or "" when nothing is close.
std::string closest_match(const std::string& word, const std::vector<std::string>& known);
// Every option's effective value as text, for reports ("threads" -> "2").
std::vector<std::pair<std::string, std::string>> effective_options(const po::variables_map& vm);

}  // namespace ladder::apps
