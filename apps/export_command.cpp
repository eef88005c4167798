// `ladder export --checkpoint CKPT --format peft|merged --output DIR`: a trained run as files other tools read.
//   peft    adapter_model.safetensors + adapter_config.json for PEFT's PeftModel.from_pretrained(base, DIR)
//           (every method whose registry entry exports PEFT; a method with sub-models exports one of them)
//   merged  a Hugging Face model directory (config.json, model.safetensors, tokenizer files) with the method
//           folded into the backbone weights and the classification head: the backbone's Hugging Face task
//           class (BertForSequenceClassification, ...).from_pretrained(DIR) needs neither ladder nor PEFT
// Both are written into a temporary sibling directory and renamed into place. docs/EXPORT.md has the details.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <unistd.h>

#include "adapters/method.h"
#include "adapters/method_registry.h"
#include "apps/commands.h"
#include "core/backbones/gguf_model.h"
#include "apps/options.h"
#include "apps/report.h"
#include "apps/train/run_checkpoint.h"
#include "apps/train/run_model.h"
#include "apps/train/train_config.h"
#include "core/io/checkpoint.h"
#include "core/io/safetensors.h"
#include "core/kernels/threading.h"
#include "data/glue/glue_task.h"
#include "data/text_encoder.h"

namespace ladder::apps {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

// Writes into DIR.tmp-PID beside DIR, then renames it to DIR (replacing an existing DIR only with overwrite).
class StagedDir {
 public:
  StagedDir(const std::string& out, bool overwrite) : out_(fs::path(out).lexically_normal().string()) {
    if (out_.empty()) throw std::runtime_error("--output: no directory given");
    while (out_.size() > 1 && out_.back() == '/') out_.pop_back();
    std::error_code ec;
    if (fs::exists(out_, ec)) {
      if (!fs::is_directory(out_, ec)) throw std::runtime_error("--output " + out_ + " exists and is not a directory");
      if (!fs::is_empty(out_, ec) && !overwrite)
        throw std::runtime_error("--output " + out_ + " exists and is not empty (pass --overwrite to replace it)");
    }
    const fs::path parent = fs::path(out_).parent_path();
    if (!parent.empty()) fs::create_directories(parent);
    tmp_ = out_ + ".tmp-" + std::to_string(::getpid());
    fs::remove_all(tmp_);
    fs::create_directories(tmp_);
  }
  ~StagedDir() {
    if (!done_) {
      std::error_code ec;
      fs::remove_all(tmp_, ec);
    }
  }
  const std::string& tmp() const { return tmp_; }
  void commit() {
    std::error_code ec;
    std::string old;
    if (fs::exists(out_, ec)) {
      old = out_ + ".old-" + std::to_string(::getpid());
      fs::remove_all(old);
      fs::rename(out_, old);
    }
    fs::rename(tmp_, out_);
    done_ = true;
    if (!old.empty()) fs::remove_all(old, ec);
  }

 private:
  std::string out_, tmp_;
  bool done_ = false;
};

void write_json(const std::string& path, const json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw std::runtime_error(path + ": cannot write");
}

void copy_tokenizer_files(const std::string& from, const std::string& to, std::vector<std::string>& copied) {
  for (const char* f : {"vocab.txt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                        "special_tokens_map.json", "added_tokens.json"}) {
    std::error_code ec;
    if (fs::is_regular_file(from + "/" + f, ec)) {
      fs::copy_file(from + "/" + f, to + "/" + f, fs::copy_options::overwrite_existing);
      copied.push_back(f);
    }
  }
}

}  // namespace

int export_command(const std::vector<std::string>& args) {
  std::string ckpt_arg, pick, format, output, report_path;
  int threads = 0, rank = 0;
  bool overwrite = false;
  po::options_description desc("ladder export --checkpoint CKPT --format peft|merged --output DIR");
  desc.add_options()
      ("checkpoint", po::value<std::string>(&ckpt_arg)->required(), "checkpoint file, or a run's checkpoint folder / run directory")
      ("pick", po::value<std::string>(&pick)->default_value("latest"), "in a folder: 'latest' (newest complete checkpoint) or 'best' (best.h5)")
      ("format", po::value<std::string>(&format)->required(), "peft (LoRA adapter for PEFT) or merged (Hugging Face model directory)")
      ("output", po::value<std::string>(&output)->required(), "directory to write (written to a temporary sibling, then renamed)")
      ("rank", po::value<int>(&rank)->default_value(0), "the sub-model to export, by size, of a method that trains several (e.g. a rank; default: the largest)")
      ("overwrite", po::bool_switch(&overwrite), "replace an existing non-empty output directory");
  add_common_options(desc, threads, report_path);
  po::variables_map vm;
  bool help = false;
  // --section.key overrides of the stored config (e.g. --model.dir when the base model moved).
  const std::vector<std::string> overrides = parse_with_overrides("export", args, desc, vm, help);
  if (help) {
    std::printf("usage: ladder export --checkpoint CKPT --format peft|merged --output DIR [--section.key value ...]\n\n");
    std::cout << desc << "\nAny key of 'ladder train --help' overrides the checkpoint's stored config, e.g. --model.dir DIR.\n";
    return 0;
  }
  if (format != "peft" && format != "merged")
    throw std::runtime_error("--format must be 'peft' or 'merged', not '" + format + "'");
  RunReport report("export", args);
  report.set_config(effective_options(vm));

  const std::string path = resolve_checkpoint(ckpt_arg, pick);
  const core::CheckpointData ck = core::read_checkpoint(path);
  TrainConfig cfg = config_from_checkpoint(ck, path, overrides);
  core::set_num_threads(threads > 0 ? threads : cfg.threads);
  const bool lm = cfg.task == "lm";  // a causal-LM run: no classification head
  const data::GlueTaskInfo& info = data::glue_task_info(data::parse_glue_task(lm ? "sst2" : cfg.task));
  if (format == "merged" && core::is_gguf_file(cfg.model_dir))
    throw std::runtime_error("--format merged: the base model " + cfg.model_dir +
                             " is a GGUF file; merged export writes a Hugging Face directory from one (use --format peft, "
                             "which PEFT applies to the GGUF loaded by transformers)");

  // Check the method before loading anything big.
  const adapters::ExportFormat fmt = format == "peft" ? adapters::export_peft : adapters::export_merged;
  for (const auto& name : adapters::parse_method_spec(cfg.method)) {
    const adapters::MethodInfo& mi = adapters::method_info(name);
    if (mi.exports & fmt) continue;
    std::string can;
    for (const auto& m : adapters::method_registry())
      if (m.exports & fmt) can += (can.empty() ? "" : ", ") + m.name + (m.peft_name.empty() || fmt != adapters::export_peft ? "" : " (" + m.peft_name + ")");
    if (fmt == adapters::export_peft)
      throw std::runtime_error("--format peft: method '" + name + "' has no PEFT equivalent (PEFT adapters: " + can +
                               "); use --format merged for mergeable methods");
    throw std::runtime_error("--format merged: method '" + name + "' cannot be folded into the backbone weights" +
                             (mi.merge_note.empty() ? "" : " (" + mi.merge_note + ")") +
                             "; use the checkpoint with ladder eval instead (mergeable: " + can + ")");
  }

  cfg.cache_use = false;  // a run trained from an activation store exports the model with its backbone
  RunModel rm = build_run_model(cfg);
  load_trainable_params(rm, ck, path);
  core::Backbone& bb = *rm.backbone;
  const core::ClassifierLayout layout = bb.classifier_layout();
  const std::string& backbone_prefix = layout.task_prefix;
  const std::string& head_name = layout.head;
  auto is_head = [&](const std::string& n) { return n.rfind(head_name + ".", 0) == 0; };

  adapters::Method* sm = adapters::sub_model_method(rm.methods);
  const adapters::SubModels subs = sm ? sm->sub_models() : adapters::SubModels{};
  if (rank != 0 && !sm)
    throw std::runtime_error("--rank picks a sub-model of a method that trains several; this checkpoint's method is '" +
                             cfg.method + "'");
  const int sub_size = sm ? (rank ? rank : subs.sizes.back()) : 0;
  if (sm && std::find(subs.sizes.begin(), subs.sizes.end(), sub_size) == subs.sizes.end())
    throw std::runtime_error("--rank " + std::to_string(sub_size) + " is outside " + std::to_string(subs.sizes.front()) +
                             ".." + std::to_string(subs.sizes.back()));
  if (sm) sm->select_sub_model(sub_size);

  StagedDir staged(output, overwrite);
  const std::string tmp = staged.tmp();
  std::vector<std::pair<std::string, core::Tensor>> tensors;
  auto& jm = report.metrics();
  jm["checkpoint"] = path;
  jm["format"] = format;
  jm["output"] = output;
  jm["method"] = cfg.method;

  if (format == "peft") {
    std::vector<std::string> modules;
    for (auto& [n, lin] : bb.linear_modules()) modules.push_back(n);
    if (bb.has_pooler()) modules.push_back("pooler.dense");
    if (!lm) modules.push_back(head_name);
    adapters::PeftAdapter adapter;
    for (auto& m : rm.methods)
      if (!m->peft_adapter(adapter, modules))
        throw std::runtime_error("--format peft: method '" + m->name() + "' has no PEFT equivalent");
    for (auto& [name, t] : adapter.tensors) tensors.emplace_back("base_model.model." + backbone_prefix + name, t);
    for (auto& p : bb.params().all())
      if (is_head(p->name)) tensors.emplace_back("base_model.model." + p->name, p->value);
    json cj = adapter.config;
    cj["task_type"] = lm ? "CAUSAL_LM" : "SEQ_CLS";
    cj["base_model_name_or_path"] = fs::absolute(cfg.model_dir).lexically_normal().string();
    if (!lm) cj["modules_to_save"] = json::array({head_name});
    cj["inference_mode"] = true;
    cj["revision"] = nullptr;
    core::write_safetensors(tmp + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
    write_json(tmp + "/adapter_config.json", cj);
    staged.commit();
    std::string targets = cj.contains("target_modules") ? cj["target_modules"].dump() : "";
    std::printf("ladder export: %s (step %lld, %s%s) -> %s: PEFT %s adapter, targets %s, %zu tensors\n", path.c_str(),
                (long long)ck.step, cfg.method.c_str(),
                sm ? (" at " + subs.unit + " " + std::to_string(sub_size)).c_str() : "", output.c_str(),
                cj.value("peft_type", std::string("?")).c_str(), targets.c_str(), tensors.size());
    if (sm) jm[subs.unit] = sub_size;
    else if (cj.contains("r")) jm["rank"] = cj["r"];
    jm["target_modules"] = cj["target_modules"];
  } else {
    for (auto& m : rm.methods) {
      if (!m->mergeable())
        throw std::runtime_error("--format merged: method '" + m->name() +
                                 "' cannot be folded into the backbone weights; "
                                 "use the checkpoint with ladder eval instead");
    }
    for (auto& m : rm.methods)
      if (m->mergeable()) m->merge();
    // Every backbone weight the base checkpoint has (under the task-model prefix), then the head. Method
    // parameters (lora_A, krona_B, ...) now live inside the merged weights and are left out.
    const auto base = core::SafetensorsCheckpoint::open_dir(cfg.model_dir);
    size_t n_backbone = 0;
    for (auto& p : bb.params().all()) {
      if (is_head(p->name)) continue;
      const bool in_base = base.has(p->name) || base.has(backbone_prefix + p->name);
      if (!in_base) continue;
      tensors.emplace_back(backbone_prefix + p->name, p->value);
      ++n_backbone;
    }
    for (auto& p : bb.params().all())
      if (is_head(p->name)) tensors.emplace_back(p->name, p->value);
    if (n_backbone == 0) throw std::runtime_error(cfg.model_dir + ": no backbone weight matched the base checkpoint's names");

    json cj;
    {
      std::ifstream in(cfg.model_dir + "/config.json");
      if (!in) throw std::runtime_error(cfg.model_dir + "/config.json: cannot open");
      cj = json::parse(in);
    }
    const int L = lm ? 0 : rm.head->num_labels();
    json id2label = json::object(), label2id = json::object();
    for (int k = 0; k < L; ++k) {
      const std::string name = size_t(k) < info.label_names.size() ? info.label_names[size_t(k)] : "LABEL_" + std::to_string(k);
      id2label[std::to_string(k)] = name;
      label2id[name] = k;
    }
    if (!lm) {
      cj["architectures"] = json::array({layout.hf_class});
      cj["id2label"] = id2label;
      cj["label2id"] = label2id;
      cj["num_labels"] = L;
      cj["problem_type"] = rm.head->regression() ? "regression" : "single_label_classification";
    }
    if (!lm && !layout.from_pooler && (!cj.contains("pad_token_id") || cj["pad_token_id"].is_null())) {
      // A last-token head: HF finds the last real token from pad_token_id, and ladder pads with its
      // tokenizer's pad id (GPT-2: end-of-text).
      try {
        cj["pad_token_id"] = data::TextEncoder::for_model(cfg.model_dir, bb.config().arch).pad_id();
      } catch (const std::exception&) {
        if (cj.contains("eos_token_id")) cj["pad_token_id"] = cj["eos_token_id"];
      }
    }
    cj["finetuning_task"] = lm ? std::string("lm") : info.name;
    cj["ladder_export"] = {{"checkpoint", path}, {"step", ck.step}, {"method", cfg.method}};
    if (sm) cj["ladder_export"][sm->name() + "_" + subs.unit] = sub_size;

    core::write_safetensors(tmp + "/model.safetensors", tensors, {{"format", "pt"}});
    write_json(tmp + "/config.json", cj);
    std::vector<std::string> copied;
    copy_tokenizer_files(cfg.model_dir, tmp, copied);
    staged.commit();
    std::printf("ladder export: %s (step %lld, %s%s) -> %s: %s with %zu tensors (%zu backbone + head), tokenizer files: %s\n",
                path.c_str(), (long long)ck.step, cfg.method.c_str(), sm ? (" merged at " + subs.unit + " " + std::to_string(sub_size)).c_str() : " merged",
                output.c_str(), cj["architectures"][0].get<std::string>().c_str(), tensors.size(), n_backbone,
                copied.empty() ? "none" : join(copied).c_str());
    jm["tensors"] = tensors.size();
    jm["tokenizer_files"] = copied;
    if (sm) jm[subs.unit] = sub_size;
  }
  report.write(report_path);
  return 0;
}

}  // namespace ladder::apps
