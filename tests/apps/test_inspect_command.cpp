// `ladder inspect`: the printed summary and the JSON report of a small checkpoint, the checkpoint given as a
// bare argument or --checkpoint, and clear errors for files that are not checkpoints.
#include <gtest/gtest.h>

#include "tests/support/error_of.h"

#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "core/io/checkpoint.h"
#include "core/io/hdf5_file.h"
#include "tests/support/tiny_models.h"

namespace {

namespace core = ladder::core;
using ladder::apps::inspect_command;
using ladder::test::temp_dir;

using ladder::test::error_of;

// Two LoRA matrices with known norms (3-4-5), AdamW state, three metric series.
std::string write_small_checkpoint(const std::string& dir) {
  core::CheckpointData d;
  d.step = 250;
  d.epoch = 2;
  d.samples_seen = 8000;
  d.config = "[train]\nlr = 0.0002\n\n[method]\nname = lora\nrank = 2\n";
  d.method = "lora";
  d.dp = 2;
  d.tp = 1;
  d.backbone_id = "prajjwal1/bert-tiny";
  d.backbone_hash = "sha256:feedbeef";
  auto cat = core::MemCategory::workspace;
  d.params = {{"encoder.layer.0.attention.self.query.lora_A", core::Tensor::from_floats({3, 0, 0, 4}, {2, 2}, cat)},
              {"encoder.layer.0.attention.self.query.lora_B", core::Tensor::from_floats({1, 1, 1, 1, 1, 1}, {3, 2}, cat)}};
  d.optimizer = {{"encoder.layer.0.attention.self.query.lora_A/exp_avg", core::Tensor::zeros({2, 2}, core::DType::f32, cat)},
                 {"encoder.layer.0.attention.self.query.lora_A/exp_avg_sq", core::Tensor::zeros({2, 2}, core::DType::f32, cat)},
                 {"encoder.layer.0.attention.self.query.lora_B/exp_avg", core::Tensor::zeros({3, 2}, core::DType::f32, cat)},
                 {"encoder.layer.0.attention.self.query.lora_B/exp_avg_sq", core::Tensor::zeros({3, 2}, core::DType::f32, cat)}};
  d.metrics = {{"loss", {0.9, 0.4, 0.5}}, {"eval_accuracy", {0.6, 0.8, 0.7}}, {"lr", {2e-4, 1e-4, 5e-5}}};
  d.rng = {{"dropout", {1, 2, 3}}};
  d.sampler = {{"position", {8000}}};
  d.extra_attrs = {{"best_metric", "0.8"}};
  const std::string path = dir + "/step-00000250.h5";
  core::write_checkpoint(path, d);
  return path;
}

TEST(InspectCommand, PrintsEverySectionAndWritesTheReport) {
  const std::string dir = temp_dir("inspect_small");
  const std::string ckpt = write_small_checkpoint(dir);
  const std::string report = dir + "/report.json";
  testing::internal::CaptureStdout();
  const int rc = inspect_command({ckpt, "--report", report});
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc, 0) << out;
  for (const char* s : {"ladder-checkpoint (version 1)", "step          250", "epoch         2",
                        "samples seen  8000", "method        lora", "layout        dp=2,tp=1",
                        "backbone      prajjwal1/bert-tiny (hash sha256:feedbeef)", "best_metric   0.8",
                        "parameters (2 tensors)", "encoder.layer.0.attention.self.query.lora_A", "[2, 2]", "[3, 2]",
                        "total trainable parameters: 10", "optimizer state: exp_avg, exp_avg_sq (4 tensors over 2 parameters",
                        "rng state: 1 streams; sampler state: 1 entries", "config:", "  | [method]", "  | rank = 2"})
    EXPECT_NE(out.find(s), std::string::npos) << "missing '" << s << "' in:\n" << out;
  // L2 norms: |[3,0,0,4]| = 5, |ones(6)| = sqrt(6).
  EXPECT_NE(out.find(" 5\n"), std::string::npos) << out;
  EXPECT_NE(out.find("2.44949"), std::string::npos) << out;
  // Metric rows: loss is best at its minimum, accuracy at its maximum, lr has no best.
  EXPECT_NE(out.find("0.4 (min, at index 1)"), std::string::npos) << out;
  EXPECT_NE(out.find("0.8 (max, at index 1)"), std::string::npos) << out;

  std::ifstream in(report);
  ASSERT_TRUE(in) << report;
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["command"], "inspect");
  const auto& c = j["checkpoint"];
  EXPECT_EQ(c["format"], "ladder-checkpoint");
  EXPECT_EQ(c["version"], 1);
  EXPECT_EQ(c["step"], 250);
  EXPECT_EQ(c["epoch"], 2);
  EXPECT_EQ(c["samples_seen"], 8000);
  EXPECT_EQ(c["method"], "lora");
  EXPECT_EQ(c["dp"], 2);
  EXPECT_EQ(c["tp"], 1);
  EXPECT_EQ(c["backbone_id"], "prajjwal1/bert-tiny");
  EXPECT_EQ(c["backbone_hash"], "sha256:feedbeef");
  EXPECT_EQ(c["config"], "[train]\nlr = 0.0002\n\n[method]\nname = lora\nrank = 2\n");
  EXPECT_EQ(c["extra_attrs"]["best_metric"], "0.8");
  EXPECT_EQ(c["trainable_parameters"], 10);
  EXPECT_EQ(j["metrics"]["trainable_parameters"], 10);
  ASSERT_EQ(c["params"].size(), 2u);
  EXPECT_EQ(c["params"][0]["name"], "encoder.layer.0.attention.self.query.lora_A");
  EXPECT_EQ(c["params"][0]["shape"], nlohmann::json::array({2, 2}));
  EXPECT_EQ(c["params"][0]["count"], 4);
  EXPECT_NEAR(c["params"][0]["l2_norm"].get<double>(), 5.0, 1e-12);
  EXPECT_NEAR(c["params"][1]["l2_norm"].get<double>(), std::sqrt(6.0), 1e-6);
  EXPECT_EQ(c["optimizer_states"], nlohmann::json::array({"exp_avg", "exp_avg_sq"}));
  EXPECT_EQ(c["optimizer"].size(), 4u);
  ASSERT_EQ(c["metrics"].size(), 3u);
  for (const auto& m : c["metrics"]) {
    EXPECT_EQ(m["length"], 3);
    if (m["name"] == "loss") {
      EXPECT_EQ(m["last"], 0.5);
      EXPECT_EQ(m["best"], 0.4);
      EXPECT_EQ(m["best_is"], "min");
    } else if (m["name"] == "eval_accuracy") {
      EXPECT_EQ(m["best"], 0.8);
      EXPECT_EQ(m["best_index"], 1);
    } else {
      EXPECT_EQ(m["name"], "lr");
      EXPECT_FALSE(m.contains("best"));
      EXPECT_EQ(m["last"], 5e-5);
    }
  }
  EXPECT_TRUE(j.contains("memory"));

  // --checkpoint works too, and needs no report.
  testing::internal::CaptureStdout();
  EXPECT_EQ(inspect_command({"--checkpoint", ckpt}), 0);
  EXPECT_NE(testing::internal::GetCapturedStdout().find("step          250"), std::string::npos);
}

TEST(InspectCommand, NonCheckpointsAreClearErrors) {
  const std::string dir = temp_dir("inspect_bad");
  const std::string missing = dir + "/nope.h5";
  std::string e = error_of([&] { inspect_command({missing}); });
  EXPECT_NE(e.find(missing), std::string::npos) << e;
  EXPECT_NE(e.find("no such"), std::string::npos) << e;

  const std::string text = dir + "/notes.txt";
  std::ofstream(text) << "hello\n";
  e = error_of([&] { inspect_command({text}); });
  EXPECT_NE(e.find(text), std::string::npos) << e;
  EXPECT_NE(e.find("not a readable HDF5 file"), std::string::npos) << e;

  const std::string enc = dir + "/encodings.h5";
  {
    auto f = core::Hdf5File::create(enc);
    f.set_attr("format", std::string("ladder-encodings"));
    f.set_attr("version", int64_t(1));
    f.commit();
  }
  e = error_of([&] { inspect_command({enc}); });
  EXPECT_NE(e.find(enc), std::string::npos) << e;
  EXPECT_NE(e.find("not a ladder checkpoint"), std::string::npos) << e;

  e = error_of([&] { inspect_command({}); });
  EXPECT_NE(e.find("checkpoint"), std::string::npos) << e;
  e = error_of([&] { inspect_command({enc, "--repot", "x.json"}); });
  EXPECT_NE(e.find("--report"), std::string::npos) << e;
}

}  // namespace
