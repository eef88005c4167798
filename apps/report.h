#pragma once
// The machine-readable run report every `ladder` command writes with --report FILE.json: the command and
// its effective config, metrics, timings, the memory table (current and peak bytes per device and
// category) and peak RSS. Later commands add fields; tools read this file rather than parsing stdout.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ladder::apps {

class RunReport {
 public:
  RunReport(const std::string& command, const std::vector<std::string>& argv);
  void set_config(const std::vector<std::pair<std::string, std::string>>& options);
  nlohmann::json& metrics() { return j_["metrics"]; }
  nlohmann::json& timings() { return j_["timings"]; }
  nlohmann::json& root() { return j_; }
  // Adds the memory table, peak RSS and wall time, then writes `path` (via a temporary file and rename).
  // An empty path writes nothing.
  void write(const std::string& path);

 private:
  nlohmann::json j_;
  double t0_;
};

// Median of a series of step times (ms); 0 for an empty series.
double median(std::vector<double> v);

}  // namespace ladder::apps
