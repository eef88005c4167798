#include "apps/train/run_checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>

#include "apps/options.h"
#include "apps/train/base_weights.h"

namespace ladder::apps {

namespace fs = std::filesystem;

std::string resolve_checkpoint(const std::string& given, const std::string& pick) {
  if (given.empty()) throw std::runtime_error("no checkpoint given (--checkpoint FILE.h5 or a run directory)");
  if (pick != "latest" && pick != "best")
    throw std::runtime_error("--pick must be 'latest' or 'best', not '" + pick + "'");
  std::error_code ec;
  if (!fs::exists(given, ec)) throw std::runtime_error("checkpoint '" + given + "' does not exist");
  if (!fs::is_directory(given, ec)) return given;
  std::string dir = given;
  if (fs::is_directory(given + "/checkpoints", ec)) dir = given + "/checkpoints";
  core::CheckpointDirectory cd(dir);
  std::vector<std::string> unreadable;
  std::optional<std::string> path = pick == "best" ? cd.best() : cd.latest(&unreadable);
  if (!path) {
    if (pick == "best")
      throw std::runtime_error(dir + ": no best.h5 (the run recorded no evaluation); use --pick latest");
    if (unreadable.empty()) throw std::runtime_error(dir + ": no checkpoint in this folder");
    std::string why;
    for (const auto& u : unreadable) why += "\n  " + u;
    throw std::runtime_error(dir + ": no readable checkpoint in this folder:" + why);
  }
  std::printf("checkpoint folder %s: using the %s checkpoint %s\n", dir.c_str(),
              pick == "best" ? "best" : "latest", path->c_str());
  return *path;
}

// The run's effective config as stored in the checkpoint, with command-line overrides applied.
TrainConfig config_from_checkpoint(const core::CheckpointData& ck, const std::string& path,
                                   const std::vector<std::string>& overrides) {
  if (ck.config.empty()) throw std::runtime_error(path + ": the checkpoint stores no config (attribute 'config')");
  TrainConfig cfg;
  for (const auto& o : overrides)
    if (o == "--help" || o == "-h" || o == "--config")
      throw std::runtime_error("'" + o + "' is not a configuration override here");
  parse_train_config(overrides, cfg, &ck.config);
  if (!ck.method.empty() && cfg.method != ck.method)
    throw std::runtime_error(path + ": checkpoint of method '" + ck.method + "' but the config says '" + cfg.method + "'");
  // The checkpoint's side network replaces its initialisation: skip LST's Fisher pass, which would cost
  // seconds and need the training split.
  if (cfg.method_config.text("lst_init") == "fisher") cfg.method_config.set("lst_init", std::string("magnitude"));
  check_base_weights(path, ck.backbone_hash, ck.backbone_id, cfg.model_dir, base_weights_hash(cfg.model_dir));
  return cfg;
}

// Splits argv into the command's own options and --section.key overrides (anything with a dot). An
// unknown option without a dot is an error naming the closest known option. help: --help was given.
std::vector<std::string> parse_with_overrides(const std::string& command, const std::vector<std::string>& args,
                                              const po::options_description& desc, po::variables_map& vm, bool& help) {
  help = false;
  std::vector<std::string> rest;
  try {
    auto parsed = po::command_line_parser(args).options(desc).style(command_line_style()).allow_unregistered().run();
    po::store(parsed, vm);
    rest = po::collect_unrecognized(parsed.options, po::include_positional);
    if (vm.count("help")) {
      help = true;
      return {};
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw std::runtime_error("ladder " + command + ": " + e.what());
  }
  std::vector<std::string> known;
  for (const auto& o : desc.options()) known.push_back(o->long_name());
  for (const auto& a : rest) {
    if (a.size() > 2 && a[0] == '-' && a[1] == '-' && a.find('.') == std::string::npos) {
      std::string hint = closest_match(a.substr(2), known);
      throw std::runtime_error("unknown option '" + a + "' for 'ladder " + command + "'" +
                               (hint.empty() ? "" : " (did you mean '--" + hint + "'?)") + "; see 'ladder " +
                               command + " --help' (configuration overrides are --section.key value)");
    }
  }
  return rest;
}

}  // namespace ladder::apps
