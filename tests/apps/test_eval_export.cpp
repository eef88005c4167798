// `ladder eval` and `ladder export` on tiny runs trained here (a 2-layer BERT with a 50-word vocabulary and a
// made-up SST-2-style task): eval reproduces the training's final evaluation, DyLoRA evaluates at every rank,
// the PEFT adapter has PEFT's tensor names and shapes and a config that parses, the merged directory loads
// back with ladder's own loader and gives the LoRA model's hidden states, and the errors are clear.
#include <gtest/gtest.h>

#include "tests/support/error_of.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>
#include <unistd.h>

#include "apps/commands.h"
#include "apps/train/run_model.h"
#include "apps/train/train_config.h"
#include "core/backbones/backbone.h"
#include "core/io/checkpoint.h"
#include "core/io/safetensors.h"
#include "data/padded_batch.h"
#include "data/text_encoder.h"
#include "tests/support/tiny_models.h"
#include "tests/support/tiny_run.h"

namespace {

namespace fs = std::filesystem;
namespace core = ladder::core;
namespace apps = ladder::apps;
using nlohmann::json;

using ladder::test::error_of;

json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  return json::parse(in);
}

using ladder::test::TinySetup;

const TinySetup& setup() {
  static TinySetup s("eval_export");
  return s;
}

const std::string& lora_run() {
  static std::string dir = setup().train("lora_run", "lora", 12);
  return dir;
}

int run_quiet(const std::function<int()>& f, std::string* out = nullptr) {
  testing::internal::CaptureStdout();
  int rc = -1;
  try {
    rc = f();
  } catch (...) {
    testing::internal::GetCapturedStdout();
    throw;
  }
  const std::string o = testing::internal::GetCapturedStdout();
  if (out) *out = o;
  return rc;
}

TEST(EvalCommand, ReproducesTheTrainingsFinalEvaluation) {
  const std::string run = lora_run();
  const json train_report = read_json(run + "/report.json");
  const double acc = train_report["metrics"]["final_eval"]["accuracy"].get<double>();
  const core::CheckpointData ck = core::read_checkpoint(run + "/checkpoints/best.h5");
  ASSERT_FALSE(ck.metrics.at("eval_loss").empty());
  const double loss = ck.metrics.at("eval_loss").back();

  // The run directory (latest), the checkpoint folder with --pick best, and the file itself agree.
  const std::string rep = setup().root + "/eval_report.json";
  for (const std::vector<std::string>& which :
       {std::vector<std::string>{"--checkpoint", run}, {"--checkpoint", run + "/checkpoints", "--pick", "best"},
        {"--checkpoint", run + "/checkpoints/best.h5"}}) {
    std::vector<std::string> args = which;
    args.insert(args.end(), {"--report", rep, "--threads", "2"});
    std::string out;
    ASSERT_EQ(run_quiet([&] { return apps::eval_command(args); }, &out), 0);
    const json r = read_json(rep);
    EXPECT_DOUBLE_EQ(r["metrics"]["dev"]["accuracy"].get<double>(), acc) << out;
    EXPECT_NEAR(r["metrics"]["dev"]["loss"].get<double>(), loss, 1e-6) << out;
    EXPECT_EQ(r["metrics"]["dev"]["examples"].get<int>(), 24);
    EXPECT_NE(out.find("dev"), std::string::npos) << out;
    if (which.size() == 2 && which[1] == run) {
      EXPECT_NE(out.find("using the latest checkpoint"), std::string::npos) << out;
    }
  }
}

TEST(EvalCommand, OverridesMaxExamplesAndDumpsLogits) {
  const std::string run = lora_run();
  const std::string rep = setup().root + "/eval_small.json", dump = setup().root + "/logits.json";
  ASSERT_EQ(run_quiet([&] {
              return apps::eval_command({"--checkpoint", run, "--max-eval-examples", "5", "--dump-logits", dump,
                                         "--report", rep, "--task.data_dir", setup().data});
            }),
            0);
  EXPECT_EQ(read_json(rep)["metrics"]["dev"]["examples"].get<int>(), 5);
  const json d = read_json(dump);
  ASSERT_EQ(d["examples"].size(), 5u);
  EXPECT_EQ(d["num_labels"].get<int>(), 2);
  for (auto& e : d["examples"]) {
    EXPECT_EQ(e["logits"].size(), 2u);
    EXPECT_EQ(e["input_ids"][0].get<int>(), 2);  // [CLS]
    EXPECT_TRUE(e.contains("text_a"));
  }
  // Eval options and config keys that do not exist are named.
  EXPECT_NE(error_of([&] { apps::eval_command({"--checkpoint", run, "--rank", "2"}); }).find("--ranks"), std::string::npos);
  EXPECT_NE(error_of([&] { run_quiet([&] { return apps::eval_command({"--checkpoint", run, "--task.data_dri", "x"}); }); })
                .find("task.data_dir"),
            std::string::npos);
  EXPECT_NE(error_of([&] { run_quiet([&] { return apps::eval_command({"--checkpoint", run, "--ranks", "all"}); }); })
                .find("needs a checkpoint of a method that trains sub-models"),
            std::string::npos);
}

TEST(EvalCommand, DyLoraEveryRankFromOneCheckpoint) {
  const std::string run = setup().train("dylora_run", "dylora", 4, {"--eval.all_ranks", "false"});
  const std::string rep = setup().root + "/eval_dylora.json";
  std::string out;
  ASSERT_EQ(run_quiet([&] { return apps::eval_command({"--checkpoint", run, "--ranks", "all", "--report", rep}); }, &out), 0);
  const json r = read_json(rep)["metrics"];
  ASSERT_TRUE(r.contains("ranks")) << r.dump();
  for (int b = 1; b <= 4; ++b) EXPECT_TRUE(r["ranks"].contains(std::to_string(b))) << r.dump();
  EXPECT_NE(out.find("rank"), std::string::npos);
  ASSERT_EQ(run_quiet([&] { return apps::eval_command({"--checkpoint", run, "--ranks", "1,3", "--report", rep}); }), 0);
  EXPECT_EQ(read_json(rep)["metrics"]["ranks"].size(), 2u);
  EXPECT_NE(error_of([&] { run_quiet([&] { return apps::eval_command({"--checkpoint", run, "--ranks", "5"}); }); }).find("1..4"),
            std::string::npos);

  // DyLoRA exports to PEFT as a rank-b LoRA with the same alpha.
  const std::string out_dir = setup().root + "/dylora_peft";
  ASSERT_EQ(run_quiet([&] {
              return apps::export_command({"--checkpoint", run, "--format", "peft", "--output", out_dir, "--rank", "2"});
            }),
            0);
  auto st = core::SafetensorsFile::open(out_dir + "/adapter_model.safetensors");
  EXPECT_EQ(st->entry("base_model.model.bert.encoder.layer.1.attention.self.value.lora_A.weight").shape, (core::Shape{2, 16}));
  EXPECT_EQ(st->entry("base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight").shape, (core::Shape{16, 2}));
  EXPECT_EQ(read_json(out_dir + "/adapter_config.json")["r"].get<int>(), 2);
}

TEST(ExportCommand, PeftAdapterHasPeftNamesShapesAndConfig) {
  const std::string run = lora_run();
  const std::string out = setup().root + "/peft";
  ASSERT_EQ(run_quiet([&] { return apps::export_command({"--checkpoint", run, "--format", "peft", "--output", out}); }), 0);
  EXPECT_FALSE(fs::exists(out + ".tmp-" + std::to_string(::getpid())));
  auto st = core::SafetensorsFile::open(out + "/adapter_model.safetensors");
  std::vector<std::string> want;
  for (int l = 0; l < 2; ++l)
    for (const char* m : {"query", "value"})
      for (const char* ab : {"lora_A", "lora_B"})
        want.push_back("base_model.model.bert.encoder.layer." + std::to_string(l) + ".attention.self." + m + "." + ab + ".weight");
  want.push_back("base_model.model.classifier.bias");
  want.push_back("base_model.model.classifier.weight");
  std::sort(want.begin(), want.end());
  auto names = st->names();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, want);
  const core::CheckpointData ck = core::read_checkpoint(run + "/checkpoints/best.h5");
  for (auto& [name, t] : ck.params) {
    std::string key = "base_model.model." +
                      (name.rfind("classifier", 0) == 0 ? name : "bert." + name + ".weight");
    ASSERT_TRUE(st->has(key)) << key;
    EXPECT_EQ(st->entry(key).shape, t.shape()) << key;
    EXPECT_EQ(st->entry(key).st_dtype, "F32");
    EXPECT_EQ(st->tensor(key, core::MemCategory::workspace).to_floats(), t.to_floats()) << key;
  }
  EXPECT_EQ(st->entry("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight").shape, (core::Shape{4, 16}));
  EXPECT_EQ(st->entry("base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.weight").shape, (core::Shape{16, 4}));
  EXPECT_EQ(st->entry("base_model.model.classifier.weight").shape, (core::Shape{2, 16}));

  const json c = read_json(out + "/adapter_config.json");
  EXPECT_EQ(c["peft_type"], "LORA");
  EXPECT_EQ(c["task_type"], "SEQ_CLS");
  EXPECT_EQ(c["r"].get<int>(), 4);
  EXPECT_DOUBLE_EQ(c["lora_alpha"].get<double>(), 8.0);
  EXPECT_EQ(c["target_modules"], json::array({"query", "value"}));
  EXPECT_EQ(c["fan_in_fan_out"], false);
  EXPECT_EQ(c["bias"], "none");
  EXPECT_EQ(c["modules_to_save"], json::array({"classifier"}));
  EXPECT_EQ(fs::path(c["base_model_name_or_path"].get<std::string>()), fs::absolute(setup().model).lexically_normal());

  // A second export into the same, now non-empty, directory needs --overwrite.
  EXPECT_NE(error_of([&] { run_quiet([&] { return apps::export_command({"--checkpoint", run, "--format", "peft", "--output", out}); }); })
                .find("--overwrite"),
            std::string::npos);
  EXPECT_EQ(run_quiet([&] {
              return apps::export_command({"--checkpoint", run, "--format", "peft", "--output", out, "--overwrite"});
            }),
            0);
}

// Hidden states of every layer for the dev sentences, from a backbone.
std::vector<std::vector<float>> hidden_states(core::Backbone& bb, const std::string& model_dir) {
  auto tok = ladder::data::TextEncoder::for_model(model_dir, bb.config().arch);
  std::vector<ladder::data::Encoding> enc;
  for (const char* s : {"the film was good", "a very boring and awful story", "this movie is lovely fun"})
    enc.push_back(tok.encode(s, nullptr, 16));
  ladder::data::PaddedBatch batch;
  ladder::data::pad_batch(batch, enc, {0, 1, 2}, tok.pad_id());
  core::StepOptions opt;
  opt.keep_hidden_states = true;
  bb.forward(batch.view(), opt);
  std::vector<std::vector<float>> out;
  for (int i = 0; i <= bb.config().layers; ++i) out.push_back(bb.hidden_state(i).to_floats());
  return out;
}

TEST(ExportCommand, MergedDirectoryLoadsBackWithTheLoraModelsHiddenStates) {
  const std::string run = lora_run();
  const std::string out = setup().root + "/merged";
  ASSERT_EQ(run_quiet([&] { return apps::export_command({"--checkpoint", run, "--format", "merged", "--output", out}); }), 0);
  for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;

  const json c = read_json(out + "/config.json");
  EXPECT_EQ(c["architectures"], json::array({"BertForSequenceClassification"}));
  EXPECT_EQ(c["num_labels"].get<int>(), 2);
  EXPECT_EQ(c["id2label"]["0"], "negative");
  EXPECT_EQ(c["id2label"]["1"], "positive");
  EXPECT_EQ(c["label2id"]["positive"].get<int>(), 1);
  EXPECT_EQ(c["problem_type"], "single_label_classification");
  EXPECT_EQ(c["model_type"], "bert");

  auto st = core::SafetensorsFile::open(out + "/model.safetensors");
  for (auto& n : st->names()) {
    EXPECT_EQ(n.find("lora"), std::string::npos) << n;
    EXPECT_TRUE(n.rfind("bert.", 0) == 0 || n.rfind("classifier.", 0) == 0) << n;
  }
  EXPECT_TRUE(st->has("bert.pooler.dense.weight"));
  EXPECT_TRUE(st->has("bert.embeddings.word_embeddings.weight"));

  // The LoRA model as eval builds it from the checkpoint.
  const core::CheckpointData ck = core::read_checkpoint(run + "/checkpoints/best.h5");
  apps::TrainConfig cfg;
  apps::parse_train_config({}, cfg, &ck.config);
  apps::RunModel rm = apps::build_run_model(cfg);
  apps::load_trainable_params(rm, ck, "best.h5");
  const auto want = hidden_states(*rm.backbone, setup().model);
  for (auto& [name, t] : ck.params) {
    if (name.rfind("classifier", 0) == 0) {
      EXPECT_EQ(st->tensor(name, core::MemCategory::workspace).to_floats(), t.to_floats()) << name;
    }
  }

  auto merged = core::load_backbone(out);
  const auto got = hidden_states(*merged, out);
  ASSERT_EQ(got.size(), want.size());
  double max_diff = 0;
  for (size_t l = 0; l < got.size(); ++l) {
    ASSERT_EQ(got[l].size(), want[l].size());
    for (size_t i = 0; i < got[l].size(); ++i) max_diff = std::max(max_diff, double(std::fabs(got[l][i] - want[l][i])));
  }
  EXPECT_LE(max_diff, 1e-5);
  // And the LoRA delta is really in the weights: the base model differs.
  auto base = core::load_backbone(setup().model);
  const auto plain = hidden_states(*base, setup().model);
  double base_diff = 0;
  for (size_t i = 0; i < plain.back().size(); ++i) base_diff = std::max(base_diff, double(std::fabs(plain.back()[i] - want.back()[i])));
  EXPECT_GT(base_diff, 1e-4);
}

// GPT-2: LoRA on the fused attn.c_attn (a Conv1D, [in, out]): PEFT names under "transformer.", fan_in_fan_out,
// the "score" head; the merged directory loads back with the LoRA model's hidden states. The checkpoint is
// written here from a run model with random LoRA values (no GPT-2 tokenizer is needed for export).
TEST(ExportCommand, Gpt2LoraPeftAndMerged) {
  const std::string root = ladder::test::temp_dir("export_gpt2");
  const std::string model = root + "/model";
  fs::create_directories(model);
  ladder::test::write_tiny_gpt2(model, 11);
  const std::string ini = "[model]\ndir = " + model +
                          "\n[task]\nname = sst2\nmax_length = 16\ndata_dir = " + root +
                          "\n[method]\nname = lora\nlora_r = 2\nlora_alpha = 4\nlora_targets = qkv,attention_output\n"
                          "[train]\nmax_steps = 1\n";
  apps::TrainConfig cfg;
  apps::parse_train_config({}, cfg, &ini);
  apps::RunModel rm = apps::build_run_model(cfg);
  core::CheckpointData ck;
  ck.step = 1;
  ck.config = cfg.effective_ini;
  ck.method = "lora";
  std::mt19937 g(5);
  std::normal_distribution<float> n(0.0f, 0.2f);
  for (auto* p : rm.backbone->params().trainable()) {
    std::vector<float> v(size_t(p->value.numel()));
    for (auto& x : v) x = n(g);
    p->value.copy_from(core::Tensor::from_floats(v, p->value.shape(), core::MemCategory::workspace));
    ck.params.emplace_back(p->name, p->value);
  }
  const std::string ckpt = root + "/step-00000001.h5";
  core::write_checkpoint(ckpt, ck);

  const std::string peft = root + "/peft", merged = root + "/merged";
  ASSERT_EQ(run_quiet([&] { return apps::export_command({"--checkpoint", ckpt, "--format", "peft", "--output", peft}); }), 0);
  ASSERT_EQ(run_quiet([&] { return apps::export_command({"--checkpoint", ckpt, "--format", "merged", "--output", merged}); }), 0);

  auto st = core::SafetensorsFile::open(peft + "/adapter_model.safetensors");
  EXPECT_EQ(st->entry("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight").shape, (core::Shape{2, 16}));
  EXPECT_EQ(st->entry("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight").shape, (core::Shape{48, 2}));
  EXPECT_EQ(st->entry("base_model.model.transformer.h.1.attn.c_proj.lora_B.weight").shape, (core::Shape{16, 2}));
  EXPECT_EQ(st->entry("base_model.model.score.weight").shape, (core::Shape{2, 16}));
  EXPECT_EQ(st->names().size(), 9u);
  const json c = read_json(peft + "/adapter_config.json");
  EXPECT_EQ(c["fan_in_fan_out"], true);
  EXPECT_EQ(c["modules_to_save"], json::array({"score"}));
  // "c_proj" alone would also match mlp.c_proj: the attention one is named by a longer suffix.
  EXPECT_EQ(c["target_modules"], json::array({"attn.c_proj", "c_attn"}));

  const json mc = read_json(merged + "/config.json");
  EXPECT_EQ(mc["architectures"], json::array({"GPT2ForSequenceClassification"}));
  auto ms = core::SafetensorsFile::open(merged + "/model.safetensors");
  EXPECT_TRUE(ms->has("transformer.h.0.attn.c_attn.weight"));
  EXPECT_TRUE(ms->has("transformer.wte.weight"));
  EXPECT_TRUE(ms->has("score.weight"));

  std::vector<int32_t> ids = {3, 17, 42, 5, 9, 1, 30, 8};
  core::TokenBatch tb{2, 4, ids.data(), nullptr, nullptr};
  core::StepOptions opt;
  rm.backbone->forward(tb, opt);
  const auto want = rm.backbone->last_hidden().to_floats();
  auto back = core::load_backbone(merged);
  back->forward(tb, opt);
  const auto got = back->last_hidden().to_floats();
  ASSERT_EQ(got.size(), want.size());
  double max_diff = 0;
  for (size_t i = 0; i < got.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(got[i] - want[i])));
  EXPECT_LE(max_diff, 1e-5);
}

TEST(ExportCommand, BitFitMergesAsItsBiases) {
  const std::string run = setup().train("bitfit_run", "bitfit", 2);
  const std::string out = setup().root + "/bitfit_merged";
  ASSERT_EQ(run_quiet([&] { return apps::export_command({"--checkpoint", run, "--format", "merged", "--output", out}); }), 0);
  const core::CheckpointData ck = core::read_checkpoint(run + "/checkpoints/best.h5");
  auto st = core::SafetensorsFile::open(out + "/model.safetensors");
  for (auto& [name, t] : ck.params) {
    const std::string key = name.rfind("classifier", 0) == 0 ? name : "bert." + name;
    ASSERT_TRUE(st->has(key)) << key;
    EXPECT_EQ(st->tensor(key, core::MemCategory::workspace).to_floats(), t.to_floats()) << key;
  }
  EXPECT_NE(error_of([&] { run_quiet([&] { return apps::export_command({"--checkpoint", run, "--format", "peft", "--output", out + "2"}); }); })
                .find("'bitfit'"),
            std::string::npos);
}

TEST(ExportCommand, ClearErrors) {
  const std::string run = setup().train("houlsby_run", "houlsby", 1);
  const std::string out = setup().root + "/houlsby_out";
  const std::string merged_err = error_of([&] {
    run_quiet([&] { return apps::export_command({"--checkpoint", run, "--format", "merged", "--output", out}); });
  });
  EXPECT_NE(merged_err.find("'houlsby'"), std::string::npos) << merged_err;
  EXPECT_NE(merged_err.find("cannot be folded"), std::string::npos) << merged_err;
  EXPECT_FALSE(fs::exists(out));  // nothing left behind, not even the temporary directory
  for (auto& e : fs::directory_iterator(setup().root)) EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos);

  const std::string peft_err = error_of([&] {
    run_quiet([&] { return apps::export_command({"--checkpoint", run, "--format", "peft", "--output", out}); });
  });
  EXPECT_NE(peft_err.find("LoRA"), std::string::npos) << peft_err;
  EXPECT_NE(peft_err.find("'houlsby'"), std::string::npos) << peft_err;

  const std::string missing = setup().root + "/no_such_run/step-00000001.h5";
  EXPECT_NE(error_of([&] { apps::export_command({"--checkpoint", missing, "--format", "merged", "--output", out}); })
                .find("does not exist"),
            std::string::npos);
  EXPECT_NE(error_of([&] { apps::eval_command({"--checkpoint", missing}); }).find(missing), std::string::npos);
  fs::create_directories(setup().root + "/empty_run");
  EXPECT_NE(error_of([&] { apps::eval_command({"--checkpoint", setup().root + "/empty_run"}); }).find("no checkpoint"),
            std::string::npos);
  EXPECT_NE(error_of([&] { apps::export_command({"--checkpoint", run, "--format", "onnx", "--output", out}); }).find("peft"),
            std::string::npos);
}

}  // namespace

// Ladder Side-Tuning end to end: only the side network and the head train (the checkpoint holds nothing
// of the backbone), `ladder eval` reproduces the training's final evaluation, and a merged export is
// refused with the reason.
TEST(EvalCommand, LstTrainsOnlyTheSideNetworkAndEvaluates) {
  const std::string run = setup().train("lst_run", "lst", 12, {"--method.lst_layers", "1"});
  const json train_report = read_json(run + "/report.json");
  const core::CheckpointData ck = core::read_checkpoint(run + "/checkpoints/best.h5");
  size_t side = 0;
  for (const auto& [name, t] : ck.params) {
    const bool ok = name.rfind("side.", 0) == 0 || name.rfind("classifier.", 0) == 0;
    EXPECT_TRUE(ok) << name;
    side += name.rfind("side.layer.", 0) == 0;
  }
  EXPECT_GT(side, 0u);
  EXPECT_NE(std::find_if(ck.params.begin(), ck.params.end(), [](auto& p) { return p.first == "side.layer.1.output.dense.weight"; }),
            ck.params.end());
  EXPECT_EQ(std::find_if(ck.params.begin(), ck.params.end(), [](auto& p) { return p.first == "side.layer.0.output.dense.weight"; }),
            ck.params.end());
  const std::string rep = setup().root + "/lst_eval.json";
  ASSERT_EQ(run_quiet([&] { return apps::eval_command({"--checkpoint", run, "--report", rep, "--threads", "2"}); }), 0);
  EXPECT_DOUBLE_EQ(read_json(rep)["metrics"]["dev"]["accuracy"].get<double>(),
                   train_report["metrics"]["final_eval"]["accuracy"].get<double>());
  EXPECT_NE(error_of([&] {
              run_quiet([&] {
                return apps::export_command({"--checkpoint", run, "--format", "merged", "--output", setup().root + "/lst_merged"});
              });
            }).find("side network"),
            std::string::npos);
}
