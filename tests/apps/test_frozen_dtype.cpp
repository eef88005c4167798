// model.frozen_dtype: a run whose frozen Linear weights are held in bf16 trains, its memory table counts
// exactly half of those weights' f32 bytes less, its loss stays within bf16 rounding of the f32 run's, and
// a dtype no weight view reads is an error naming the key.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/backbones/backbone.h"
#include "tests/support/error_of.h"
#include "tests/support/tiny_run.h"

namespace {

using namespace ladder;

nlohmann::json report_of(const std::string& dir) {
  std::ifstream in(dir + "/report.json");
  return nlohmann::json::parse(in);
}

int64_t frozen_bytes(const nlohmann::json& r) {
  for (const auto& m : r.at("memory"))
    if (m.at("category") == "frozen weights") return m.at("current_bytes").get<int64_t>();
  ADD_FAILURE() << "no frozen weights in the memory table";
  return 0;
}

}  // namespace

TEST(FrozenDtype, Bf16LinearsTrainInHalfTheirMemory) {
  const test::TinySetup s("frozen_dtype");
  const std::string f32 = s.train("f32", "lora", 6);
  const std::string bf16 = s.train("bf16", "lora", 6, {"--model.frozen_dtype", "bf16"});
  // The frozen Linear weights of this model (LoRA keeps every base weight frozen).
  int64_t linear_values = 0;
  const auto backbone = core::load_backbone(s.model);
  for (auto& [name, lin] : backbone->linear_modules()) linear_values += lin->weight->value.numel();
  const nlohmann::json a = report_of(f32), b = report_of(bf16);
  EXPECT_EQ(frozen_bytes(a) - frozen_bytes(b), linear_values * 2);
  const auto la = a["metrics"]["loss_series"].get<std::vector<double>>(), lb = b["metrics"]["loss_series"].get<std::vector<double>>();
  ASSERT_EQ(la.size(), 6u);
  ASSERT_EQ(lb.size(), 6u);
  // bf16 keeps 8 significant bits (relative rounding <= 2^-9 per weight): the first loss, before any update,
  // moves by far less than 1%.
  EXPECT_NEAR(la[0], lb[0], 1e-2 * la[0]);
  for (double x : lb) EXPECT_TRUE(std::isfinite(x));
}

TEST(FrozenDtype, AnUnreadableDtypeIsAnErrorNamingTheKey) {
  const test::TinySetup s("frozen_dtype_bad");
  const std::string msg = test::error_of([&] {
    apps::train_command(s.train_args(s.root + "/bad", "lora", 1, {"--model.frozen_dtype", "i8"}));
  });
  EXPECT_NE(msg.find("model.frozen_dtype 'i8'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("f32, bf16 or f16"), std::string::npos) << msg;
}
