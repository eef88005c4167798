#include "apps/report.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "core/kernels/threading.h"
#include "core/tensor/memory.h"

namespace ladder::apps {

static double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

RunReport::RunReport(const std::string& command, const std::vector<std::string>& argv) : t0_(now_s()) {
  j_["ladder_version"] = "0.1.0";
  j_["command"] = command;
  j_["argv"] = argv;
  j_["metrics"] = nlohmann::json::object();
  j_["timings"] = nlohmann::json::object();
}

void RunReport::set_config(const std::vector<std::pair<std::string, std::string>>& options) {
  auto& c = j_["config"];
  for (auto& [k, v] : options) c[k] = v;
}

void RunReport::write(const std::string& path) {
  if (path.empty()) return;
  auto& mem = j_["memory"] = nlohmann::json::array();
  auto& t = core::MemoryTracker::instance();
  for (const auto& r : t.rows())
    mem.push_back({{"device", r.device}, {"category", core::mem_category_name(r.category)},
                   {"current_bytes", r.current}, {"peak_bytes", r.peak}, {"at_peak_total_bytes", r.at_peak}});
  j_["memory_peak_total_bytes"] = t.peak_total(0);
  j_["peak_rss_bytes"] = core::peak_rss_bytes();
  j_["threads"] = core::num_threads();
  j_["blas"] = core::blas_config();
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  j_["OPENBLAS_CORETYPE"] = coretype ? nlohmann::json(coretype) : nlohmann::json(nullptr);
  j_["timings"]["wall_s"] = now_s() - t0_;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) throw std::runtime_error(path + ": cannot write report");
    out << j_.dump(2) << "\n";
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error(path + ": cannot rename report into place");
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace ladder::apps
