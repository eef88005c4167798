// `ladder eval --checkpoint CKPT`: rebuilds a training run from the config stored in its checkpoint (with
// --section.key overrides, e.g. --task.data_dir), loads the trained parameters and evaluates the task's dev
// split(s) (MNLI: matched and mismatched). A checkpoint of a method that trains sub-models (its registry
// entry's sub_models(), e.g. every rank) evaluates at any list of them from the one file (--ranks all); --advglue DEV_JSON adds the AdvGLUE set(s) of the task and the drop from the benign dev
// score; --dump-logits FILE.json writes the first dev split's inputs and logits (for checks against PyTorch).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "adapters/method.h"
#include "apps/commands.h"
#include "apps/options.h"
#include "apps/report.h"
#include "apps/train/run_checkpoint.h"
#include "apps/train/run_model.h"
#include "apps/train/train_config.h"
#include "core/io/checkpoint.h"
#include "core/kernels/threading.h"
#include "data/glue/advglue.h"
#include "data/glue/glue_reader.h"
#include "data/padded_batch.h"

namespace ladder::apps {

namespace fs = std::filesystem;

namespace {

struct NamedSplit {
  std::string name;    // "dev", "dev_matched", "advglue_sst2", ...
  data::GlueSplit split;
  int benign = -1;     // AdvGLUE: index of the dev split it is the adversarial version of
};

std::vector<int> parse_ranks(const std::string& s, int r_max) {
  std::vector<int> out;
  if (s == "all") {
    for (int b = 1; b <= r_max; ++b) out.push_back(b);
    return out;
  }
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    int b = 0;
    try {
      size_t used = 0;
      b = std::stoi(item, &used);
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw std::runtime_error("--ranks: '" + item + "' is not a rank (use all or a list such as 1,2,4)");
    }
    if (b < 1 || b > r_max)
      throw std::runtime_error("--ranks: rank " + std::to_string(b) + " is outside 1.." + std::to_string(r_max));
    out.push_back(b);
  }
  if (out.empty()) throw std::runtime_error("--ranks: no rank given");
  return out;
}

// Logits of the first split's examples in file order, with their inputs, as JSON.
nlohmann::json dump_logits(RunModel& m, const data::GlueSplit& split, const std::vector<data::GlueExample>& rows,
                           int batch_size, int32_t pad_id) {
  nlohmann::json ex = nlohmann::json::array();
  data::PaddedBatch batch;
  const int L = m.head->num_labels();
  for (size_t s = 0; s < split.size(); s += size_t(batch_size)) {
    std::vector<size_t> idx;
    for (size_t i = s; i < std::min(split.size(), s + size_t(batch_size)); ++i) idx.push_back(i);
    data::pad_batch(batch, split.enc, idx, pad_id);
    const core::Tensor& logits = model_forward(m, batch.view(), core::StepOptions{});
    const float* lg = logits.data<float>();
    for (size_t b = 0; b < idx.size(); ++b) {
      const size_t i = idx[b];
      nlohmann::json e;
      e["index"] = i;
      if (i < rows.size()) {
        e["text_a"] = rows[i].a;
        if (rows[i].has_b) e["text_b"] = rows[i].b;
      }
      e["label"] = split.labels[i];
      if (m.head->regression()) e["score"] = split.scores[i];
      e["input_ids"] = split.enc[i].input_ids;
      e["token_type_ids"] = split.enc[i].token_type_ids;
      e["logits"] = std::vector<float>(lg + b * size_t(L), lg + (b + 1) * size_t(L));
      ex.push_back(std::move(e));
    }
  }
  return ex;
}

}  // namespace

int eval_command(const std::vector<std::string>& args) {
  std::string ckpt_arg, pick, ranks_s, advglue, dump_path, report_path;
  int threads = 0, max_eval = 0;
  po::options_description desc("ladder eval --checkpoint CKPT [options] [--section.key value ...]");
  desc.add_options()
      ("checkpoint", po::value<std::string>(&ckpt_arg)->required(), "checkpoint file, or a run's checkpoint folder / run directory")
      ("pick", po::value<std::string>(&pick)->default_value("latest"), "in a folder: 'latest' (newest complete checkpoint) or 'best' (best.h5)")
      ("ranks", po::value<std::string>(&ranks_s)->default_value(""), "sub-models of a method that trains several (their sizes, e.g. ranks): 'all' or a list such as 1,2,4 (default: the largest)")
      ("advglue", po::value<std::string>(&advglue)->default_value(""), "AdvGLUE dev.json: also evaluate the task's adversarial set(s) and report the drop")
      ("max-eval-examples", po::value<int>(&max_eval), "evaluate on the first N rows of each split (0 = all; default: the run's task.max_eval_examples)")
      ("dump-logits", po::value<std::string>(&dump_path)->default_value(""), "write the first dev split's inputs and logits to this JSON file");
  add_common_options(desc, threads, report_path);
  po::variables_map vm;
  bool help = false;
  const std::vector<std::string> overrides = parse_with_overrides("eval", args, desc, vm, help);
  if (help) {
    std::printf("usage: ladder eval --checkpoint CKPT [options] [--section.key value ...]\n\n");
    std::cout << desc << "\nAny key of 'ladder train --help' overrides the checkpoint's stored config, e.g. --task.data_dir DIR.\n";
    return 0;
  }
  RunReport report("eval", args);
  report.set_config(effective_options(vm));

  const std::string path = resolve_checkpoint(ckpt_arg, pick);
  const core::CheckpointData ck = core::read_checkpoint(path);
  TrainConfig cfg = config_from_checkpoint(ck, path, overrides);
  if (vm.count("max-eval-examples")) {
    if (max_eval < 0) throw std::runtime_error("--max-eval-examples must be >= 0");
    cfg.max_eval_examples = max_eval;
  }
  core::set_num_threads(threads > 0 ? threads : cfg.threads);
  const data::GlueTask task = data::parse_glue_task(cfg.task);
  const data::GlueTaskInfo& info = data::glue_task_info(task);

  cfg.cache_use = false;  // evaluation runs the backbone on the dev text, also for a run trained from a store
  RunModel rm = build_run_model(cfg);
  load_trainable_params(rm, ck, path);
  const int32_t pad = data::TextEncoder::for_model(cfg.model_dir, rm.backbone->config().arch).pad_id();

  // Sub-models of the run's method, by size.
  adapters::Method* dy = adapters::sub_model_method(rm.methods);
  const adapters::SubModels subs = dy ? dy->sub_models() : adapters::SubModels{};
  const int r_max = dy ? subs.sizes.back() : 0;
  std::vector<int> ranks;
  if (!ranks_s.empty()) {
    if (!dy) throw std::runtime_error("--ranks needs a checkpoint of a method that trains sub-models; this one is method '" + cfg.method + "'");
    ranks = parse_ranks(ranks_s, r_max);
  } else if (dy) {
    ranks = {r_max};
  }

  // Splits: every dev file of the task, then the AdvGLUE keys.
  std::vector<NamedSplit> splits;
  {
    data::GlueSplit train, dev;
    load_glue_splits(cfg, rm, false, train, dev);
    splits.push_back({fs::path(info.dev_files[0]).stem().string(), std::move(dev), -1});
    for (size_t f = 1; f < info.dev_files.size(); ++f)
      splits.push_back({fs::path(info.dev_files[f]).stem().string(),
                        tokenize_for_run(cfg, rm, task, data::read_glue_tsv(task, cfg.data_dir + "/" + info.dev_files[f]), cfg.max_eval_examples), -1});
  }
  const size_t n_dev = splits.size();
  if (!advglue.empty()) {
    std::vector<std::pair<std::string, int>> keys;
    switch (task) {
      case data::GlueTask::sst2: keys = {{"sst2", 0}}; break;
      case data::GlueTask::qqp: keys = {{"qqp", 0}}; break;
      case data::GlueTask::mnli: keys = {{"mnli", 0}, {"mnli-mm", 1}}; break;
      case data::GlueTask::qnli: keys = {{"qnli", 0}}; break;
      case data::GlueTask::rte: keys = {{"rte", 0}}; break;
      default:
        throw std::runtime_error("--advglue: AdvGLUE has no adversarial set for " + info.name +
                                 " (it covers sst2, qqp, mnli, mnli-mm, qnli, rte)");
    }
    for (auto& [key, benign] : keys)
      splits.push_back({"advglue_" + key, tokenize_for_run(cfg, rm, task, data::read_advglue(advglue, key), cfg.max_eval_examples),
                        std::min<int>(benign, int(n_dev) - 1)});
  }

  std::printf("ladder eval: %s (step %lld, method %s) on %s, %s\n", path.c_str(), (long long)ck.step, cfg.method.c_str(),
              info.name.c_str(), cfg.model_dir.c_str());
  for (auto& s : splits) std::printf("  %-20s %zu examples\n", s.name.c_str(), s.split.size());

  // Evaluate at each sub-model (once when the method has none).
  const std::string& pm = info.primary_metric;
  auto& jm = report.metrics();
  jm["checkpoint"] = path;
  jm["step"] = ck.step;
  jm["method"] = cfg.method;
  jm["task"] = info.name;
  jm["primary_metric"] = pm;
  std::vector<std::vector<EvalResult>> results;  // [rank][split]
  const std::vector<int> rank_list = ranks.empty() ? std::vector<int>{0} : ranks;
  for (int b : rank_list) {
    if (dy) dy->select_sub_model(b);
    std::vector<EvalResult> row;
    for (auto& s : splits) row.push_back(evaluate(rm, s.split, cfg.eval_batch_size, pad));
    nlohmann::json jr;
    for (size_t i = 0; i < splits.size(); ++i) {
      nlohmann::json js = row[i].metrics;
      js["loss"] = row[i].loss;
      js["examples"] = splits[i].split.size();
      if (splits[i].benign >= 0) js["drop_" + pm] = row[size_t(splits[i].benign)].metrics.at(pm) - row[i].metrics.at(pm);
      jr[splits[i].name] = js;
    }
    if (ranks.size() > 1) jm["ranks"][std::to_string(b)] = jr;
    else {
      for (auto& [k, v] : jr.items()) jm[k] = v;
      if (dy) jm["rank"] = b;
    }
    results.push_back(std::move(row));
  }

  // Print.
  if (rank_list.size() == 1) {
    if (dy) std::printf("%s %s %d of %d\n", dy->name().c_str(), subs.unit.c_str(), rank_list[0], r_max);
    for (size_t i = 0; i < splits.size(); ++i) {
      const auto& r = results[0][i];
      std::printf("%-20s %s, loss %.4f", splits[i].name.c_str(), format_metrics(r.metrics).c_str(), r.loss);
      if (splits[i].benign >= 0)
        std::printf("; drop from %s: %.4f %s", splits[size_t(splits[i].benign)].name.c_str(),
                    results[0][size_t(splits[i].benign)].metrics.at(pm) - r.metrics.at(pm), pm.c_str());
      std::printf("\n");
    }
  } else {
    std::printf("%s: %s at each %s (up to %d)\n%-6s", dy->name().c_str(), pm.c_str(), subs.unit.c_str(), r_max, subs.unit.c_str());
    for (auto& s : splits) std::printf("  %16s", s.name.c_str());
    for (auto& s : splits)
      if (s.benign >= 0) std::printf("  %16s", ("drop " + s.name.substr(8)).c_str());
    std::printf("\n");
    for (size_t k = 0; k < rank_list.size(); ++k) {
      std::printf("%-6d", rank_list[k]);
      for (size_t i = 0; i < splits.size(); ++i) std::printf("  %16.4f", results[k][i].metrics.at(pm));
      for (size_t i = 0; i < splits.size(); ++i)
        if (splits[i].benign >= 0)
          std::printf("  %16.4f", results[k][size_t(splits[i].benign)].metrics.at(pm) - results[k][i].metrics.at(pm));
      std::printf("\n");
    }
  }

  if (!dump_path.empty()) {
    const int b = rank_list.back();
    if (dy) dy->select_sub_model(b);
    auto rows = data::read_glue_tsv(task, cfg.data_dir + "/" + info.dev_files[0]);
    nlohmann::json j;
    j["checkpoint"] = path;
    j["step"] = ck.step;
    j["task"] = info.name;
    j["method"] = cfg.method;
    j["model_dir"] = cfg.model_dir;
    j["max_length"] = cfg.max_length;
    j["num_labels"] = rm.head->num_labels();
    if (dy) j["rank"] = b;
    j["examples"] = dump_logits(rm, splits[0].split, rows, cfg.eval_batch_size, pad);
    const std::string tmp = dump_path + ".tmp";
    {
      std::ofstream out(tmp);
      out << j.dump(1) << "\n";
      if (!out) throw std::runtime_error(dump_path + ": cannot write");
    }
    fs::rename(tmp, dump_path);
    std::printf("logits of %zu %s examples written to %s\n", splits[0].split.size(), splits[0].name.c_str(), dump_path.c_str());
  }
  report.write(report_path);
  return 0;
}

}  // namespace ladder::apps
