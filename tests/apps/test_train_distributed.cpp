// Training is layout-independent: the same global batch trained as 1 process, 2 or 4 mpirun ranks of data
// parallelism, 2 ranks of tensor parallelism, 2 x 2 (dp x tp), or 1 process with gradient accumulation
// gives the same loss series and final parameters (float tolerance: only the order of the sums differs),
// for LoRA and full fine-tuning; a checkpoint written at one layout resumes at another; only trainable
// gradients are all-reduced; tensor parallelism halves the frozen weights a rank holds. Real `mpirun`
// processes of the real `ladder` binary on all-MiniLM-L6-v2 and SST-2 rows.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/io/checkpoint.h"
#include "tests/support/same_training.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

using namespace ladder;
using ladder::test::expect_same_training;
using ladder::test::final_checkpoint;

namespace {

struct Layout {
  int ranks = 1, batch = 8, accum = 1, tp = 1;  // dp = ranks / tp
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
      "--checkpoint.keep_last", "1", "--log.every", "100", "--parallel.tp", std::to_string(l.tp)};
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
  EXPECT_NE(train_at({2, 4, 1, 3}, dir, "lora", 2), 0);
  EXPECT_NE(log_of(dir).find("does not divide the world size 2"), std::string::npos) << log_of(dir);
}

TEST(TensorParallel, LoraAgreesAtTp2AndDp2xTp2) {
  if (test::minilm_dir().empty()) return;  // minilm_dir() has already failed the test, naming the fetch command
  const int steps = 20;
  const std::string ref = test::temp_dir("tp_lora_ref");
  // LoRA on every Linear: column-parallel (A replicated, B sharded) and row-parallel (A sharded, B replicated).
  const std::vector<std::string> all = {"--method.lora_targets", "query,key,value,attention_output,ffn_in,ffn_out"};
  ASSERT_EQ(train_at({1, 8, 1}, ref, "lora", steps, all), 0) << log_of(ref);
  for (const auto& [name, l] : std::vector<std::pair<std::string, Layout>>{{"tp_lora_tp2", {2, 8, 1, 2}},
                                                                          {"tp_lora_dp2tp2", {4, 4, 1, 2}}}) {
    const std::string dir = test::temp_dir(name);
    ASSERT_EQ(train_at(l, dir, "lora", steps, all), 0) << log_of(dir);
    expect_same_training(ref, dir, steps, 2e-5);
  }
}

TEST(TensorParallel, FullFineTuningAgreesAtTp2AndDp2xTp2) {
  if (test::minilm_dir().empty()) return;  // minilm_dir() has already failed the test, naming the fetch command
  const int steps = 12;
  const std::string ref = test::temp_dir("tp_full_ref");
  ASSERT_EQ(train_at({1, 8, 1}, ref, "full", steps), 0) << log_of(ref);
  for (const auto& [name, l] : std::vector<std::pair<std::string, Layout>>{{"tp_full_tp2", {2, 8, 1, 2}},
                                                                          {"tp_full_dp2tp2", {4, 4, 1, 2}}}) {
    const std::string dir = test::temp_dir(name);
    ASSERT_EQ(train_at(l, dir, "full", steps), 0) << log_of(dir);
    expect_same_training(ref, dir, steps, 2e-5);
  }
}

TEST(TensorParallel, CheckpointsHoldWholeTensorsAndResumeAtAnyLayout) {
  if (test::minilm_dir().empty()) return;  // minilm_dir() has already failed the test, naming the fetch command
  const std::vector<std::string> constant = {"--train.schedule", "constant", "--train.warmup_steps", "0",
                                             "--method.lora_targets", "query,value,ffn_out"};
  const std::string ref = test::temp_dir("tp_resume_ref");
  ASSERT_EQ(train_at({1, 8, 1}, ref, "lora", 20, constant), 0) << log_of(ref);
  // dp2 x tp2 -> one process, and one process -> tp2.
  const std::string a = test::temp_dir("tp_resume_a"), b = test::temp_dir("tp_resume_b");
  ASSERT_EQ(train_at({4, 4, 1, 2}, a, "lora", 10, constant), 0) << log_of(a);
  const auto mid = final_checkpoint(a, 10);
  for (const auto& [name, t] : mid.params) {  // whole tensors, as one process would write them
    if (name.find("ffn_out.lora_A") != std::string::npos || name.find("query.lora_B") != std::string::npos) {
      EXPECT_EQ(t.dim(0) * t.dim(1), int64_t(8) * (name.find("ffn_out") != std::string::npos ? 1536 : 384)) << name;
    }
  }
  ASSERT_EQ(train_at({1, 8, 1}, a, "lora", 20, constant), 0) << log_of(a);
  EXPECT_NE(log_of(a).find("resumed from"), std::string::npos);
  expect_same_training(ref, a, 20, 2e-5);
  ASSERT_EQ(train_at({1, 8, 1}, b, "lora", 10, constant), 0) << log_of(b);
  ASSERT_EQ(train_at({2, 8, 1, 2}, b, "lora", 20, constant), 0) << log_of(b);
  EXPECT_NE(log_of(b).find("resumed from"), std::string::npos);
  expect_same_training(ref, b, 20, 2e-5);
}

TEST(TensorParallel, FrozenWeightsPerRankHalveAtTp2) {
  if (test::minilm_dir().empty()) return;  // minilm_dir() has already failed the test, naming the fetch command
  const std::string one = test::temp_dir("tp_bytes_1"), two = test::temp_dir("tp_bytes_2");
  ASSERT_EQ(train_at({1, 8, 1}, one, "lora", 2), 0) << log_of(one);
  ASSERT_EQ(train_at({2, 8, 1, 2}, two, "lora", 2), 0) << log_of(two);
  const double b1 = report_of(one)["metrics"]["frozen_weight_bytes_per_rank"].get<double>();
  const double b2 = report_of(two)["metrics"]["frozen_weight_bytes_per_rank"].get<double>();
  EXPECT_GT(b1, 80e6);  // MiniLM's 22.7 M parameters in f32
  EXPECT_LE(b2 / b1, 0.55) << b1 << " vs " << b2;
  EXPECT_EQ(report_of(two)["metrics"]["tensor_parallel_ranks"].get<int>(), 2);
  EXPECT_NE(log_of(two).find("sharded over 2 ranks"), std::string::npos) << log_of(two);
}

TEST(TensorParallel, MethodsThatCannotShardSaySoAtStartUp) {
  if (test::minilm_dir().empty()) return;  // minilm_dir() has already failed the test, naming the fetch command
  const std::string dir = test::temp_dir("tp_krona");
  EXPECT_NE(train_at({2, 8, 1, 2}, dir, "krona", 2), 0);
  EXPECT_NE(log_of(dir).find("sharded by tensor parallelism"), std::string::npos) << log_of(dir);
}

TEST(TensorParallel, OtherMethodsAgreeAtTp2) {
  if (test::minilm_dir().empty()) return;  // minilm_dir() has already failed the test, naming the fetch command
  // Methods on replicated activations (adapters, prompts, BitFit's biases, LST's side network, whose pruned
  // init reads the whole weights of a sharded backbone) train the same model at tp=2.
  const int steps = 6;
  for (const char* method : {"bitfit", "houlsby", "prompt", "lst"}) {
    const std::string ref = test::temp_dir(std::string("tp_other_ref_") + method);
    const std::string two = test::temp_dir(std::string("tp_other_tp2_") + method);
    ASSERT_EQ(train_at({1, 8, 1}, ref, method, steps), 0) << log_of(ref);
    ASSERT_EQ(train_at({2, 8, 1, 2}, two, method, steps), 0) << log_of(two);
    // 1e-4: BitFit trains K's biases, whose true gradient is zero (softmax ignores a shift shared by all
    // keys), so Adam turns their rounding-level gradients into lr-sized steps that differ in the last bits.
    expect_same_training(ref, two, steps, 1e-4);
  }
}
