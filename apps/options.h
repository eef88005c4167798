#pragma once
// Command-line parsing shared by every `ladder` subcommand (Boost.Program_options). An unknown or
// misspelt option is an error that names it and suggests the closest known one.
#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace ladder::apps {

namespace po = boost::program_options;

// Adds --help, --threads, --report to `desc`.
void add_common_options(po::options_description& desc, int& threads, std::string& report_path);
// Parses argv (after the subcommand) into vm; throws std::runtime_error for unknown options (with a
// suggestion) and for invalid values (naming the option). Returns false when --help was printed.
bool parse_options(const std::string& command, const std::vector<std::string>& args,
                   const po::options_description& desc, po::variables_map& vm);
// The closest of `known` to `word` by edit distance, or "" when nothing is close.
std::string closest_match(const std::string& word, const std::vector<std::string>& known);
// Every option's effective value as text, for reports ("threads" -> "2").
std::vector<std::pair<std::string, std::string>> effective_options(const po::variables_map& vm);

}  // namespace ladder::apps
