#include "apps/options.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>

namespace ladder::apps {

int command_line_style() {
  namespace cls = po::command_line_style;
  return cls::default_style & ~cls::allow_guessing;
}

void add_common_options(po::options_description& desc, int& threads, std::string& report_path) {
  desc.add_options()("help,h", "print this help")(
      "threads", po::value<int>(&threads)->default_value(0),
      "CPU threads for kernels and BLAS (0 = OMP_NUM_THREADS or all cores)")(
      "report", po::value<std::string>(&report_path)->default_value(""),
      "write a JSON report (command, config, metrics, timings, memory table, peak RSS) to this file");
}

std::string closest_match(const std::string& word, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& k : known) {
    std::vector<size_t> prev(k.size() + 1), cur(k.size() + 1);
    for (size_t j = 0; j <= k.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= word.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= k.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (word[i - 1] == k[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    if (prev[k.size()] < best_d) {
      best_d = prev[k.size()];
      best = k;
    }
  }
  if (best_d <= std::max<size_t>(2, word.size() / 3)) return best;
  // An abbreviation is far from its option by edit distance: suggest the shortest option it begins.
  std::string completion;
  if (word.size() >= 2)
    for (const auto& k : known)
      if (k.size() > word.size() && k.compare(0, word.size(), word) == 0 && (completion.empty() || k.size() < completion.size()))
        completion = k;
  return completion;
}

bool parse_options(const std::string& command, const std::vector<std::string>& args,
                   const po::options_description& desc, po::variables_map& vm) {
  try {
    po::store(po::command_line_parser(args).options(desc).style(command_line_style()).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: ladder " << command << " [options]\n\n" << desc << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::unknown_option& e) {
    std::string name = e.get_option_name();
    std::string bare = name;
    while (!bare.empty() && bare[0] == '-') bare.erase(0, 1);
    std::vector<std::string> known;
    for (const auto& o : desc.options()) known.push_back(o->long_name());
    std::string hint = closest_match(bare, known);
    throw std::runtime_error("unknown option '" + name + "' for 'ladder " + command + "'" +
                             (hint.empty() ? "" : " (did you mean '--" + hint + "'?)") +
                             "; see 'ladder " + command + " --help'");
  } catch (const po::error& e) {
    throw std::runtime_error("ladder " + command + ": " + e.what());
  }
  return true;
}

// The shortest decimal text that reads back to the same value (to_string's 6 decimals would turn 1e-8
// into 0 in a stored config).
static std::string shortest(double v, int max_digits = 17) {
  char buf[32];
  for (int d = 1; d <= max_digits; ++d) {
    std::snprintf(buf, sizeof buf, "%.*g", d, v);
    if (max_digits == 17 ? std::strtod(buf, nullptr) == v : float(std::strtod(buf, nullptr)) == float(v)) break;
  }
  return buf;
}

std::vector<std::pair<std::string, std::string>> effective_options(const po::variables_map& vm) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [k, v] : vm) {
    if (k == "help") continue;
    const auto& a = v.value();
    std::string s;
    if (auto p = boost::any_cast<std::string>(&a)) s = *p;
    else if (auto p = boost::any_cast<int>(&a)) s = std::to_string(*p);
    else if (auto p = boost::any_cast<double>(&a)) s = shortest(*p);
    else if (auto p = boost::any_cast<float>(&a)) s = shortest(double(*p), 9);
    else if (auto p = boost::any_cast<bool>(&a)) s = *p ? "true" : "false";
    else if (auto p = boost::any_cast<std::vector<int>>(&a)) {
      for (size_t i = 0; i < p->size(); ++i) s += (i ? "," : "") + std::to_string((*p)[i]);
    } else s = "?";
    out.emplace_back(k, s);
  }
  return out;
}

}  // namespace ladder::apps
