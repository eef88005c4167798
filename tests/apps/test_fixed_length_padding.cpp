// task.pad_to_max_length: `ladder train` pads every training and evaluation batch to task.max_length, so a
// memory figure measured "at max length 128" is one; off (the default), batches pad to their longest row.
// Real all-MiniLM-L6-v2 on real SST-2 rows (none near 128 tokens), one step each way.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/train/train_config.h"
#include "tests/support/test_paths.h"

namespace {

using namespace ladder;

// Peak bytes of a CPU memory category in the run's report.
double peak_of(const nlohmann::json& report, const std::string& category) {
  for (const auto& row : report.at("memory"))
    if (row.at("device") == "cpu" && row.at("category") == category) return row.at("peak_bytes").get<double>();
  return 0;
}

nlohmann::json train_once(const std::string& dir, bool pad_to_max) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string cmd = std::string(LADDER_BINARY) + " train";
  const std::vector<std::string> args = {
       "--model.dir", test::minilm_dir(), "--task.name", "sst2", "--task.data_dir", test::shared_dir() + "/data/glue/SST-2",
        "--task.max_length", "128", "--task.pad_to_max_length", pad_to_max ? "true" : "false",
        "--task.max_train_examples", "64", "--task.max_eval_examples", "8", "--method.name", "full",
        "--train.batch_size", "4", "--train.max_steps", "1", "--train.threads", "1", "--checkpoint.dir", dir,
        "--checkpoint.resume", "false"};
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " > '" + dir + "/log.txt' 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << cmd;
  std::ifstream in(dir + "/report.json");
  nlohmann::json r;
  in >> r;
  return r;
}

TEST(FixedLengthPadding, OptionParsesAndDefaultsOff) {
  apps::TrainConfig off, on;
  ASSERT_TRUE(apps::parse_train_config({"--model.dir", "/m"}, off));
  EXPECT_FALSE(off.pad_to_max_length);
  ASSERT_TRUE(apps::parse_train_config({"--model.dir", "/m", "--task.pad_to_max_length", "true"}, on));
  EXPECT_TRUE(on.pad_to_max_length);
}

// Saved activations grow with the padded length: the short SST-2 rows padded to 128 keep at least twice
// what they keep padded to their longest row.
TEST(FixedLengthPadding, TrainingBatchesReachTheMaxLength) {
  const std::string base = testing::TempDir() + "ladder_fixed_padding";
  const nlohmann::json dyn = train_once(base + "/dynamic", false);
  const nlohmann::json fixed = train_once(base + "/fixed", true);
  const double a_dyn = peak_of(dyn, "saved activations"), a_fixed = peak_of(fixed, "saved activations");
  ASSERT_GT(a_dyn, 0);
  EXPECT_GT(a_fixed, 2.0 * a_dyn) << "padded to max length " << a_fixed << " B vs dynamic " << a_dyn << " B";
}

}  // namespace
