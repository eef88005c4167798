#include "apps/train/train_config.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "adapters/method_registry.h"
#include "apps/options.h"
#include "core/optim/optimizer.h"
#include "apps/progress.h"
#include "data/glue/glue_task.h"

namespace ladder::apps {

namespace {

// "~/x" -> "$HOME/x", so configs can name the model cache portably.
std::string expand_user(const std::string& p) {
  if (p.size() >= 1 && p[0] == '~' && (p.size() == 1 || p[1] == '/')) {
    const char* home = std::getenv("HOME");
    return std::string(home ? home : "") + p.substr(1);
  }
  return p;
}

std::string default_shared() {
  if (const char* s = std::getenv("LADDER_SHARED")) return s;
  return "../shared";
}

}  // namespace

bool parse_train_config(const std::vector<std::string>& args, TrainConfig& c, const std::string* ini_text,
                        const std::string& command) {
  namespace po = boost::program_options;
  std::string config_file, seed_s, report_cli;
  int threads_cli = 0;
  po::options_description generic("ladder " + command);
  generic.add_options()("help,h", "print every key with its default")(
      "config", po::value<std::string>(&config_file)->default_value(""), "INI file: [section] key = value")(
      "report", po::value<std::string>(&report_cli)->default_value(""), "the JSON run report (same as --log.report)")(
      "threads", po::value<int>(&threads_cli)->default_value(0), "CPU threads (same as --train.threads)");
  const std::string log_every_help =
      "plain progress line (loss averaged over the last N steps) every N steps when not on a terminal, at most one per " +
      std::to_string(int(kPlainLineInterval_s)) + " s: a line due sooner is skipped (the final line always prints)";
  std::string method_name_help = "one of";
  for (const auto& info : adapters::method_registry()) method_name_help += " " + info.name;
  method_name_help += " (combine with +; the README lists each)";
  std::string optimizer_help = "optimizer:";
  for (const auto& k : core::optimizer_kinds()) optimizer_help += " " + k;
  po::options_description keys("configuration keys (INI [section] key, or --section.key on the command line)");
  keys.add_options()
      ("model.dir", po::value<std::string>(&c.model_dir)->required(), "Hugging Face model directory")
      ("model.frozen_dtype", po::value<std::string>(&c.frozen_dtype)->default_value(c.frozen_dtype), "hold the frozen Linear weights as f32, bf16 or f16 (16 bits halve their memory; each GEMM widens a tile at a time)")
      ("task.name", po::value<std::string>(&c.task)->default_value(c.task), "GLUE task: cola sst2 mrpc qqp stsb mnli qnli rte wnli; or lm: causal language modelling on task.train_text (decoders)")
      ("task.train_text", po::value<std::string>(&c.train_text)->default_value(""), "task lm: training text (default <shared>/data/text/tinyshakespeare/input.txt), or with task.format pairs a TSV of prompt<TAB>response lines")
      ("task.eval_text", po::value<std::string>(&c.eval_text)->default_value(""), "task lm: evaluation text for perplexity (default <shared>/data/text/wikitext-2-raw/wiki.test.raw), or a pairs TSV")
      ("task.format", po::value<std::string>(&c.text_format)->default_value(c.text_format), "task lm: text (the file as one stream cut into task.max_length blocks) or pairs (prompt<TAB>response per line, loss on the response only; \\n and \\t escapes)")
      ("task.data_dir", po::value<std::string>(&c.data_dir)->default_value(""), "folder with train.tsv and dev.tsv (default: <shared>/data/glue/<task dir>)")
      ("task.max_length", po::value<int>(&c.max_length)->default_value(c.max_length), "tokens per example, special tokens included")
      ("task.pad_to_max_length", po::value<bool>(&c.pad_to_max_length)->default_value(c.pad_to_max_length), "pad every batch to task.max_length, not to its longest row (slower; measures memory and speed at that length)")
      ("task.max_train_examples", po::value<int>(&c.max_train_examples)->default_value(0), "use the first N training rows (0 = all)")
      ("task.max_eval_examples", po::value<int>(&c.max_eval_examples)->default_value(0), "evaluate on the first N dev rows (0 = all)")
      ("method.name", po::value<std::string>(&c.method)->default_value(c.method), method_name_help.c_str())
      ;
  // Every registered method's options, typed and checked by adapters/method_options.h after parsing.
  std::map<std::string, std::string> method_text;
  for (const auto& spec : adapters::method_option_specs())
    method_text[spec.key] = adapters::format_value(spec.default_value);
  for (const auto& spec : adapters::method_option_specs())
    keys.add_options()(("method." + spec.key).c_str(),
                       po::value<std::string>(&method_text[spec.key])->default_value(method_text[spec.key]),
                       spec.help.c_str());
  keys.add_options()
      ("train.batch_size", po::value<int>(&c.batch_size)->default_value(c.batch_size), "sequences per micro-batch and rank (a step: batch_size x grad_accum x ranks)")
      ("train.grad_accum", po::value<int>(&c.grad_accum)->default_value(c.grad_accum), "micro-batches per optimizer step")
      ("train.epochs", po::value<int>(&c.epochs)->default_value(c.epochs), "passes over the training set")
      ("train.max_steps", po::value<int>(&c.max_steps)->default_value(0), "optimizer steps (overrides epochs when > 0)")
      ("train.lr", po::value<double>(&c.lr)->default_value(c.lr), "peak learning rate")
      ("train.weight_decay", po::value<double>(&c.weight_decay)->default_value(c.weight_decay), "AdamW decoupled weight decay (not on biases and LayerNorms)")
      ("train.optimizer", po::value<std::string>(&c.optimizer)->default_value(c.optimizer), optimizer_help.c_str())
      ("train.schedule", po::value<std::string>(&c.schedule)->default_value(c.schedule), "constant, linear or cosine (after warmup)")
      ("train.warmup_ratio", po::value<double>(&c.warmup_ratio)->default_value(c.warmup_ratio), "warmup steps as a fraction of all steps")
      ("train.warmup_steps", po::value<int>(&c.warmup_steps)->default_value(-1), "warmup steps (overrides warmup_ratio when >= 0)")
      ("train.max_grad_norm", po::value<double>(&c.max_grad_norm)->default_value(c.max_grad_norm), "clip the global gradient norm (0 = off)")
      ("train.seed", po::value<std::string>(&seed_s)->default_value("42"), "seed of initialisation, sampling and dropout")
      ("train.threads", po::value<int>(&c.threads)->default_value(0), "CPU threads (0 = OMP_NUM_THREADS or all cores)")
      ("eval.every", po::value<int>(&c.eval_every)->default_value(0), "evaluate every N steps (0 = at the end)")
      ("eval.batch_size", po::value<int>(&c.eval_batch_size)->default_value(c.eval_batch_size), "sequences per evaluation batch")
      ("eval.all_ranks", po::value<bool>(&c.eval_all_ranks)->default_value(c.eval_all_ranks), "DyLoRA: evaluate every rank 1..r_max at the end")
      ("checkpoint.dir", po::value<std::string>(&c.out_dir)->default_value(c.out_dir), "run directory: checkpoints, report")
      ("checkpoint.every", po::value<int>(&c.save_every)->default_value(0), "save every N steps (0 = at evaluations and the end)")
      ("checkpoint.keep_last", po::value<int>(&c.keep_last)->default_value(c.keep_last), "checkpoints kept besides the best")
      ("checkpoint.resume", po::value<bool>(&c.resume)->default_value(c.resume), "resume from the run directory's latest checkpoint")
      ("checkpoint.start_over", po::value<bool>(&c.start_over)->default_value(c.start_over), "when checkpoints exist but none is readable, train from step 0 over them (default: stop with an error naming them)")
      ("parallel.tp", po::value<int>(&c.tp)->default_value(c.tp), "tensor-parallel size (world = dp x tp; ranks from mpirun/srun)")
      ("parallel.bucket_mb", po::value<double>(&c.bucket_mb)->default_value(c.bucket_mb), "data-parallel gradient all-reduce bucket size in MB")
      ("cache.dir", po::value<std::string>(&c.cache_dir)->default_value(""), "activation store directory (train.h5, dev.h5); default runs/cache-<task>")
      ("cache.dtype", po::value<std::string>(&c.cache_dtype)->default_value(c.cache_dtype), "hidden states in the store: f16, bf16 or f32")
      ("cache.use", po::value<bool>(&c.cache_use)->default_value(c.cache_use), "LST: train from the activation store instead of running the backbone")
      ("cache.checksum", po::value<bool>(&c.cache_checksum)->default_value(c.cache_checksum), "ladder cache: HDF5's Fletcher-32 checksum on the store's datasets, so a damaged chunk is a read error; false reads faster (docs/ACTIVATION_STORE.md)")
      ("log.every", po::value<int>(&c.log_every)->default_value(c.log_every), log_every_help.c_str())
      ("log.report", po::value<std::string>(&c.report)->default_value(""), "write the JSON run report here (default <checkpoint.dir>/report.json)");
  po::options_description all;
  all.add(generic).add(keys);

  std::vector<std::string> known;
  for (const auto& o : all.options()) known.push_back(o->long_name());
  auto unknown = [&](const std::string& raw, const std::string& where) {
    std::string bare = raw;
    while (!bare.empty() && bare[0] == '-') bare.erase(0, 1);
    std::string hint = closest_match(bare, known);
    return std::runtime_error("unknown configuration key '" + bare + "'" + where +
                              (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; see 'ladder " + command + " --help'");
  };
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).style(command_line_style()).run(), vm);  // command line first: it wins
    if (vm.count("help")) {
      std::cout << "usage: ladder " << command << " --config run.ini [--section.key value ...]\n\n" << all << "\n";
      return false;
    }
    const std::string cfg_path = ini_text ? std::string("(checkpoint config)") : vm["config"].as<std::string>();
    if (!cfg_path.empty()) {
      std::ifstream file;
      std::istringstream text(ini_text ? *ini_text : std::string());
      if (!ini_text) file.open(cfg_path);
      std::istream& in = ini_text ? static_cast<std::istream&>(text) : static_cast<std::istream&>(file);
      if (!in) throw std::runtime_error(cfg_path + ": cannot open config file");
      try {
        po::store(po::parse_config_file(in, all, false), vm);
      } catch (const po::unknown_option& e) {
        throw unknown(e.get_option_name(), " in " + cfg_path);
      } catch (const po::error& e) {
        throw std::runtime_error(cfg_path + ": " + e.what());
      }
    }
    po::notify(vm);
  } catch (const po::unknown_option& e) {
    throw unknown(e.get_option_name(), " on the command line");
  } catch (const po::required_option& e) {
    throw std::runtime_error("missing configuration key '" + e.get_option_name() + "' (set [model] dir = ... or --model.dir)");
  } catch (const po::error& e) {
    throw std::runtime_error(e.what());  // the command's name is the caller's prefix
  }
  c.model_dir = expand_user(c.model_dir);
  c.data_dir = expand_user(c.data_dir);
  c.out_dir = expand_user(c.out_dir);
  for (const auto& [key, text] : method_text) {
    if (vm[("method." + key)].defaulted()) continue;
    try {
      c.method_config.set_text(key, text);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(e.what());
    }
  }
  std::string recipe;
  try {
    recipe = adapters::method_recipe(c.method);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("method.name: ") + e.what());
  }
  if (c.cache_dir.empty()) c.cache_dir = "runs/cache-" + c.task;
  if (c.frozen_dtype != "f16" && c.frozen_dtype != "bf16" && c.frozen_dtype != "f32")
    throw std::runtime_error("model.frozen_dtype '" + c.frozen_dtype + "': expected f32, bf16 or f16");
  if (c.cache_dtype != "f16" && c.cache_dtype != "bf16" && c.cache_dtype != "f32")
    throw std::runtime_error("cache.dtype '" + c.cache_dtype + "': expected f16, bf16 or f32");
  if (c.cache_use && recipe != "lst")
    throw std::runtime_error("cache.use = true trains a Ladder Side-Tuning side network from stored activations; method.name is '" +
                             c.method + "', not lst");
  try {
    c.seed = std::stoull(seed_s);
  } catch (const std::exception&) {
    throw std::runtime_error("train.seed: '" + seed_s + "' is not a non-negative integer");
  }
  c.method_config.seed = c.seed;
  {
    const auto& kinds = core::optimizer_kinds();
    if (std::find(kinds.begin(), kinds.end(), c.optimizer) == kinds.end()) {
      std::string valid;
      for (const auto& k : kinds) valid += (valid.empty() ? "" : ", ") + k;
      throw std::runtime_error("train.optimizer '" + c.optimizer + "': valid: " + valid);
    }
  }
  c.train_text = expand_user(c.train_text);
  c.eval_text = expand_user(c.eval_text);
  if (c.task == "lm") {
    if (c.text_format != "text" && c.text_format != "pairs")
      throw std::runtime_error("task.format '" + c.text_format + "': expected text or pairs");
    if (c.train_text.empty()) c.train_text = default_shared() + "/data/text/tinyshakespeare/input.txt";
    if (c.eval_text.empty()) c.eval_text = default_shared() + "/data/text/wikitext-2-raw/wiki.test.raw";
    if (recipe == "lst" || c.cache_use) throw std::runtime_error("task.name lm: method.name " + c.method + " is not supported for language modelling");
  } else if (c.data_dir.empty()) {
    c.data_dir = default_shared() + "/data/glue/" + data::glue_task_info(data::parse_glue_task(c.task)).dir_name;
  }
  if (c.batch_size <= 0 || c.grad_accum <= 0 || c.eval_batch_size <= 0)
    throw std::runtime_error("train.batch_size, train.grad_accum and eval.batch_size must be positive");
  if (c.tp < 1) throw std::runtime_error("parallel.tp must be at least 1, got " + std::to_string(c.tp));
  if (!(c.bucket_mb > 0)) throw std::runtime_error("parallel.bucket_mb must be positive");
  if (c.max_length < 4) throw std::runtime_error("task.max_length must be at least 4");
  if (c.epochs <= 0 && c.max_steps <= 0) throw std::runtime_error("set train.epochs or train.max_steps");
  if (!report_cli.empty()) c.report = report_cli;
  if (threads_cli > 0) c.threads = threads_cli;
  if (c.report.empty()) c.report = c.out_dir + "/report.json";

  // The effective config as INI, grouped by section.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> sections;
  for (auto& [k, v] : effective_options(vm)) {
    if (k == "config" || k == "report" || k == "threads") continue;
    auto dot = k.find('.');
    sections[k.substr(0, dot)].emplace_back(k.substr(dot + 1), v);
  }
  std::ostringstream ini;
  for (auto& [sec, kv] : sections) {
    ini << "[" << sec << "]\n";
    for (auto& [k, v] : kv) ini << k << " = " << v << "\n";
  }
  c.effective_ini = ini.str();
  return true;
}

}  // namespace ladder::apps
