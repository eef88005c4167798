// `ladder inspect CKPT`: what a checkpoint holds, without Python: its attributes, every trainable parameter
// (shape, count, L2 norm), the optimizer state, the training curves and the config that produced it.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "apps/commands.h"
#include "apps/options.h"
#include "apps/report.h"
#include "core/io/checkpoint.h"

namespace ladder::apps {

namespace {

// "min" for losses and error rates, "" for schedules and counters, "max" for the rest (accuracy, F1, ...).
std::string best_direction(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  for (const char* low : {"loss", "perplexity", "ppl", "error", "wer", "cer"})
    if (n.find(low) != std::string::npos) return "min";
  for (const char* none : {"lr", "learning_rate", "grad_norm", "step", "epoch", "tokens", "samples", "time", "memory"})
    if (n == none || n.find(std::string(none) + "_") == 0 || n.find("_" + std::string(none)) != std::string::npos)
      return "";
  return "max";
}

double l2_norm(const core::Tensor& t) {
  if (t.dtype() == core::DType::i32 || t.dtype() == core::DType::i8 || t.dtype() == core::DType::u4) {
    return std::nan("");
  }
  double s = 0;
  for (float v : t.to_floats()) s += double(v) * double(v);
  return std::sqrt(s);
}

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return (v < 0 ? "-" : "") + out;
}

// The checkpoint may come first as a bare argument (ladder inspect CKPT) or as --checkpoint CKPT.
std::vector<std::string> with_positional_checkpoint(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  bool have = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool takes_value = (a == "--report" || a == "--threads" || a == "--checkpoint");
    if (takes_value && i + 1 < args.size()) {
      out.push_back(a);
      out.push_back(args[++i]);
    } else if (!a.empty() && a[0] != '-' && !have) {
      out.push_back("--checkpoint");
      out.push_back(a);
      have = true;
    } else {
      out.push_back(a);
    }
  }
  return out;
}

}  // namespace

int inspect_command(const std::vector<std::string>& args) {
  std::string path, report_path;
  int threads = 0;
  po::options_description desc("ladder inspect CKPT");
  desc.add_options()("checkpoint", po::value<std::string>(&path)->required(),
                     "the checkpoint file (also accepted as the first bare argument)");
  add_common_options(desc, threads, report_path);
  po::variables_map vm;
  if (!parse_options("inspect", with_positional_checkpoint(args), desc, vm)) return 0;
  RunReport report("inspect", args);
  report.set_config(effective_options(vm));

  const core::CheckpointData d = core::read_checkpoint(path);
  const std::string layout = "dp=" + std::to_string(d.dp) + ",tp=" + std::to_string(d.tp);
  std::printf("ladder inspect: %s\n", path.c_str());
  std::printf("  format        %s (version %lld)\n", core::kCheckpointFormat, (long long)core::kCheckpointVersion);
  std::printf("  step          %lld\n", (long long)d.step);
  std::printf("  epoch         %lld\n", (long long)d.epoch);
  std::printf("  samples seen  %lld\n", (long long)d.samples_seen);
  std::printf("  method        %s\n", d.method.empty() ? "-" : d.method.c_str());
  std::printf("  layout        %s\n", layout.c_str());
  std::printf("  backbone      %s (hash %s)\n", d.backbone_id.empty() ? "-" : d.backbone_id.c_str(),
              d.backbone_hash.empty() ? "-" : d.backbone_hash.c_str());
  for (const auto& [k, v] : d.extra_attrs) std::printf("  %-13s %s\n", k.c_str(), v.c_str());

  nlohmann::json j;
  j["path"] = path;
  j["format"] = core::kCheckpointFormat;
  j["version"] = core::kCheckpointVersion;
  j["step"] = d.step;
  j["epoch"] = d.epoch;
  j["samples_seen"] = d.samples_seen;
  j["method"] = d.method;
  j["dp"] = d.dp;
  j["tp"] = d.tp;
  j["layout"] = layout;
  j["backbone_id"] = d.backbone_id;
  j["backbone_hash"] = d.backbone_hash;
  j["extra_attrs"] = d.extra_attrs;
  j["config"] = d.config;

  // Parameters.
  size_t name_w = 4, shape_w = 5;
  for (const auto& [name, t] : d.params) {
    name_w = std::max(name_w, name.size());
    shape_w = std::max(shape_w, core::shape_str(t.shape()).size());
  }
  int64_t total = 0;
  std::printf("\nparameters (%zu tensors):\n  %-*s  %-*s  %12s  %12s\n", d.params.size(), int(name_w), "name",
              int(shape_w), "shape", "count", "L2 norm");
  auto& jp = j["params"] = nlohmann::json::array();
  for (const auto& [name, t] : d.params) {
    const double norm = l2_norm(t);
    total += t.numel();
    std::printf("  %-*s  %-*s  %12s  %12.6g\n", int(name_w), name.c_str(), int(shape_w),
                core::shape_str(t.shape()).c_str(), with_commas(t.numel()).c_str(), norm);
    jp.push_back({{"name", name}, {"shape", t.shape()}, {"count", t.numel()}, {"dtype", core::dtype_name(t.dtype())},
                  {"l2_norm", norm}});
  }
  std::printf("total trainable parameters: %s\n", with_commas(total).c_str());
  j["trainable_parameters"] = total;

  // Optimizer state: the distinct state names, and how many parameters carry each.
  std::vector<std::string> states;
  std::map<std::string, int> state_params;
  int64_t state_values = 0;
  std::set<std::string> state_owners;
  for (const auto& [name, t] : d.optimizer) {
    const size_t slash = name.find('/');
    const std::string state = name.substr(slash + 1);
    if (!state_params.count(state)) states.push_back(state);
    ++state_params[state];
    state_owners.insert(name.substr(0, slash));
    state_values += t.numel();
  }
  if (states.empty()) {
    std::printf("\noptimizer state: none\n");
  } else {
    std::string list;
    for (const auto& s : states) list += (list.empty() ? "" : ", ") + s;
    std::printf("\noptimizer state: %s (%zu tensors over %zu parameters, %s values)\n", list.c_str(),
                d.optimizer.size(), state_owners.size(), with_commas(state_values).c_str());
  }
  j["optimizer_states"] = states;
  auto& jo = j["optimizer"] = nlohmann::json::array();
  for (const auto& [name, t] : d.optimizer)
    jo.push_back({{"name", name}, {"shape", t.shape()}, {"dtype", core::dtype_name(t.dtype())}});

  // Metric series.
  auto& jm = j["metrics"] = nlohmann::json::array();
  if (d.metrics.empty()) {
    std::printf("\nmetrics: none\n");
  } else {
    size_t w = 4;
    for (const auto& [name, v] : d.metrics) w = std::max(w, name.size());
    std::printf("\nmetrics:\n  %-*s  %8s  %14s  %s\n", int(w), "name", "length", "last", "best");
    for (const auto& [name, v] : d.metrics) {
      const std::string dir = best_direction(name);
      nlohmann::json row = {{"name", name}, {"length", v.size()}};
      std::string best_s = "-";
      char last_s[32] = "-";
      if (!v.empty()) {
        std::snprintf(last_s, sizeof last_s, "%.6g", v.back());
        row["last"] = v.back();
        if (!dir.empty()) {
          size_t bi = 0;
          for (size_t i = 1; i < v.size(); ++i)
            if (dir == "min" ? v[i] < v[bi] : v[i] > v[bi]) bi = i;
          char buf[80];
          std::snprintf(buf, sizeof buf, "%.6g (%s, at index %zu)", v[bi], dir.c_str(), bi);
          best_s = buf;
          row["best"] = v[bi];
          row["best_index"] = bi;
          row["best_is"] = dir;
        }
      }
      std::printf("  %-*s  %8zu  %14s  %s\n", int(w), name.c_str(), v.size(), last_s, best_s.c_str());
      jm.push_back(row);
    }
  }

  std::printf("\nrng state: %zu streams; sampler state: %zu entries\n", d.rng.size(), d.sampler.size());
  std::vector<std::string> rng_names, sampler_names;
  for (const auto& [k, v] : d.rng) rng_names.push_back(k);
  for (const auto& [k, v] : d.sampler) sampler_names.push_back(k);
  j["rng"] = rng_names;
  j["sampler"] = sampler_names;

  std::printf("\nconfig:\n");
  if (d.config.empty()) {
    std::printf("  (empty)\n");
  } else {
    std::istringstream in(d.config);
    std::string line;
    while (std::getline(in, line)) std::printf("  |%s%s\n", line.empty() ? "" : " ", line.c_str());
  }
  std::fflush(stdout);

  report.root()["checkpoint"] = j;
  report.metrics()["trainable_parameters"] = total;
  report.metrics()["param_tensors"] = d.params.size();
  report.metrics()["step"] = d.step;
  report.write(report_path);
  return 0;
}

}  // namespace ladder::apps
