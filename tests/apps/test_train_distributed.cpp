// Data parallelism is layout-independent: the same global batch trained as 1 process, 2 or 4 mpirun ranks,
// or 1 process with gradient accumulation gives the same loss series and final parameters (float
// tolerance: only the order of the sums differs), for LoRA and full fine-tuning; a checkpoint written at
// one layout resumes at another; only trainable gradients are all-reduced. Real `mpirun` processes of the
// real `ladder` binary on all-MiniLM-L6-v2 and SST-2 rows.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/io/checkpoint.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

using namespace ladder;

namespace {

struct Layout {
  int ranks = 1, batch = 8, accum = 1;
};

std::string shell_quote(const std::string& s) { return "'" + s + "'"; }

// Runs `ladder train` at a layout; returns the exit code. Output goes to dir/log.txt.
int train_at(const Layout& l, const std::string& dir, const std::string& method, int steps,
             const std::vector<std::string>& extra = {}) {
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  std::string cmd;
  if (l.ranks > 1)
    cmd = std::string(LADDER_MPIEXEC) + " -np " + std::to_string(l.ranks) + (l.ranks > 2 ? " --oversubscribe" : "") + " ";
  cmd += std::string(LADDER_BINARY) + " train";
  std::vector<std::string> args = {
      "--model.dir", test::minilm_dir(), "--task.name", "sst2", "--task.data_dir", test::shared_dir() + "/data/glue/SST-2",
      "--task.max_length", "32", "--task.max_train_examples", "400", "--task.max_eval_examples", "16",
      "--method.name", method, "--method.lora_dropout", "0.1", "--train.batch_size", std::to_string(l.batch),
      "--train.grad_accum", std::to_string(l.accum), "--train.max_steps", std::to_string(steps),
      "--train.lr", method == "full" ? "5e-5" : "1e-3", "--train.threads", "1", "--checkpoint.dir", dir,
      "--checkpoint.keep_last", "1", "--log.every", "100"};
  args.insert(args.end(), extra.begin(), extra.end());
  for (auto& a : args) cmd += " " + shell_quote(a);
  cmd += " > ";  // (appended piecewise: GCC 12 warns falsely on `literal + std::string&&` here)
  cmd += shell_quote(dir + "/log.txt");
  cmd += " 2>&1";
  std::filesystem::create_directories(dir);
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string log_of(const std::string& dir) {
  std::ifstream in(dir + "/log.txt");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

core::CheckpointData final_checkpoint(const std::string& dir, int step) {
  return core::read_checkpoint(dir + "/checkpoints/" + core::CheckpointDirectory::file_name(step));
}

// Loss series within a relative 1e-4 and every trainable parameter within `tol` of the reference's largest
// update scale.
void expect_same_training(const std::string& ref, const std::string& other, int steps, double tol) {
  const auto a = final_checkpoint(ref, steps), b = final_checkpoint(other, steps);
  const auto& la = a.metrics.at("loss");
  const auto& lb = b.metrics.at("loss");
  ASSERT_EQ(la.size(), size_t(steps));
  ASSERT_EQ(lb.size(), size_t(steps));
  for (int i = 0; i < steps; ++i) EXPECT_NEAR(la[size_t(i)], lb[size_t(i)], 1e-4 * std::fabs(la[size_t(i)])) << other << " step " << i + 1;
  ASSERT_EQ(a.params.size(), b.params.size());
  for (size_t i = 0; i < a.params.size(); ++i) {
    ASSERT_EQ(a.params[i].first, b.params[i].first);
    const auto x = a.params[i].second.to_floats(), y = b.params[i].second.to_floats();
    ASSERT_EQ(x.size(), y.size());
    double worst = 0;
    for (size_t k = 0; k < x.size(); ++k) worst = std::max(worst, double(std::fabs(x[k] - y[k])));
    EXPECT_LE(worst, tol) << other << ": parameter " << a.params[i].first;
  }
}

nlohmann::json report_of(const std::string& dir) {
  std::ifstream in(dir + "/report.json");
  return nlohmann::json::parse(in);
}

}  // namespace

TEST(DataParallel, LoraAgreesAtEveryLayoutOfTheSameGlobalBatch) {
  if (test::minilm_dir().empty()) return;  // minilm_dir() has already failed the test, naming the fetch command
  const int steps = 20;
  const std::string ref = test::temp_dir("dp_lora_ref");
  ASSERT_EQ(train_at({1, 8, 1}, ref, "lora", steps), 0) << log_of(ref);
  const std::vector<std::pair<std::string, Layout>> layouts = {
      {"dp_lora_np2", {2, 4, 1}}, {"dp_lora_accum2", {1, 4, 2}}, {"dp_lora_np4", {4, 2, 1}}, {"dp_lora_np2_accum2", {2, 2, 2}}};
  for (const auto& [name, l] : layouts) {
    const std::string dir = test::temp_dir(name);
    ASSERT_EQ(train_at(l, dir, "lora", steps), 0) << log_of(dir);
    expect_same_training(ref, dir, steps, 2e-5);
  }
}

TEST(DataParallel, FullFineTuningAgreesBetweenOneAndTwoRanks) {
  if (test::minilm_dir().empty()) return;  // minilm_dir() has already failed the test, naming the fetch command
  const int steps = 12;
  const std::string ref = test::temp_dir("dp_full_ref"), two = test::temp_dir("dp_full_np2");
  ASSERT_EQ(train_at({1, 8, 1}, ref, "full", steps), 0) << log_of(ref);
  ASSERT_EQ(train_at({2, 4, 1}, two, "full", steps), 0) << log_of(two);
  expect_same_training(ref, two, steps, 2e-5);
}

TEST(DataParallel, AllReducesOnlyTrainableGradients) {
  if (test::minilm_dir().empty()) return;  // minilm_dir() has already failed the test, naming the fetch command
  for (const char* method : {"lora", "bitfit"}) {
    const std::string dir = test::temp_dir(std::string("dp_bytes_") + method);
    ASSERT_EQ(train_at({2, 4, 1}, dir, method, 3), 0) << log_of(dir);
    const auto r = report_of(dir);
    const int64_t trainable = r["metrics"]["trainable_parameters"].get<int64_t>();
    EXPECT_EQ(r["metrics"]["allreduce_bytes_per_step"].get<int64_t>(), 4 * trainable) << method;
    EXPECT_EQ(r["metrics"]["data_parallel_ranks"].get<int>(), 2);
    EXPECT_EQ(r["metrics"]["global_batch"].get<int>(), 8);
  }
}

TEST(DataParallel, CheckpointFromTwoRanksResumesInOneProcess) {
  if (test::minilm_dir().empty()) return;  // minilm_dir() has already failed the test, naming the fetch command
  // A constant schedule, so that stopping at step 10 and going on to 20 is the same run as 20 at once.
  const std::vector<std::string> constant = {"--train.schedule", "constant", "--train.warmup_steps", "0"};
  const std::string ref = test::temp_dir("dp_resume_ref"), moved = test::temp_dir("dp_resume_moved");
  ASSERT_EQ(train_at({1, 8, 1}, ref, "lora", 20, constant), 0) << log_of(ref);
  ASSERT_EQ(train_at({2, 4, 1}, moved, "lora", 10, constant), 0) << log_of(moved);
  ASSERT_EQ(train_at({1, 8, 1}, moved, "lora", 20, constant), 0) << log_of(moved);
  EXPECT_NE(log_of(moved).find("resumed from"), std::string::npos);
  expect_same_training(ref, moved, 20, 2e-5);
  // A different global batch is refused, naming both sizes.
  EXPECT_NE(train_at({1, 4, 1}, moved, "lora", 30, constant), 0);
  EXPECT_NE(log_of(moved).find("global batch of 8"), std::string::npos) << log_of(moved);
}

TEST(DataParallel, TensorParallelSizeThatIsNotAvailableFailsFastOnEveryRank) {
  if (test::minilm_dir().empty()) return;  // minilm_dir() has already failed the test, naming the fetch command
  const std::string dir = test::temp_dir("dp_tp3");
  EXPECT_NE(train_at({2, 4, 1}, dir, "lora", 2, {"--parallel.tp", "3"}), 0);
  EXPECT_NE(log_of(dir).find("does not divide the world size 2"), std::string::npos) << log_of(dir);
}
